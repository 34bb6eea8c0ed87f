"""fleetdeck's themes: the built-in TOML files in this package, user themes, and the loader.

Every theme this package returns carries fleetdeck's own CSS variables (`$fleetdeck-danger`,
`$fleetdeck-level-*`; see themes.variables), so widget CSS may use them under any theme,
Textual's built-in ones included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from textual.app import App
from textual.theme import BUILTIN_THEMES, Theme

from themes.schema import ThemeError, theme_from_text
from themes.variables import (
    DANGER_VARIABLE,
    FLEETDECK_VARIABLES,
    LEVEL_VARIABLES,
    LogLevel,
    danger_colour,
    fleetdeck_variables,
    level_colour,
    with_fleetdeck_variables,
)

__all__ = [
    "BUILTIN_THEME_NAMES",
    "DANGER_VARIABLE",
    "DEFAULT_THEME",
    "FLEETDECK_VARIABLES",
    "LEVEL_VARIABLES",
    "LogLevel",
    "ThemeError",
    "danger_colour",
    "fleetdeck_variables",
    "level_colour",
    "load_builtin_themes",
    "load_themes",
    "load_user_themes",
    "no_color_requested",
    "register_themes",
    "textual_themes",
    "theme_from_toml",
    "with_fleetdeck_variables",
]

DEFAULT_THEME: Final = "fleetdeck-dark"
# Each name is also its file name (NAME.toml) in this package; a test keeps the two in step.
BUILTIN_THEME_NAMES: Final[tuple[str, ...]] = (
    "fleetdeck-dark",
    "fleetdeck-light",
    "fleetdeck-high-contrast",
)


def theme_from_toml(path: Path | Traversable) -> Theme:
    """Load one theme file. Raises ThemeError (one line: `FILE: KEY: PROBLEM`) if it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ThemeError(f"{path}: cannot read ({_reason(error)})") from None
    return with_fleetdeck_variables(theme_from_text(text, str(path)))


def load_builtin_themes() -> list[Theme]:
    """fleetdeck's own themes, default first. Read as package data so they work from a wheel too."""
    package = resources.files(__name__)
    return [theme_from_toml(package.joinpath(f"{name}.toml")) for name in BUILTIN_THEME_NAMES]


def textual_themes() -> list[Theme]:
    """Textual's built-in themes (ansi-dark, textual-light, ...) given fleetdeck's variables."""
    return [with_fleetdeck_variables(theme) for theme in BUILTIN_THEMES.values()]


def load_user_themes(directory: Path) -> tuple[list[Theme], list[str]]:
    """The `*.toml` themes in `directory`, in file-name order, and one error line per unusable file.

    Never raises: a broken user theme must not keep the console from starting. A missing
    directory is simply no themes.
    """
    try:
        paths = sorted(path for path in directory.glob("*.toml") if path.is_file())
    except OSError as error:
        return [], [f"{directory}: cannot list themes ({_reason(error)})"]
    themes: list[Theme] = []
    errors: list[str] = []
    defined_by: dict[str, Path] = {}
    for path in paths:
        try:
            theme = theme_from_toml(path)
        except ThemeError as error:
            errors.append(str(error))
            continue
        if theme.name in defined_by:
            # Two user files fighting over one name is a mistake; the first (by file name) wins.
            errors.append(f"{path}: name: {theme.name!r} is already defined by {defined_by[theme.name]}")
            continue
        defined_by[theme.name] = path
        themes.append(theme)
    return themes, errors


def load_themes(user_directory: Path | None = None) -> tuple[list[Theme], list[str]]:
    """Everything to register on the App, in order: Textual's, fleetdeck's, then the user's.

    Register them in this order: a later theme with the same name replaces an earlier one, so a
    user may refine a built-in theme by reusing its name.
    """
    themes = [*textual_themes(), *load_builtin_themes()]
    if user_directory is None:
        return themes, []
    user_themes, errors = load_user_themes(user_directory)
    return [*themes, *user_themes], errors


def register_themes(app: App[Any], user_directory: Path | None = None) -> list[str]:
    """Register load_themes() on `app`; returns the user-theme errors to show the operator.

    Registering is not enough for CSS that names `$fleetdeck-*`: the App builds its stylesheet in
    __init__ from Textual's default theme. Also override App.get_theme_variable_defaults() to return
    fleetdeck_variables(self.current_theme), which covers every theme, registered or not.
    """
    everything, errors = load_themes(user_directory)
    for theme in everything:
        app.register_theme(theme)
    return errors


def no_color_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when NO_COLOR is set to a non-empty value (https://no-color.org)."""
    env = os.environ if environ is None else environ
    return bool(env.get("NO_COLOR"))


def _reason(error: BaseException) -> str:
    # OSError's str() repeats the path we already print; its strerror is the useful part.
    return getattr(error, "strerror", None) or str(error)
