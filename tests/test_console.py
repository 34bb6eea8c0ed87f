"""Interaction tests: the console driven by Pilot on the frozen demo fleet, plus live polling and a dead node.

The frozen demo fleet (seed 7, three nodes, 80 agents at 2026-01-01 00:00 UTC) opens on the Fleet screen;
``screen="node"`` opens gpu-prod-01, the production node, on top of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from textual.widgets import Input, TabbedContent

from backends.base import Backend
from backends.errors import Unreachable
from backends.model import LOG_LEVEL_RANK, LOG_LEVELS, LogRecord, NodeInfo, NodeSnapshot
from console.app import FleetDeckApp, binding_contexts
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.core.node_link import NodeLink
from console.keys import key_display
from console.screens.agent import AgentScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen
from console.screens.logs import LogsScreen
from console.screens.node import NodeScreen
from console.snapshot import screen_text
from widgets.agents_table import COLUMN_KEYS, AgentsTable
from widgets.data_age import DataAge
from widgets.fleet_table import FleetTable
from widgets.log_view import LogView

from .conftest import T0

SMALL = (80, 24)
WIDE = (160, 48)


def _table_agent_ids(table: AgentsTable) -> list[str]:
    return [key.split("/", 1)[1] for key in table.row_keys]


# --- navigation --------------------------------------------------------------------------------------


async def test_enter_on_fleet_row_opens_that_node_and_esc_returns(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        assert table.cursor_row == 0
        first = table.node_at_cursor()
        assert first in app.links
        depth = len(app.screen_stack)

        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)
        assert app.screen.link is app.links[first]
        assert len(app.screen_stack) == depth + 1  # one node screen, not two

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert len(app.screen_stack) == depth


async def test_second_fleet_row_opens_the_second_node(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        first = table.node_at_cursor()
        await pilot.press("down")
        second = table.node_at_cursor()
        assert second is not None and second != first
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)
        assert app.screen.link.name == second


async def test_node_screen_enter_opens_agent_detail_and_esc_returns(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        node_screen = app.screen
        assert isinstance(node_screen, NodeScreen)
        table = node_screen.query_one(AgentsTable)
        await pilot.press("down", "down")
        expected = table.agent_at_cursor()
        assert expected is not None
        depth = len(app.screen_stack)

        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen)
        assert app.screen.agent_id == expected.id
        assert len(app.screen_stack) == depth + 1
        detail = screen_text(app)
        assert re.search(rf"│ Agent +{re.escape(expected.name)} +│", detail), (
            "a name that is its id, said once"
        )

        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is node_screen


async def test_esc_on_the_only_node_does_not_leave_the_console(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(nodes=1, agents=20)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)  # one node: start on its Node screen
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)
        assert app.return_code is None


# --- the node screen -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "160x48"])
async def test_filter_keeps_only_matching_agents_and_esc_clears(frozen_demo_app_async, size) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NodeScreen)
        snapshot = screen.link.snapshot
        assert snapshot is not None
        table = screen.query_one(AgentsTable)
        total = len(snapshot.agents)
        coders = {a.id for a in snapshot.agents if a.labels.get("role") == "coder"}
        assert 0 < len(coders) < total
        assert table.shown_count == total

        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        assert box.has_class("-open") and box.has_focus
        await pilot.press(*"coder")
        await pilot.pause()
        assert box.value == "coder"
        assert table.shown_count == len(coders)
        assert table.row_count == len(coders)
        assert set(_table_agent_ids(table)) == coders
        assert f"{len(coders)} shown" in str(screen.query_one("#agents-panel").border_title)

        await pilot.press("escape")
        await pilot.pause()
        assert box.value == ""
        assert not box.has_class("-open")
        assert table.shown_count == total
        assert table.has_focus
        assert isinstance(app.screen, NodeScreen)  # esc closed the filter, it did not leave the screen


async def test_filter_with_no_match_shows_no_rows_and_enter_opens_nothing(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"zzznomatch", "enter")
        await pilot.pause()
        table = app.screen.query_one(AgentsTable)
        assert table.shown_count == 0
        assert table.agent_at_cursor() is None
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)


async def test_o_cycles_the_sort_column(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(AgentsTable)
        assert table.sort_column == "health"
        keys = table.sort_keys  # every column, the headline KPI's included
        assert set(COLUMN_KEYS) <= set(keys)
        start = keys.index("health")
        seen = []
        for step in range(1, len(keys) + 1):
            await pilot.press("o")
            await pilot.pause()
            expected = keys[(start + step) % len(keys)]
            assert table.sort_column == expected
            assert table.sort_reverse is False
            assert screen.sort == (expected, False)
            seen.append(table.sort_column)
        assert table.sort_column == "health"  # a full cycle comes back
        assert set(seen) == set(keys)


async def test_sort_by_state_orders_the_rows(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(AgentsTable)
        await pilot.press("o")  # health -> state
        await pilot.pause()
        assert table.sort_column == "state"
        by_id = {a.id: a for a in screen.link.snapshot.agents}
        rows = [by_id[i] for i in _table_agent_ids(table)]
        assert [(a.state, a.name) for a in rows] == sorted((a.state, a.name) for a in rows)
        assert "sorted by state ▲" in str(screen.query_one("#agents-panel").border_title)
        await pilot.press("O")
        await pilot.pause()
        assert table.sort_reverse is True
        rows = [by_id[i] for i in _table_agent_ids(table)]
        assert [(a.state, a.name) for a in rows] == sorted(((a.state, a.name) for a in rows), reverse=True)


@pytest.mark.parametrize("size", [SMALL, WIDE], ids=["80x24", "160x48"])
async def test_f_toggles_log_follow(frozen_demo_app_async, size) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        view = app.screen.query_one(LogView)
        assert view.follow is True
        await pilot.press("f")
        await pilot.pause()
        assert view.follow is False
        await pilot.press("f")
        await pilot.pause()
        assert view.follow is True


async def test_node_screen_at_80x24_uses_tabs_and_digits_switch_them(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "agents"
        for key, name in zip("25341", ("gpus", "logs", "host", "plan", "agents"), strict=True):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == name, f"key {key}"
            assert app.screen.active_tab == name


async def test_log_tab_fills_when_it_is_shown(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        view = app.screen.query_one(LogView)
        await pilot.press("5")
        await pilot.pause()
        assert view.visible_count == len(app.screen.link.logs) > 0


async def test_node_screen_at_160x48_shares_the_screen_without_tabs(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.wide is True
        assert not screen.query(TabbedContent)
        for panel in ("agents", "gpus", "host", "plan", "logs"):
            assert screen.query_one(f"#{panel}-panel").display
        await pilot.press("2")  # digits do nothing without tabs
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and not screen.query(TabbedContent)


async def test_node_screen_switches_layout_on_resize(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.screen.query(TabbedContent)
        await pilot.resize_terminal(*WIDE)
        await pilot.pause()
        await pilot.pause()
        assert app.screen.wide is True
        assert not app.screen.query(TabbedContent)
        assert app.screen.query_one(AgentsTable).shown_count == len(app.screen.link.snapshot.agents)


async def test_production_node_screen_is_marked(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        environments = {name: link.environment for name, link in app.links.items()}
        assert "production" in environments.values()
        for index in range(len(app.links)):
            app.screen.query_one(FleetTable).move_cursor(row=index)
            name = app.screen.query_one(FleetTable).node_at_cursor()
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, NodeScreen)
            is_production = environments[name] == "production"
            assert app.screen.has_class("-production") is is_production, name
            if is_production:
                assert "PRODUCTION" in screen_text(app)
            await pilot.press("escape")
            await pilot.pause()


async def test_agent_screen_of_a_production_node_is_marked(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="agent")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen)
        assert app.screen.link.environment == "production"
        assert app.screen.has_class("-production")


# --- logs ----------------------------------------------------------------------------------------------


async def test_l_opens_the_logs_screen_and_v_cycles_the_minimum_level(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        node_name = app.screen.link.name
        await pilot.press("l")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert screen.node == node_name
        view = screen.query_one(LogView)
        assert view.filter.min_level == "debug"
        total = view.visible_count
        assert total == len(app.links[node_name].logs) > 0
        counts = {"debug": total}
        for level in (*LOG_LEVELS[1:], "debug"):
            await pilot.press("v")
            await pilot.pause()
            assert view.filter.min_level == level
            records = view.visible_records()
            assert all(LOG_LEVEL_RANK[r.level] >= LOG_LEVEL_RANK[level] for r in records)
            counts.setdefault(level, len(records))
            assert f"{len(records)} lines" in screen_text(app)
        assert view.visible_count == total  # back to every level
        ordered = [counts[level] for level in LOG_LEVELS]
        assert ordered == sorted(ordered, reverse=True)
        assert counts["warning"] < total  # the levels really do filter

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)


async def test_logs_filter_by_level_and_agent(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="logs")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.node is None  # all nodes, merged
        view = screen.query_one(LogView)
        every = view.visible_records()
        errors = [r for r in every if LOG_LEVEL_RANK[r.level] >= LOG_LEVEL_RANK["error"]]
        assert 0 < len(errors) < len(every)

        await pilot.press("slash")
        box = screen.query_one("#log-filter", Input)
        assert box.has_focus
        await pilot.press(*"level:error")
        await pilot.pause()
        assert view.filter.min_level == "error"
        assert view.visible_count == len(errors)
        assert all(LOG_LEVEL_RANK[r.level] >= LOG_LEVEL_RANK["error"] for r in view.visible_records())

        agent = next(r.source for r in reversed(every) if r.source != "node")
        box.value = ""
        await pilot.press(*f"agent:{agent}", "enter")
        await pilot.pause()
        assert view.filter.source == agent
        assert view.filter.min_level == "debug"
        shown = view.visible_records()
        assert shown and all(r.source == agent for r in shown)
        assert len(shown) == sum(1 for r in every if r.source == agent)
        assert view.has_focus and not box.has_class("-open")

        await pilot.press("x")  # clear the filter
        await pilot.pause()
        assert view.visible_count == len(every)


async def test_agent_logs_key_opens_logs_filtered_to_that_agent(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="agent")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        agent_id = app.screen.agent_id
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)
        records = app.screen.query_one(LogView).visible_records()
        assert records and {r.source for r in records} == {agent_id}


# --- themes, help, palette -----------------------------------------------------------------------------


async def test_t_cycles_through_every_theme(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        cycle = app.theme_cycle()
        assert {"fleetdeck-dark", "fleetdeck-light", "fleetdeck-high-contrast", "ansi-dark"} <= set(cycle)
        assert app.theme == "fleetdeck-dark"
        visited = []
        for _ in cycle:
            before = app.theme
            await pilot.press("t")
            await pilot.pause()
            assert app.theme != before
            assert app.theme == cycle[(cycle.index(before) + 1) % len(cycle)]
            visited.append(app.theme)
        assert app.theme == "fleetdeck-dark"
        assert sorted(visited) == sorted(cycle)


async def test_help_lists_every_binding_in_force(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=(120, 80)) as pilot:  # tall enough that every row is on screen
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        ids = {
            binding.id
            for bindings in binding_contexts().values()
            for binding in bindings
            if getattr(binding, "id", None)
        }
        assert {"help", "quit", "filter", "sort", "tab_logs", "close_help"} <= ids
        listed = {row.action_id for row in app.key_help()}
        assert ids <= listed
        words = set(text.split())
        missing = sorted(i for i in ids if i not in words)
        assert not missing, f"help does not show {missing}"
        for context in binding_contexts():
            assert context in words

        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)


def _help_line(text: str, action_id: str) -> list[str]:
    for line in text.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[-1] == action_id:
            return cells
    raise AssertionError(f"no help row for {action_id!r}")


async def test_keymap_override_shows_in_help_and_works(frozen_demo_app_async) -> None:
    # "k" is free on every screen ("x" clears filters in Logs and Audit: that rebinding is refused)
    app = await frozen_demo_app_async(screen="node", config=Config(keys={"quit": "k"}))
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        row = _help_line(screen_text(app), "quit")
        assert "k" in row and "q" not in row
        assert [r.keys for r in app.key_help() if r.action_id == "quit"] == [key_display("k")]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)

        await pilot.press("q")  # the default key no longer quits
        await pilot.pause()
        assert app.return_code is None
        await pilot.press("k")
        await pilot.pause()
        assert app.return_code == 0


async def test_q_quits_by_default(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert app.return_code is None
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0


async def test_palette_offers_nodes_and_themes(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        titles = list(commands)
        for name in app.links:
            assert f"Go to node {name}" in titles
        for theme in app.theme_cycle():
            assert f"Theme: {theme}" in titles
        assert "Go to fleet" in titles  # more than one node

        target = list(app.links)[1]
        commands[f"Go to node {target}"].callback()
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen) and app.screen.link.name == target

        commands["Theme: fleetdeck-light"].callback()
        await pilot.pause()
        assert app.theme == "fleetdeck-light"

        commands["Go to fleet"].callback()
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_palette_on_a_single_node_has_no_fleet_entry(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(nodes=1, agents=10)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Go to fleet" not in titles
        assert [t for t in titles if t.startswith("Go to node ")] == [f"Go to node {next(iter(app.links))}"]


# --- live mode -----------------------------------------------------------------------------------------


class ManualClock:
    """A clock that moves only when the test says so, read by the app and the demo backend alike."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def _settle(pilot: Any, done: Callable[[], bool], limit_s: float = 15.0) -> None:
    """Let the app's workers run until ``done()``, or ``limit_s`` passes (the asserts then say what lacks)."""
    deadline = time.monotonic() + limit_s
    while not done() and time.monotonic() < deadline:
        await pilot.pause(0.05)


async def test_live_mode_polls_and_streams_logs() -> None:
    clock = ManualClock(T0 + 300)
    links = demo_links(seed=7, nodes=1, agents=20, clock=clock)
    link = links[0]
    app = FleetDeckApp(links, config=Config(refresh_s=0.1), clock=clock, frozen=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.5)
        assert isinstance(app.screen, NodeScreen)  # one node: straight to its Node screen
        assert link.snapshot is not None
        assert link.error is None
        assert app.screen.query_one(DataAge).has_class("-live")
        assert app.screen.query_one(AgentsTable).shown_count == 20

        # every record up to now reached the link and the pane, the newest included
        expected = [r async for r in link.backend.logs(since_seq=0, follow=False)]
        assert expected
        view = app.screen.query_one(LogView)
        # the clock stands still, so this is all there will be; a loaded machine may take a while
        await _settle(pilot, lambda: view.visible_count == len(expected))
        assert link.last_seq == expected[-1].seq
        assert view.visible_count == len(expected)

        # time moves on: new lines stream in without a restart
        clock.t += 30
        await pilot.pause(0.6)
        newer = [r async for r in link.backend.logs(since_seq=expected[-1].seq, follow=False)]
        assert newer
        await _settle(pilot, lambda: view.visible_records()[-1].seq == newer[-1].seq)
        assert link.last_seq == newer[-1].seq
        assert view.visible_records()[-1].seq == newer[-1].seq
        assert link.snapshot.observed_at == pytest.approx(clock.t)


class BrokenBackend(Backend):
    """A node whose every snapshot fails, as a node behind a dead link would."""

    name = "broken"
    capabilities = frozenset()

    def __init__(self) -> None:
        self.calls = 0

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(id="broken-01", name="broken-01", backend=self.name)

    async def snapshot(self) -> NodeSnapshot:
        self.calls += 1
        raise Unreachable("connection refused by 10.0.0.9:8765")

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        return
        yield  # pragma: no cover - makes this an async generator


class ExplodingBackend(BrokenBackend):
    async def snapshot(self) -> NodeSnapshot:
        self.calls += 1
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("backend_class", "message"),
    [
        (BrokenBackend, "offline: connection refused by 10.0.0.9:8765"),
        (ExplodingBackend, "offline: RuntimeError: boom"),
    ],
    ids=["backend-error", "any-exception"],
)
async def test_failing_backend_shows_offline_and_the_app_stays_up(backend_class: Any, message: str) -> None:
    clock = ManualClock(T0)
    backend = backend_class()
    app = FleetDeckApp(
        [NodeLink("broken-01", backend, clock=clock)], config=Config(refresh_s=0.1), clock=clock, frozen=False
    )
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.5)
        assert backend.calls >= 2  # it keeps trying
        assert app.is_running and app.return_code is None
        assert isinstance(app.screen, NodeScreen)
        age = app.screen.query_one("NodeHeader").query_one(DataAge)
        assert age.has_class("-offline")
        assert str(age.content).endswith(message)
        assert message in screen_text(app)
        # keys still work on a node with no data
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)


async def test_a_log_flush_due_while_the_app_closes_does_nothing() -> None:
    """The log-flush timer can fire after the last screen is popped at exit; it must not raise there."""
    clock = ManualClock(T0)
    app = FleetDeckApp([NodeLink("broken-01", BrokenBackend(), clock=clock)], config=Config(), clock=clock)
    async with app.run_test(size=SMALL):
        pass
    assert not app.screen_stack
    app._flush_logs()  # what the timer does when its tick lands in the close
