"""fleetdeck's own CSS variables, and the fallbacks that make them exist in every theme.

Widgets write `$fleetdeck-danger` or `$fleetdeck-level-error` in their CSS. If a theme lacked one,
Textual would fail to parse that CSS, so the loader fills the gaps from the theme's own palette
(its `error`, `warning`, `primary`) and, failing that, from fixed colours. Textual's `ansi-*`
themes get ANSI colour names, so a terminal with its own palette keeps it.
"""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

from textual.theme import Theme

LogLevel = Literal["debug", "info", "warning", "error", "critical"]

DANGER_VARIABLE: Final = "fleetdeck-danger"
LEVEL_VARIABLES: Final[dict[LogLevel, str]] = {
    "debug": "fleetdeck-level-debug",
    "info": "fleetdeck-level-info",
    "warning": "fleetdeck-level-warning",
    "error": "fleetdeck-level-error",
    "critical": "fleetdeck-level-critical",
}
FLEETDECK_VARIABLES: Final[tuple[str, ...]] = (DANGER_VARIABLE, *LEVEL_VARIABLES.values())

# Fixed fallbacks for themes that leave a slot empty (Theme fields other than primary are optional).
_RED: Final = "#ff3b3b"
_AMBER: Final = "#ffa62b"
_MAGENTA_ON_DARK: Final = "#ff5fd2"
_MAGENTA_ON_LIGHT: Final = "#9c0a6b"
_GREY_ON_DARK: Final = "#8b949e"
_GREY_ON_LIGHT: Final = "#5c6373"


def danger_colour(theme: Theme) -> str:
    """The colour that frames production nodes in `theme`: its own, else its error colour, else red."""
    explicit = theme.variables.get(DANGER_VARIABLE)
    if explicit:
        return explicit
    if theme.error:
        return theme.error
    return "ansi_red" if theme.ansi else _RED


def level_colour(theme: Theme, level: LogLevel) -> str:
    """The colour for log records of `level` in `theme`, with the same fallback guarantee as danger."""
    explicit = theme.variables.get(LEVEL_VARIABLES[level])
    if explicit:
        return explicit
    if theme.ansi:
        # Named ANSI colours follow the user's terminal palette, which is why they chose an ansi theme.
        return {
            "debug": "ansi_bright_black",
            "info": "ansi_cyan",
            "warning": theme.warning or "ansi_yellow",
            "error": theme.error or "ansi_red",
            "critical": "ansi_bright_magenta",
        }[level]
    if level == "debug":
        return _GREY_ON_DARK if theme.dark else _GREY_ON_LIGHT
    if level == "info":
        return theme.primary
    if level == "warning":
        return theme.warning or _AMBER
    if level == "error":
        return theme.error or _RED
    # Critical must stand apart from error, since both are common in a bad minute of logs.
    return _MAGENTA_ON_DARK if theme.dark else _MAGENTA_ON_LIGHT


def fleetdeck_variables(theme: Theme) -> dict[str, str]:
    """All of fleetdeck's variables for `theme`, explicit or fallen back."""
    resolved = {DANGER_VARIABLE: danger_colour(theme)}
    resolved.update({name: level_colour(theme, level) for level, name in LEVEL_VARIABLES.items()})
    return resolved


def with_fleetdeck_variables(theme: Theme) -> Theme:
    """A copy of `theme` whose `variables` hold every fleetdeck variable.

    A copy, because Textual's built-in Theme objects are shared module state.
    """
    missing = {
        name: value for name, value in fleetdeck_variables(theme).items() if not theme.variables.get(name)
    }
    if not missing:
        return theme
    return dataclasses.replace(theme, variables={**theme.variables, **missing})
