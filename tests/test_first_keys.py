"""Every key answered from the first frame: a key typed while the console starts, or right behind `/` in one
burst, acts as it would on a settled screen and never lands in a filter the screen does not show.

A terminal hands the console what was typed in one read, so the keys here are posted to the app together, as
Textual's driver posts them, rather than one by one with Pilot's wait for the screen between them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual import events
from textual.widgets import Input, TabbedContent

from console.screens.all_agents import AllAgentsScreen
from console.screens.audit import AuditScreen
from console.screens.help import HelpScreen
from console.screens.node import NodeScreen
from console.snapshot import screen_text
from widgets.agents_table import AgentsTable

SMALL = (80, 24)
WIDE = (160, 48)
CHARACTERS = {"slash": "/", "question_mark": "?"}


def burst(app: Any, *keys: str) -> None:
    """Post ``keys`` to the app at once, as the terminal driver does with one read of typed input."""
    for key in keys:
        app.post_message(events.Key(key, CHARACTERS.get(key, key if len(key) == 1 else None)))


def _focused(app: Any) -> Any:
    try:
        return app.focused
    except Exception:  # no screen yet
        return None


async def _type_while_starting(app: Any, *keys: str) -> None:
    """Type ``keys`` the moment the first screen has a focused widget: before it has settled, as a user
    who types at once meets it."""
    for _ in range(100_000):  # a bound, not a timing: the screen focuses something within a few steps
        if _focused(app) is not None:
            break
        await asyncio.sleep(0)
    burst(app, *keys)


def _filter_box(app: Any) -> Input:
    screen = next(s for s in app.screen_stack if isinstance(s, NodeScreen))
    return screen.query_one("#filter", Input)


def _is_open(box: Input) -> bool:
    """On screen: the box is shown only while open."""
    return box.has_class("-open") and box.display


@pytest.mark.parametrize("key", ["j", "2", "question_mark"])
async def test_a_key_typed_while_the_console_starts_never_lands_in_a_hidden_filter(
    frozen_demo_app_async, key: str
) -> None:
    app = await frozen_demo_app_async(nodes=1, agents=20)  # one node: the console opens on its Node screen
    typing = asyncio.create_task(_type_while_starting(app, key))
    async with app.run_test(size=SMALL) as pilot:
        await typing
        await pilot.pause()
        box = _filter_box(app)
        assert box.value == "" and not _is_open(box)  # nothing typed into a filter, let alone a hidden one
        if key == "question_mark":
            assert isinstance(app.screen, HelpScreen)  # the key did what it does on a settled screen
            await pilot.press("escape")
            await pilot.pause()
        if key == "2":
            assert app.screen.query_one(TabbedContent).active == "gpus"
            await pilot.press("1")
            await pilot.pause()
        text = screen_text(app)
        assert "Agents 19/20 healthy · sorted by health" in text, text  # every agent, no "0 shown"
        assert app.screen.query_one(AgentsTable).shown_count == 20


@pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "160x48"])
async def test_keys_right_behind_slash_in_one_burst_go_into_the_filter(frozen_demo_app_async, size) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        burst(app, "slash", "a", "p", "i")  # "a" alone opens the Audit screen; here it is a letter
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)
        box = app.screen.query_one("#filter", Input)
        assert _is_open(box) and box.has_focus and box.value == "api"
        text = screen_text(app)
        assert "filter: api" in text
        # and a `/` typed in the box is a character of the filter, not a second "open the filter"
        burst(app, "slash")
        await pilot.pause()
        assert box.value == "api/"


async def test_a_filter_in_force_stays_on_screen_through_a_resize_and_esc_clears_it(
    frozen_demo_app_async,
) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        total = len(screen.link.snapshot.agents)
        await pilot.press("slash", *"coder", "enter")
        await pilot.pause()
        table = screen.query_one(AgentsTable)
        assert 0 < table.shown_count < total
        assert table.has_focus
        # the layout is rebuilt for the smaller terminal: the filter is still in force, so still on screen
        await pilot.resize_terminal(*SMALL)
        await pilot.pause()
        await pilot.pause()
        box = screen.query_one("#filter", Input)
        assert _is_open(box) and box.value == "coder"
        assert "filter: coder" in screen_text(app)
        assert screen.query_one(AgentsTable).shown_count < total
        await pilot.press("escape")
        await pilot.pause()
        assert not _is_open(box) and box.value == ""
        assert screen.query_one(AgentsTable).shown_count == total
        assert "filter:" not in screen_text(app)


async def test_all_agents_burst_after_slash_goes_into_the_filter(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="agents")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, AllAgentsScreen)
        burst(app, "slash", "a", "p", "i")
        await pilot.pause()
        assert not isinstance(app.screen, AuditScreen)
        box = app.screen.query_one("#filter", Input)
        assert _is_open(box) and box.value == "api"
        assert "filter: api" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert not _is_open(box) and box.value == ""
