"""Every key answered: an action key that is off says why on every screen it is pressed on, Home and End
move a table's cursor, a toast never covers a dialog's buttons, and a dialog's text boxes are boxes with
the focus where typing starts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import Button, Input

from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.dialogs.confirm import ConfirmDialog
from console.dialogs.rollback import RollbackPicker
from console.screens.all_agents import AllAgentsScreen
from console.screens.fleet import FleetScreen
from console.snapshot import build_app, prime, screen_text
from widgets.row_table import RowTable

from .conftest import T0

SMALL = (80, 24)
READ_ONLY = "read-only mode (--read-only)"


async def fleet_app(*, read_only: bool = False, nodes: int = 3, screen: str | None = None) -> Any:
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=nodes, agents=80, clock=clock, read_only=read_only)
    await prime(links, clock)
    return build_app(links, config=Config(operator="alice"), clock=clock, screen=screen)  # type: ignore[arg-type]


def said(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


async def settle(app: Any) -> None:
    await asyncio.wait_for(app.workers.wait_for_complete(), timeout=10)


# --- read-only: every action key says why it is off ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "capability"),
    [("p", "pause"), ("s", "stop"), ("d", "dispatch"), ("c", "checkpoint"), ("r", "rollback")],
)
async def test_an_action_key_on_all_agents_in_read_only_mode_says_why_it_is_off(key, capability) -> None:
    app = await fleet_app(read_only=True, screen="agents")
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, AllAgentsScreen)
        app.clear_notifications()
        await pilot.press(key)
        await pilot.pause()
        assert said(app) == [f"{capability} is disabled: {READ_ONLY}"]
        await pilot.pause()  # the toast is mounted after the notification
        assert f"{capability} is disabled" in screen_text(app)
        assert isinstance(app.screen, AllAgentsScreen)  # no dialog opened


async def test_an_action_key_on_the_fleet_screen_says_why_it_is_off_or_where_it_works() -> None:
    app = await fleet_app(read_only=True)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        app.clear_notifications()
        await pilot.press("p")
        await pilot.pause()
        assert said(app) == [f"pause is disabled: {READ_ONLY}"]
    app = await fleet_app(read_only=False)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        app.clear_notifications()
        await pilot.press("s")
        await pilot.pause()
        assert said(app) == ["stop: open a node first (enter), or every node's agents (0)"]
        assert isinstance(app.screen, FleetScreen)


# --- Home and End -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "screen", ["node", "agents", "audit", None], ids=["node", "all-agents", "audit", "fleet"]
)
async def test_home_and_end_move_the_table_cursor_to_the_first_and_last_row(screen) -> None:
    app = await fleet_app(screen=screen)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        table = app.focused
        assert isinstance(table, RowTable) and table.row_count > 1
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == table.row_count - 1
        last = table.get_row_at(table.cursor_row)
        assert str(last[1 if screen == "agents" else 0]).strip() in screen_text(app)  # scrolled into view
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0


# --- dialogs ----------------------------------------------------------------------------------------


def _covered(app: Any, widget: Any) -> Any:
    """What a click on ``widget``'s middle would hit instead of it, or None."""
    hit, _ = app.screen.get_widget_at(*widget.region.center)
    return None if hit is widget or widget in hit.ancestors else hit


async def test_a_toast_never_covers_the_buttons_of_the_dialog_it_points_to() -> None:
    """After a rollback on production, with its toast still up, ctrl+z's confirmation opens."""
    app = await fleet_app(nodes=3, screen="node")  # gpu-prod-01, production
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await pilot.pause()
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RollbackPicker)
        await pilot.press("enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        await pilot.click("#typed")
        await pilot.press(*"gpu-prod-01")
        await pilot.click("#confirm")
        await settle(app)
        await pilot.pause()
        assert any("ctrl+z" in message for message in said(app))  # the toast that pointed to undo is up
        await pilot.press("ctrl+z")
        await pilot.pause()
        await pilot.pause()  # the toasts are mounted on the dialog after it is shown
        undo = app.screen
        assert isinstance(undo, ConfirmDialog)
        assert "ctrl+z" in "".join(str(toast.render()) for toast in undo.query("Toast"))  # still up
        for button in undo.query(Button):
            assert _covered(app, button) is None, f"{button.id} is covered by {_covered(app, button)}"
        await pilot.click("#cancel")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)  # the click reached Cancel


async def test_a_dialog_text_box_is_framed_and_the_production_name_box_has_the_focus() -> None:
    app = await fleet_app(nodes=3, screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        await pilot.press("r", "enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.production
        lines = screen_text(app).splitlines()
        for box in dialog.query(Input):
            row = lines[box.region.y]
            left, right = box.region.x, box.region.right - 1
            # framed left and right, so it reads as a place to type, not as a line of hint text
            assert row[left] not in " " and row[right] not in " ", (box.id, row)
        # typing starts in the name box: no click, no tab
        assert app.focused is dialog.query_one("#typed", Input)
        await pilot.press(*"gpu-prod-01")
        await pilot.pause()
        assert not dialog.query_one("#confirm", Button).disabled
        # and Enter there moves on, it never confirms
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog and app.focused is dialog.query_one("#cancel", Button)
