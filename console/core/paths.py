"""Where fleetdeck keeps its files, following the XDG Base Directory spec.

Written out rather than taken from platformdirs because fleetdeck is a terminal tool for Linux
servers first: ops engineers expect ~/.config/fleetdeck on every platform (macOS included), and
the environment is read at call time so tests and `env XDG_CONFIG_HOME=... fleetdeck` just work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

APP_NAME: Final = "fleetdeck"
CONFIG_ENV: Final = "FLEETDECK_CONFIG"


def _xdg_base(variable: str, default: str) -> Path:
    # The spec says relative values are invalid and must be ignored, not resolved against the cwd.
    value = os.environ.get(variable, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / default


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/fleetdeck (default ~/.config/fleetdeck)."""
    return _xdg_base("XDG_CONFIG_HOME", ".config") / APP_NAME


def config_file() -> Path:
    """The config file: $FLEETDECK_CONFIG when set, else config_dir()/config.toml."""
    override = os.environ.get(CONFIG_ENV, "")
    if override:
        return Path(override).expanduser()
    return config_dir() / "config.toml"


def config_file_overridden() -> bool:
    """True when $FLEETDECK_CONFIG names the config file (so a missing file is the user's mistake)."""
    return bool(os.environ.get(CONFIG_ENV, ""))


def state_dir() -> Path:
    """$XDG_STATE_HOME/fleetdeck (default ~/.local/state/fleetdeck)."""
    return _xdg_base("XDG_STATE_HOME", ".local/state") / APP_NAME


def default_node_state_dir() -> Path:
    """Where the local node keeps its store when its config names no state_dir."""
    return state_dir() / "node"


def user_themes_dir() -> Path:
    """config_dir()/themes: user theme files, one `*.toml` each."""
    return config_dir() / "themes"
