"""Themes: built-in files, user themes, the fleetdeck variables' guarantee, NO_COLOR, and legibility."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import BUILTIN_THEMES, Theme
from textual.widgets import Static

import themes
from themes import (
    BUILTIN_THEME_NAMES,
    DANGER_VARIABLE,
    DEFAULT_THEME,
    FLEETDECK_VARIABLES,
    LEVEL_VARIABLES,
    ThemeError,
    danger_colour,
    fleetdeck_variables,
    level_colour,
    load_builtin_themes,
    load_themes,
    load_user_themes,
    no_color_requested,
    register_themes,
    textual_themes,
    theme_from_toml,
    with_fleetdeck_variables,
)
from themes.contrast import AA_TEXT, AAA_TEXT, contrast_ratio

GOOD_THEME = """\
name = "midnight"
dark = true
primary = "#3388ff"
background = "#000010"
[variables]
fleetdeck-danger = "#ff0044"
"""


def _builtin(name: str) -> Theme:
    return next(theme for theme in load_builtin_themes() if theme.name == name)


def test_builtin_names_match_the_package_files() -> None:
    files = {p.name for p in resources.files("themes").iterdir() if p.name.endswith(".toml")}
    assert files == {f"{name}.toml" for name in BUILTIN_THEME_NAMES}
    assert DEFAULT_THEME == BUILTIN_THEME_NAMES[0] == "fleetdeck-dark"


@pytest.mark.parametrize(("name", "dark"), [
    ("fleetdeck-dark", True), ("fleetdeck-light", False), ("fleetdeck-high-contrast", True),
])  # fmt: skip
def test_builtin_theme_loads_with_its_own_variables(name: str, dark: bool) -> None:
    theme = _builtin(name)
    assert isinstance(theme, Theme)
    assert (theme.name, theme.dark) == (name, dark)
    # The built-ins define every variable themselves rather than leaning on the fallbacks.
    raw = theme_from_toml(resources.files("themes").joinpath(f"{name}.toml"))
    for variable in FLEETDECK_VARIABLES:
        Color.parse(raw.variables[variable])
    for field in ("primary", "secondary", "accent", "foreground", "background", "surface", "panel",
                  "boost", "warning", "error", "success"):  # fmt: skip
        assert getattr(theme, field), f"{name} leaves {field} to Textual"


@pytest.mark.parametrize("name", BUILTIN_THEME_NAMES)
def test_builtin_theme_text_is_legible(name: str) -> None:
    theme = _builtin(name)
    # High contrast promises AAA; the others AA, against every background text sits on.
    needed = AAA_TEXT if name == "fleetdeck-high-contrast" else AA_TEXT
    grounds = [theme.background, theme.surface] + ([] if "high-contrast" in name else [theme.panel])
    texts = {"foreground": theme.foreground, "primary": theme.primary, "warning": theme.warning,
             "error": theme.error, "success": theme.success, "danger": danger_colour(theme)}  # fmt: skip
    texts.update({level: level_colour(theme, level) for level in LEVEL_VARIABLES})
    for ground in grounds:
        assert ground is not None
        for role, colour in texts.items():
            assert colour is not None
            ratio = contrast_ratio(colour, ground)
            assert ratio >= needed, f"{name}: {role} {colour} on {ground} is only {ratio:.2f}:1"


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#123456", "#123456") == pytest.approx(1.0)


def test_textual_ansi_dark_gets_ansi_fallbacks() -> None:
    ansi_dark = BUILTIN_THEMES["ansi-dark"]
    assert DANGER_VARIABLE not in ansi_dark.variables
    assert danger_colour(ansi_dark) == "ansi_red"  # its own error colour
    augmented = with_fleetdeck_variables(ansi_dark)
    assert set(FLEETDECK_VARIABLES) <= set(augmented.variables)
    assert all(augmented.variables[v].startswith("ansi_") for v in FLEETDECK_VARIABLES)
    # Textual's shared theme object is left untouched.
    assert DANGER_VARIABLE not in BUILTIN_THEMES["ansi-dark"].variables


def test_every_textual_theme_gets_every_variable() -> None:
    augmented = {theme.name: theme for theme in textual_themes()}
    assert set(augmented) == set(BUILTIN_THEMES)
    for theme in augmented.values():
        for variable in FLEETDECK_VARIABLES:
            Color.parse(theme.variables[variable])
    assert augmented["textual-dark"].variables[DANGER_VARIABLE] == BUILTIN_THEMES["textual-dark"].error


def test_fallbacks_without_an_error_colour() -> None:
    bare = Theme(name="bare", primary="#336699", dark=False)
    assert danger_colour(bare) == "#ff3b3b"
    assert level_colour(bare, "info") == "#336699"
    for dark in (True, False):
        plain = Theme(name="plain", primary="#336699", error="#cc0000", dark=dark)
        # Critical must stand apart from error even when the theme only knows "error".
        assert level_colour(plain, "critical") != level_colour(plain, "error") == "#cc0000"
    explicit = Theme(name="x", primary="#000000", error="#aa0000", variables={DANGER_VARIABLE: "#ff00ff"})
    assert danger_colour(explicit) == "#ff00ff"


def test_user_themes_one_good_one_bad(tmp_path: Path) -> None:
    (tmp_path / "a-good.toml").write_text(GOOD_THEME)
    (tmp_path / "b-bad.toml").write_text('name = "broken"\nprimary = 42\n')
    (tmp_path / "notes.txt").write_text("not a theme")
    loaded, errors = load_user_themes(tmp_path)
    assert [theme.name for theme in loaded] == ["midnight"]
    assert loaded[0].variables[DANGER_VARIABLE] == "#ff0044"
    assert set(FLEETDECK_VARIABLES) <= set(loaded[0].variables)
    assert len(errors) == 1
    assert str(tmp_path / "b-bad.toml") in errors[0]
    assert "primary: expected a string, got an integer" in errors[0]


@pytest.mark.parametrize(("text", "expected"), [
    ('name = "x"\nprimary = "#fff"\nprimray = "#000"\n', "primray: unknown key"),
    ('name = "x"\n', "primary: required, but missing"),
    ('name = "x"\nprimary = "tael"\n', "primary: failed to parse 'tael' as a color"),
    ('name = "x"\nprimary = "#fff"\ndark = "yes"\n', "dark: expected true or false, got a string"),
    ('name = "my,theme"\nprimary = "#fff"\n', "name: 'my,theme' is not a valid theme name"),
    ('name = "x"\nprimary = "#fff"\n[variables]\nfleetdeck-dangr = "#f00"\n',
     "variables.fleetdeck-dangr: unknown fleetdeck variable"),
    ('name = "x"\nprimary = "#fff"\n[variables]\nfleetdeck-danger = "blood"\n',
     "variables.fleetdeck-danger: failed to parse 'blood'"),
    ('name = "x"\nprimary = "#fff"\n[variables]\nfleetdeck-danger = 1\n',
     "variables.fleetdeck-danger: expected a string"),
    ('name = "x"\nprimary = "#fff"\ntext_alpha = 2\n', "text_alpha: expected a number <= 1"),
    ('name = "x"\nprimary = \n', "line 2, column 11: invalid TOML"),
])  # fmt: skip
def test_bad_theme_file_names_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ThemeError) as raised:
        theme_from_toml(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_duplicate_user_theme_names_keep_the_first(tmp_path: Path) -> None:
    (tmp_path / "1.toml").write_text(GOOD_THEME)
    (tmp_path / "2.toml").write_text(GOOD_THEME.replace("#3388ff", "#ffffff"))
    loaded, errors = load_user_themes(tmp_path)
    assert [theme.primary for theme in loaded] == ["#3388ff"]
    assert len(errors) == 1 and "2.toml" in errors[0] and "already defined" in errors[0]


def test_missing_user_theme_dir_is_no_themes(tmp_path: Path) -> None:
    assert load_user_themes(tmp_path / "absent") == ([], [])


def test_load_themes_puts_user_themes_last(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(GOOD_THEME.replace("midnight", "fleetdeck-dark"))
    everything, errors = load_themes(tmp_path)
    assert errors == []
    names = [theme.name for theme in everything]
    assert names.count("fleetdeck-dark") == 2
    # Registered in order, the user's version of a name replaces the built-in one.
    assert everything[-1].name == "fleetdeck-dark" and everything[-1].primary == "#3388ff"
    for theme in everything:
        assert set(FLEETDECK_VARIABLES) <= set(theme.variables)


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, False), ({"NO_COLOR": ""}, False), ({"NO_COLOR": "1"}, True), ({"NO_COLOR": "0"}, True),
])  # fmt: skip
def test_no_color(environ: dict[str, str], expected: bool) -> None:
    assert no_color_requested(environ) is expected


def test_no_color_reads_the_live_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "yes")
    assert no_color_requested() is True
    monkeypatch.delenv("NO_COLOR")
    assert no_color_requested() is False


async def test_themes_register_and_apply_on_a_textual_app() -> None:
    app: App[None] = App()
    everything, errors = themes.load_themes()
    assert errors == []
    async with app.run_test():
        for theme in everything:
            app.register_theme(theme)
        for name in [*BUILTIN_THEME_NAMES, "ansi-dark", "textual-light"]:
            app.theme = name
            variables = app.get_css_variables()
            for variable in FLEETDECK_VARIABLES:
                assert variable in variables, f"{name} lacks ${variable}"
        app.theme = "fleetdeck-high-contrast"
        assert app.get_css_variables()[DANGER_VARIABLE] == "#ff6666"


class _DangerApp(App[None]):
    """A widget whose CSS uses fleetdeck's variables, as the production-node frame will.

    It supplies them through Textual's get_theme_variable_defaults() hook, as the console must:
    the App builds its stylesheet in __init__, from the default theme, before any theme of ours
    can be registered, and re-selecting the already current theme does not rebuild it.
    """

    CSS = "#framed { border: heavy $fleetdeck-danger; color: $fleetdeck-level-critical; }"

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **fleetdeck_variables(self.current_theme)}

    def compose(self) -> ComposeResult:
        yield Static("prod", id="framed")


@pytest.mark.parametrize("name", ["ansi-dark", "textual-dark", "fleetdeck-light", "fleetdeck-high-contrast"])
async def test_css_using_fleetdeck_variables_works_under_any_theme(name: str) -> None:
    app = _DangerApp()
    assert register_themes(app) == []
    app.theme = name
    async with app.run_test():
        framed = app.query_one("#framed")
        theme = app.get_theme(name)
        assert theme is not None
        assert framed.styles.border_top[1] == Color.parse(danger_colour(theme))
        assert framed.styles.color == Color.parse(level_colour(theme, "critical"))


async def test_variable_defaults_cover_unregistered_textual_themes() -> None:
    # No register_themes(): Textual's own, unaugmented themes still get the variables via the hook.
    app = _DangerApp()
    async with app.run_test() as pilot:
        app.theme = "ansi-light"
        await pilot.pause()  # the restyle runs on the next message-loop turn
        assert app.get_css_variables()[DANGER_VARIABLE] == "ansi_red"
        assert app.query_one("#framed").styles.border_top[1] == Color.parse("ansi_red")
