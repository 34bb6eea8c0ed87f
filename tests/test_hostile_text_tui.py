"""Hostile text in the console, through Pilot: every screen, panel, dialog, notification and the palette show
escape sequences and controls visibly and markup literally (issue 12, §2).

The node (tests/hostile_backend.py) puts the corpus in every string field it has. Each check reads what the
screen would send to the terminal (the compositor's output as text, and the SVG export) and asserts that no
raw control is in it, that the visible form (``␛]0;pwned␇``) is, and that markup was not applied (the
literal ``[link=...]`` and ``[bold red]`` are on screen).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from textual.content import Content

from console.app import FleetDeckApp
from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.node_link import NodeLink
from console.dialogs.checkpoint import CheckpointDialog
from console.dialogs.confirm import ConfirmDialog
from console.dialogs.dispatch import DispatchDialog
from console.dialogs.rollback import RollbackPicker
from console.screens.audit_detail import AuditDetailScreen
from console.screens.help import HelpScreen
from console.snapshot import build_app, prime, screen_text

from .hostile import SHORT_SHOWN, assert_no_raw_controls
from .hostile_backend import AGENT_ID, T0, HostileBackend

WIDE = (160, 48)
SMALL = (80, 24)
LINK = "edge\x1b]0;t\x07[b]01"  # a configured name: the operator's, but shown with the same care
LINK_SHOWN = "edge␛]0;t␇[b]01"
NAME_SHOWN = f"[bold red]{SHORT_SHOWN}"  # the agent's name: not bold, not red, not a link


async def hostile_app(screen: str | None = None, links: int = 1, **backend: Any) -> FleetDeckApp:
    clock = FrozenClock(T0)
    made = [NodeLink(LINK, HostileBackend(clock, **backend), clock=clock)]
    made += [
        NodeLink(f"second-{i}", HostileBackend(clock, gpus=False), clock=clock) for i in range(links - 1)
    ]
    await prime(made, clock)
    return build_app(made, config=Config(), clock=clock, screen=screen)  # type: ignore[arg-type]


def shows(app: FleetDeckApp, where: str, *visible: str) -> str:
    """The screen as the terminal would get it: no raw control, and each of ``visible`` on it."""
    text = assert_no_raw_controls(screen_text(app), where)
    for form in visible:
        assert form in text, f"{where}: {form!r} not on screen:\n{text}"
    svg = app.export_screenshot()
    assert_no_raw_controls(svg, f"{where} (svg)")
    ET.fromstring(svg)  # a raw control would make the SVG invalid XML
    return text


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def test_node_screen_shows_every_panel_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        text = shows(app, "node screen", NAME_SHOWN, LINK_SHOWN, "␛[2J", "[link=http://x]click[/link]")
        assert "click" in text.split("[link=http://x]", 1)[1]  # the link's text is there, as written


async def test_node_screen_tabs_at_80x24_show_every_panel_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        for tab in "1234567":
            await pilot.press(tab)
            await settle(pilot)
            shows(app, f"tab {tab}", "␛]0;pwned␇")


async def test_gpu_error_reason_is_shown_safely() -> None:
    app = await hostile_app(gpus=False)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        shows(app, "gpu error", "GPU metrics unavailable", SHORT_SHOWN)


async def test_agent_screen_shows_every_field_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app.open_agent(app.links[LINK], AGENT_ID)
        await settle(pilot)
        shows(app, "agent screen", f"(id{SHORT_SHOWN})", f"role={SHORT_SHOWN}", "␛]0;pwned␇")


async def test_an_agents_logs_screen_is_filtered_to_its_hostile_id() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app.open_logs(LINK, source=AGENT_ID)
        await settle(pilot)
        text = shows(app, "agent's logs", f"agent id{SHORT_SHOWN}", "2 lines")
        assert "one␤two" not in text  # the other agent's line is filtered out


async def test_logs_screen_shows_lines_safely() -> None:
    app = await hostile_app(links=2)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app.open_logs(None)
        await settle(pilot)
        shows(app, "logs screen", "one␤two␛[2J", SHORT_SHOWN, LINK_SHOWN)


async def test_audit_screen_and_entry_detail_show_text_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        shows(app, "audit screen", "␛]0;pwned␇")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AuditDetailScreen)
        text = shows(app, "audit detail", SHORT_SHOWN)
        # a multi-line pane keeps the detail's line break (and still shows the controls)
        assert "second line" in text and "␤second line" not in text


async def test_audit_quick_filter_on_a_hostile_operator_name_is_shown_safely_and_still_matches() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("o")  # cycle to the first operator seen: the node's hostile name
        await pilot.press("slash")  # and open the filter box, which shows it
        await settle(pilot)
        shows(app, "audit filter", f"operator:{SHORT_SHOWN}", "1 entries")


async def test_fleet_and_all_agents_screens_show_text_safely() -> None:
    app = await hostile_app(links=2)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        shows(app, "fleet screen", LINK_SHOWN, "␛]0;pwned␇")
        app.open_all_agents()
        await settle(pilot)
        shows(app, "all agents", NAME_SHOWN, LINK_SHOWN)


async def test_checkpoint_dialog_and_the_refusal_notification_are_safe() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CheckpointDialog)
        shows(app, "checkpoint dialog", f"Checkpoint {LINK_SHOWN}")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.pause(0.3)
        said = [n for n in app._notifications if "the node refused" in n.message]
        assert said and not said[0].markup, [n.message for n in app._notifications]
        assert said[0].message.endswith(f"the node refused: {SHORT_SHOWN}")
        shows(app, "refusal notification", "the node refused", "[link=http://x]")


async def test_rollback_picker_and_confirmation_show_labels_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RollbackPicker)
        shows(app, "rollback picker", SHORT_SHOWN)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmDialog)
        shows(app, "rollback confirmation", f"back to {SHORT_SHOWN}", f"workspace {SHORT_SHOWN}")


async def test_stop_confirmation_lists_what_it_touches_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        shows(app, "stop confirmation", f"agent id{SHORT_SHOWN}", "running task")


async def test_dispatch_dialog_lists_agents_safely() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, DispatchDialog)
        shows(app, "dispatch dialog", f"id{SHORT_SHOWN}", LINK_SHOWN)


async def test_help_shows_a_nodes_read_only_reason_safely() -> None:
    app = await hostile_app(read_only=True)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        shows(app, "help", f"read-only because {SHORT_SHOWN}"[:40])


async def test_palette_shows_phase_names_literally() -> None:
    app = await hostile_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        commands = list(app.get_system_commands(app.screen))
        phase = [c for c in commands if c.title.startswith("Pause phase")]
        assert phase, [c.title for c in commands]
        # the palette parses titles and help as markup: they must render back to the safe text
        assert Content.from_markup(phase[0].title).plain == f"Pause phase {SHORT_SHOWN}"
        assert_no_raw_controls(phase[0].title + phase[0].help, "palette entry")
        assert Content.from_markup(f"Go to node {LINK_SHOWN}".replace("[", "\\[")).plain.endswith(LINK_SHOWN)
        assert any(Content.from_markup(c.title).plain == f"Go to node {LINK_SHOWN}" for c in commands)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"pause phase")
        await pilot.pause(0.5)
        shows(app, "palette", "Pause phase", "␛]0;pwned␇")
