"""The Attention panel: the AttentionList widget on its own (hand-made rows), then in the console on the
frozen demo fleet (seed 7, three nodes, 80 agents): what it lists, where enter goes, acknowledge and snooze,
the Node screen's Alerts tab, acks kept across a restart of the console, and snapshots of the panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import TabbedContent

from console.app import FleetDeckApp, binding_contexts
from console.core.alert_book import FILE_NAME, AlertBook
from console.core.alerts import link_alerts
from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.screens.agent import AgentScreen
from console.screens.fleet import FleetScreen
from console.screens.node import NodeScreen
from console.snapshot import prime, screen_text
from widgets.attention import AttentionList, AttentionRow

from .conftest import T0
from .table_spy import TableSpy

SMALL = (80, 24)
WIDE = (160, 48)


# --- the widget on its own ---------------------------------------------------------------------------


class Host(App[None]):
    def __init__(self, widget: AttentionList) -> None:
        super().__init__()
        self.widget = widget
        self.messages: list[Any] = []

    def compose(self) -> ComposeResult:
        yield self.widget

    def _record(self, event: AttentionList.Jump | AttentionList.Acknowledge | AttentionList.Snooze) -> None:
        self.messages.append(event)

    on_attention_list_jump = on_attention_list_acknowledge = on_attention_list_snooze = _record


def row(key: str, severity: str = "warning", **fields: Any) -> AttentionRow:
    base: dict[str, Any] = {"node": "n1", "subject": f"agent:{key}", "reason": f"{key} is unwell"}
    base["since"] = T0 - 252
    return AttentionRow(key=key, severity=severity, **{**base, **fields})


def plain_row(table: AttentionList, key: str) -> list[str]:
    return [cell.plain for cell in table.get_row(key)]


def shown_keys(table: AttentionList) -> list[str]:
    return table.row_keys


async def test_a_long_node_name_leaves_the_reason_its_room_at_80_columns() -> None:
    table = AttentionList()
    async with Host(table).run_test(size=(80, 10)) as pilot:
        reason = "unreachable: connection refused by 10.255.255.1:9"
        node = "far-site-with-a-very-long-name-indeed"
        table.show([row("a", "critical", node=node, subject="node", reason=reason)], T0)
        await pilot.pause()
        assert plain_row(table, "a")[1] == "far-site-with-a-ver…"  # the name is cut...
        assert plain_row(table, "a")[5].startswith("unreachable: connection")  # ...not the reason
        table.show([row("b", subject="agent:" + "x" * 40)], T0)
        await pilot.pause()
        assert plain_row(table, "b")[2] == "agent:" + "x" * 25 + "…"


async def test_rows_say_severity_in_words_since_when_and_the_notes() -> None:
    table = AttentionList()
    async with Host(table).run_test(size=(120, 20)) as pilot:
        table.show(
            [row("a", "critical"), row("b", times=3, acked=True), row("c", snoozed_until=T0 + 3120)], T0
        )
        await pilot.pause()
        assert shown_keys(table) == ["a", "b"]  # the snoozed row is hidden
        assert plain_row(table, "a") == ["✖ CRIT", "n1", "agent:a", "4m12s", "", "a is unwell"]
        assert plain_row(table, "b")[0] == "▲ WARN" and plain_row(table, "b")[4] == "×3 ack"
        assert [str(table.get_row(k)[0].style) for k in "ab"] == ["bold red", "dim"]  # acked recedes
        assert table.hidden_count == 1

        table.focus()
        await pilot.press("Z")
        await pilot.pause()
        assert shown_keys(table) == ["a", "b", "c"]
        assert plain_row(table, "c")[4] == "snoozed 52m"
        assert table.hidden_count == 0


async def test_only_the_cells_that_changed_are_repainted() -> None:
    table = AttentionList()
    async with Host(table).run_test(size=(120, 20)) as pilot:
        table.show([row("a", "critical"), row("b")], T0)
        await pilot.pause()
        spy = TableSpy(table)
        table.show([row("a", "critical"), row("b", acked=True)], T0)
        await pilot.pause()
        calls = spy.changed_cells()
        assert {r for r, _ in calls} == {"b"}  # acking b repaints b (dimmed, "ack"), nothing of a
        assert ("b", "note") in calls
        assert not spy.started_over
        assert "ack" in screen_text(pilot.app).split()  # and the note's column grew to show it
        spy.reset()
        table.show([row("a", "critical"), row("b", acked=True)], T0 + 1)  # only the since-when moved
        await pilot.pause()
        assert spy.changed_cells() == {("a", "since"), ("b", "since")}
        assert spy.rows_drawn == 2


async def test_keys_post_messages_with_the_row_under_the_cursor() -> None:
    table = AttentionList()
    host = Host(table)
    async with host.run_test(size=(120, 20)) as pilot:
        table.show([row("a", "critical"), row("b")], T0)
        table.focus()
        await pilot.pause()
        await pilot.press("down", "enter", "A", "z")
        await pilot.pause()
        kinds = [(type(m).__name__, m.row.key) for m in host.messages]
        assert kinds == [("Jump", "b"), ("Acknowledge", "b"), ("Snooze", "b")]


async def test_the_cursor_follows_its_alert_when_rows_come_and_go() -> None:
    table = AttentionList()
    async with Host(table).run_test(size=(120, 20)) as pilot:
        table.show([row("a"), row("b"), row("c")], T0)
        await pilot.pause()
        table.move_cursor(row=2)
        table.show([row("new", "critical"), row("a"), row("b"), row("c")], T0)
        await pilot.pause()
        assert (cursor := table.row_at_cursor()) is not None and cursor.key == "c"


async def test_the_reason_is_cut_to_the_width_left_at_80_columns() -> None:
    table = AttentionList()
    long = "gate NO-GO: " + "P95 latency over target; " * 10
    async with Host(table).run_test(size=SMALL) as pilot:
        table.show([row("a", reason=long)], T0)
        await pilot.pause()
        reason = table.get_row("a")[-1].plain
        assert reason.startswith("gate NO-GO") and reason.endswith("…")
        assert table.virtual_size.width <= table.scrollable_content_region.width  # no sideways scrolling
        await pilot.resize_terminal(160, 24)
        await pilot.pause()
        assert len(table.get_row("a")[-1].plain) > len(reason)


async def test_a_storm_of_alerts_builds_only_the_rows_in_view() -> None:
    """Every agent of a big fleet missing its heartbeat at once: the list builds the rows on screen (and a
    margin), not 5,000 rows of cells each refresh, and a row scrolled to is built then, up to date."""
    table = AttentionList()
    storm = [row(f"a{n:04d}", reason=f"no heartbeat for {n} s") for n in range(5_000)]
    async with Host(table).run_test(size=(120, 20)) as pilot:
        table.show(storm, T0)
        await pilot.pause()
        assert table.row_count == 5_000
        assert len(table.held_keys()) < 60
        assert plain_row(table, "a0000")[5] == "no heartbeat for 0 s"
        table.show(storm[1:], T0 + 60)  # one cleared, the rest a minute older
        await pilot.pause()
        assert table.row_keys[0] == "a0001" and "a0000" not in table.held_keys()
        assert plain_row(table, "a0001")[3] == "5m12s"
        table.focus()
        await pilot.press("end")
        await pilot.pause()
        assert (cursor := table.row_at_cursor()) is not None and cursor.key == "a4999"
        assert plain_row(table, "a4999")[3:6:2] == ["5m12s", "no heartbeat for 4999 s"]
        assert "no heartbeat for 4999 s" in screen_text(pilot.app)
        assert len(table.held_keys()) < 120


# --- in the console ----------------------------------------------------------------------------------


def attention(app: FleetDeckApp) -> AttentionList:
    return app.screen.query_one(AttentionList)


async def focus_row(pilot: Any, table: AttentionList, key: str) -> None:
    table.focus()
    table.move_cursor(row=shown_keys(table).index(key))
    await pilot.pause()


async def test_fleet_attention_lists_every_nodes_alerts_worst_first(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        book = app.alert_book
        expected = [e.key for e in book.active()]
        assert expected, "the demo fleet at T0 has alerts"
        assert shown_keys(attention(app)) == expected
        assert {e.node for e in book.active()} == set(app.links)
        severities = [e.severity for e in book.active()]
        assert severities == sorted(severities, key=lambda s: s != "critical")
        critical, warning = book.counts()
        assert f"{critical} critical · {warning} warning" in str(
            app.screen.query_one("#attention-panel").border_title
        )
        assert "✖ CRIT" in (text := screen_text(app)) and "▲ WARN" in text


async def test_enter_on_an_agent_alert_opens_that_agent(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        entry = next(e for e in app.alert_book.active() if e.subject.startswith("agent:"))
        await focus_row(pilot, attention(app), entry.key)
        depth = len(app.screen_stack)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen) and len(app.screen_stack) == depth + 1  # no node too
        assert (app.screen.link.name, app.screen.agent_id) == (entry.node, entry.subject.split(":", 1)[1])


async def test_enter_on_a_phase_alert_opens_the_nodes_plan_tab(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        entry = next(e for e in app.alert_book.active() if e.subject.startswith("phase:"))
        await focus_row(pilot, attention(app), entry.key)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.link.name == entry.node
        assert app.screen.query_one(TabbedContent).active == "plan"


async def test_ack_marks_the_alert_and_takes_it_out_of_the_count(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        table = attention(app)
        entry = app.alert_book.active()[0]
        critical, warning = app.alert_book.counts()
        await focus_row(pilot, table, entry.key)
        await pilot.press("A")
        await pilot.pause()
        assert app.alert_book.get(entry.key).acked
        assert "ack" in table.get_row(entry.key)[4].plain.split()
        title = str(app.screen.query_one("#attention-panel").border_title)
        assert f"{critical - 1} critical · {warning} warning · 1 acked" in title
        await pilot.press("A")  # again: the ack is taken back
        await pilot.pause()
        assert not app.alert_book.get(entry.key).acked
        assert "ack" not in table.get_row(entry.key)[4].plain.split()


async def test_snooze_hides_the_alert_and_shift_z_shows_it(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        table = attention(app)
        entry = app.alert_book.active()[1]
        await focus_row(pilot, table, entry.key)
        await pilot.press("z")
        await pilot.pause()
        assert entry.key not in shown_keys(table)
        assert "1 snoozed" in str(app.screen.query_one("#attention-panel").border_title)
        await pilot.press("Z")
        await pilot.pause()
        assert table.get_row(entry.key)[4].plain == "snoozed 1h00m"
        await focus_row(pilot, table, entry.key)
        await pilot.press("z")  # on a snoozed row: wake it
        await pilot.pause()
        assert not app.alert_book.get(entry.key).snoozed(T0)


async def test_node_screen_at_80x24_has_an_alerts_tab_on_6(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        node = app.screen.link.name
        expected = [e.key for e in app.alert_book.active(node)]
        assert expected and {k.split("/")[0] for k in expected} == {node}
        tabs = app.screen.query_one(TabbedContent)
        _, warning = app.alert_book.counts(node)
        label = tabs.get_tab("alerts").label_text
        assert label.startswith("6 Alerts") and (f"▲{warning}" in label) == bool(warning)
        await pilot.press("6")
        await pilot.pause()
        assert tabs.active == "alerts"
        table = attention(app)
        assert shown_keys(table) == expected
        assert "Node" not in [c.label for c in table.columns]  # one node: no node column
        text = screen_text(app)
        assert "▲ WARN" in text and "Alerts · " in text


async def test_node_screen_wide_shows_the_alerts_panel_and_enter_jumps(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#alerts-panel").display
        entry = next(e for e in app.alert_book.active(screen.link.name) if e.subject.startswith("phase:"))
        await focus_row(pilot, attention(app), entry.key)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert app.focused is not None and screen.query_one("#plan-panel") in app.focused.ancestors


async def test_the_attention_keys_are_in_help_and_can_be_rebound(frozen_demo_app_async) -> None:
    assert "attention" in binding_contexts()
    app = await frozen_demo_app_async(config=Config(keys={"acknowledge": "k"}))
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        keys = {r.action_id: r.keys for r in app.key_help() if r.context == "attention"}
        assert keys == {"acknowledge": "k", "snooze": "z", "show_snoozed": "Z"}
        entry = app.alert_book.active()[0]
        await focus_row(pilot, attention(app), entry.key)
        await pilot.press("A")
        await pilot.pause()
        assert not app.alert_book.get(entry.key).acked
        await pilot.press("k")
        await pilot.pause()
        assert app.alert_book.get(entry.key).acked


# --- a live console: acks kept across restarts, a bad file said out loud ----------------------------------


async def live_app(notes: list[str]) -> FleetDeckApp:
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=3, agents=80, clock=clock)
    await prime(links, clock)
    app = FleetDeckApp(links, config=Config(), clock=clock)  # not frozen: the state dir is used
    original = app.notify

    def notify(message: str, **kw: Any) -> None:
        notes.append(str(message))
        original(message, **kw)

    app.notify = notify  # type: ignore[method-assign]
    return app


async def test_acks_and_snoozes_survive_a_restart_of_the_console(isolated_dirs: Path) -> None:
    notes: list[str] = []
    app = await live_app(notes)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        first, second = app.alert_book.active()[:2]
        await focus_row(pilot, attention(app), first.key)
        await pilot.press("A")
        await focus_row(pilot, attention(app), second.key)
        await pilot.press("z")
        await pilot.pause()
    assert (isolated_dirs / "state" / "fleetdeck" / FILE_NAME).exists()

    again = await live_app(notes)
    async with again.run_test(size=WIDE) as pilot:
        await pilot.pause()
        table = attention(again)
        assert "ack" in table.get_row(first.key)[4].plain.split()
        assert second.key not in shown_keys(table)
    assert not [n for n in notes if "alerts" in n and "unreadable" in n]


def corrupt_state_file(isolated_dirs: Path) -> Path:
    state_file = isolated_dirs / "state" / "fleetdeck" / FILE_NAME
    state_file.parent.mkdir(parents=True)
    state_file.write_text("{ this is not json")
    return state_file


async def test_a_corrupt_alert_file_is_a_notification_not_a_crash(isolated_dirs: Path) -> None:
    state_file = corrupt_state_file(isolated_dirs)
    notes: list[str] = []
    app = await live_app(notes)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert shown_keys(attention(app))  # the alerts are there all the same
    assert [n for n in notes if str(state_file) in n and "starting empty" in n]


def test_a_frozen_console_never_reads_or_writes_the_state_dir(frozen_demo_app, isolated_dirs: Path) -> None:
    corrupt_state_file(isolated_dirs)
    app = frozen_demo_app()
    assert app.alert_book.path is None and app.alert_book.warnings == []


# --- snapshots of the panel ------------------------------------------------------------------------------


def _triage(app: FleetDeckApp) -> Any:
    """Acknowledge the first alert, snooze the second, make the third flap twice, and show the snoozed."""

    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        book: AlertBook = app.alert_book
        first, second, third = book.active()[:3]
        for step in (1, 2):  # cleared and back, twice, inside the flap window
            book.update(third.node, [], T0 + step)
            book.update(third.node, link_alerts(app.links[third.node], app.thresholds, T0), T0 + step + 0.5)
        book.acknowledge(first.key)
        book.snooze(second.key, 1800)
        attention(app).focus()
        attention(app).show_snoozed = True
        app.screen.refresh_attention()  # type: ignore[attr-defined]
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "160x48"])
def test_snapshot_attention_triaged(snap_compare, frozen_demo_app, size: tuple[int, int]) -> None:
    app = frozen_demo_app()
    assert snap_compare(app, terminal_size=size, run_before=_triage(app))


def test_snapshot_node_alerts_tab_80x24(snap_compare, frozen_demo_app) -> None:
    assert snap_compare(frozen_demo_app(screen="node"), terminal_size=SMALL, press=["6"])
