"""How the benchmarks start ``fleetdeck`` as a user would: the installed script, in a home of its own."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def fleetdeck_command() -> list[str]:
    """The console script installed beside this interpreter, else the same program as a module.

    Not whatever ``fleetdeck`` is first on PATH: a version manager's shim there would add its own start-up.
    """
    script = shutil.which("fleetdeck", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "console"]


def isolated_env(home: Path) -> dict[str, str]:
    """Environment that keeps a run's config, state and cache under ``home``, away from the user's."""
    return {
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "FLEETDECK_STATE_DIR": str(home / "node"),
    }
