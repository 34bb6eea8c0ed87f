"""The structure of a theme file, and its validation into a Textual Theme.

msgspec checks the shape (types, unknown keys); Textual's own Color parser checks each colour,
so a colour is accepted here exactly when Textual will accept it at runtime.
"""

from __future__ import annotations

import re
import tomllib
from typing import Annotated, Any, Final

import msgspec
from textual.color import Color, ColorParseError
from textual.theme import Theme

from themes.variables import FLEETDECK_VARIABLES

# Theme names end up in `App.theme`, which treats commas as a list of fallbacks, and on the command
# line; keep them to one plain word.
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# What Textual's CSS tokenizer accepts after `$`.
_VARIABLE_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_COLOUR_FIELDS: Final = (
    "primary", "secondary", "accent", "foreground", "background",
    "surface", "panel", "boost", "warning", "error", "success",
)  # fmt: skip
_TOML_POSITION: Final = re.compile(
    r"^(?P<problem>.*) \(at (?P<where>line \d+, column \d+|end of document)\)$"
)
# msgspec's type names, in the words of a TOML file.
_TYPE_WORDS: Final = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
    "object": "a table", "array": "an array",
}  # fmt: skip
_MSGSPEC_PATH: Final = re.compile(r"^(?P<problem>.*) - at `\$\.?(?P<path>.*)`$")


class ThemeError(ValueError):
    """A theme file that cannot be used; str() is one line: `FILE: KEY: PROBLEM`."""


class ThemeFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One theme file. The fields mirror textual.theme.Theme, so Textual's docs describe them."""

    name: str
    primary: str
    dark: bool = True
    secondary: str | None = None
    accent: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    luminosity_spread: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.15
    text_alpha: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.95
    ansi: bool = False
    variables: dict[str, str] = msgspec.field(default_factory=dict)


def theme_from_text(text: str, source: str) -> Theme:
    """Parse theme TOML `text`; `source` names the file in error messages. Raises ThemeError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = _TOML_POSITION.match(str(error))
        if match is None:
            raise ThemeError(f"{source}: invalid TOML ({error})") from None
        raise ThemeError(f"{source}: {match['where']}: invalid TOML ({match['problem']})") from None
    _check_variable_values(data, source)
    try:
        spec = msgspec.convert(data, type=ThemeFile)
    except msgspec.ValidationError as error:
        raise ThemeError(f"{source}: {_describe(str(error))}") from None
    _check_semantics(spec, source)
    return Theme(**msgspec.structs.asdict(spec))


def _check_variable_values(data: dict[str, Any], source: str) -> None:
    # msgspec reports a bad dict value at `$.variables[...]`, hiding which variable; name it here.
    variables = data.get("variables")
    if not isinstance(variables, dict):
        return
    for name, value in variables.items():
        if not isinstance(value, str):
            raise ThemeError(f"{source}: variables.{name}: expected a string, got {type(value).__name__}")


def _describe(message: str) -> str:
    """Turn msgspec's `Expected `str`, got `int` - at `$.primary`` into `primary: expected a string, ...`."""
    match = _MSGSPEC_PATH.match(message)
    problem, path = (match["problem"], match["path"]) if match else (message, "")
    if field := re.fullmatch(r"Object contains unknown field `(.+)`", problem):
        path, problem = f"{path}.{field[1]}".lstrip("."), "unknown key"
    elif field := re.fullmatch(r"Object missing required field `(.+)`", problem):
        path, problem = f"{path}.{field[1]}".lstrip("."), "required, but missing"
    else:
        problem = re.sub(r"`(\w+)`", lambda m: _TYPE_WORDS.get(m[1], m[1]), problem)
        problem = problem[:1].lower() + problem[1:]
    return f"{path}: {problem}" if path else problem


def _check_semantics(spec: ThemeFile, source: str) -> None:
    if not _NAME_PATTERN.fullmatch(spec.name):
        raise ThemeError(
            f"{source}: name: {spec.name!r} is not a valid theme name "
            "(letters, digits, '.', '_' and '-'; no spaces or commas)"
        )
    for field in _COLOUR_FIELDS:
        _check_colour(source, field, getattr(spec, field))
    for name, value in spec.variables.items():
        if not _VARIABLE_PATTERN.fullmatch(name):
            raise ThemeError(f"{source}: variables.{name}: not a valid CSS variable name")
        if name.startswith("fleetdeck-"):
            # A misspelt fleetdeck variable would silently fall back; say so instead.
            if name not in FLEETDECK_VARIABLES:
                raise ThemeError(
                    f"{source}: variables.{name}: unknown fleetdeck variable "
                    f"(known: {', '.join(FLEETDECK_VARIABLES)})"
                )
            _check_colour(source, f"variables.{name}", value)


def _check_colour(source: str, key: str, value: str | None) -> None:
    if value is None:
        return
    try:
        Color.parse(value)
    except ColorParseError as error:
        raise ThemeError(f"{source}: {key}: {error}") from None
