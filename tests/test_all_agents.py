"""The All agents screen: every node's agents in one table, on the frozen demo fleet (seed 7, three nodes:
gpu-prod-01 production, gpu-stage-02 staging, cpu-dev-03 dev; 80 agents, with names such as coder-01 on every
node), plus live polling with a node that stops answering, and the table widget on its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Input

from backends.errors import Unreachable
from backends.model import Agent
from console.app import FleetDeckApp, binding_contexts
from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.dialogs.confirm import ConfirmDialog
from console.keys import clashes, default_keymap
from console.screens.agent import AgentScreen
from console.screens.all_agents import AllAgentsScreen
from console.screens.coalesce import REDRAW_S
from console.screens.fleet import FleetScreen
from console.screens.logs import LogsScreen
from console.snapshot import build_app, prime, screen_text
from widgets.agents_table import AgentsTable

from .conftest import T0
from .table_spy import TableSpy

SMALL = (80, 24)
WIDE = (160, 48)
SIZES = {"80x24": SMALL, "160x48": WIDE}


def rows(table: AgentsTable) -> list[tuple[str, str]]:
    """(node, agent id) of every row, top to bottom."""
    return [tuple(key.split("/", 1)) for key in table.row_keys]  # type: ignore[misc]


def node_cell(table: AgentsTable, node: str, agent_id: str) -> str:
    return str(table.get_cell(f"{node}/{agent_id}", "node"))


async def shown(pilot: Any, table: AgentsTable, key: str, column: str) -> Any:
    """A cell as drawn: off-screen rows are brought up to date when scrolled to, so scroll there first."""
    table.move_cursor(row=["/".join(r) for r in rows(table)].index(key), animate=False)
    await pilot.pause()
    return table.get_cell(key, column)


async def settle(app: Any) -> None:
    """Wait for the action workers; a flow stuck on a dialog fails the test instead of hanging it."""
    await asyncio.wait_for(app.workers.wait_for_complete(), timeout=10)


async def open_all_agents(pilot: Any) -> AllAgentsScreen:
    await pilot.pause()
    assert isinstance(pilot.app.screen, FleetScreen)
    await pilot.press("0")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, AllAgentsScreen)
    return screen


# --- what it shows -------------------------------------------------------------------------------------


async def test_rows_from_every_node_with_their_node(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_all_agents(pilot)
        table = screen.query_one(AgentsTable)
        expected = {(name, a.id) for name, link in app.links.items() for a in link.snapshot.agents}
        assert len(expected) == 80
        assert set(rows(table)) == expected and table.row_count == 80
        assert {node for node, _ in rows(table)} == set(app.links) and len(app.links) == 3
        # the same agent name on several nodes: one row each, told apart by the Node column
        coders = [(node, agent) for node, agent in rows(table) if agent == "coder-01"]
        assert sorted(node for node, _ in coders) == sorted(app.links)
        for node, agent in coders:
            assert node_cell(table, node, agent).strip() == node
        healthy = sum(1 for link in app.links.values() for a in link.snapshot.agents if a.health == "healthy")
        text = screen_text(app)
        assert f"All agents · 3 nodes · {healthy}/80 healthy" in text
        assert "all nodes live" in text
        # worst first, as on the Node screen
        first = table.row_at_cursor()
        assert first is not None and first[1].health == "unhealthy"


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
async def test_filter_by_node_name_and_by_health(frozen_demo_app_async, size) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=SIZES[size]) as pilot:
        screen = await open_all_agents(pilot)
        table = screen.query_one(AgentsTable)
        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        assert box.has_focus
        await pilot.press(*"stage")
        await pilot.pause()
        stage = app.links["gpu-stage-02"].snapshot.agents
        assert {node for node, _ in rows(table)} == {"gpu-stage-02"}
        assert table.row_count == len(stage) == table.shown_count
        assert f"{len(stage)} shown" in screen_text(app)

        # node name and health together: every word must match
        await pilot.press(*" degraded")
        await pilot.pause()
        degraded = {a.id for a in stage if a.health == "degraded"}
        assert degraded and set(rows(table)) == {("gpu-stage-02", i) for i in degraded}

        box.value = "unhealthy"
        await pilot.pause()
        every = [(n, a) for n, link in app.links.items() for a in link.snapshot.agents]
        unhealthy = {(n, a.id) for n, a in every if a.health == "unhealthy"}
        assert unhealthy and set(rows(table)) == unhealthy

        await pilot.press("escape")  # clears the filter, stays on the screen
        await pilot.pause()
        assert box.value == "" and table.row_count == 80
        assert isinstance(app.screen, AllAgentsScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_sort_cycles_through_the_node_column(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="agents")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AllAgentsScreen)
        table = screen.query_one(AgentsTable)
        seen = []
        for _ in table.sort_keys:
            await pilot.press("o")
            await pilot.pause()
            seen.append(table.sort_column)
        assert set(seen) == set(table.sort_keys) and "node" in seen
        while table.sort_column != "node":
            await pilot.press("o")
        await pilot.pause()
        names = {n: {a.id: a.name for a in link.snapshot.agents} for n, link in app.links.items()}
        keys = [(node, names[node][agent]) for node, agent in rows(table)]
        assert keys == sorted(keys)
        assert "sorted by node ▲" in screen_text(app)
        await pilot.press("O")
        await pilot.pause()
        keys = [(node, names[node][agent]) for node, agent in rows(table)]
        assert keys == sorted(keys, reverse=True)


# --- where it leads ------------------------------------------------------------------------------------


async def test_enter_opens_the_agent_on_its_own_node(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_all_agents(pilot)
        table = screen.query_one(AgentsTable)
        # coder-03 runs on every node: pick the gpu-stage-02 one, wherever the sort put it
        table.move_cursor(row=rows(table).index(("gpu-stage-02", "coder-03")))
        await pilot.press("enter")
        await pilot.pause()
        agent_screen = app.screen
        assert isinstance(agent_screen, AgentScreen)
        assert agent_screen.link is app.links["gpu-stage-02"]
        assert agent_screen.agent_id == "coder-03"
        assert "gpu-stage-02" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert table.row_at_cursor() is not None and table.row_at_cursor()[0] == "gpu-stage-02"  # type: ignore[index]


async def test_l_opens_the_selected_agents_logs_on_its_node(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="agents")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(AgentsTable)
        node, agent = table.row_at_cursor()  # type: ignore[misc]
        await pilot.press("l")
        await pilot.pause()
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        assert logs.node == node
        view = logs.query_one("LogView")
        records = view.visible_records()  # type: ignore[attr-defined]
        assert records and {r.source for r in records} == {agent.id}


async def test_palette_and_key_reach_it_and_the_key_is_rebindable(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node", config=Config(keys={"all_agents": "g"}))
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Agents: all nodes"].callback()
        await pilot.pause()
        assert isinstance(app.screen, AllAgentsScreen)
        depth = len(app.screen_stack)
        await pilot.press("enter")  # an agent screen on top; the palette goes back rather than stacking
        await pilot.pause()
        assert isinstance(app.screen, AgentScreen)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Agents: all nodes"].callback()
        await pilot.pause()
        assert isinstance(app.screen, AllAgentsScreen) and len(app.screen_stack) == depth

        while not isinstance(app.screen, FleetScreen):
            app.pop_screen()
        await pilot.press("0")  # rebound: the default key does nothing now
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, AllAgentsScreen)
        assert [r.keys for r in app.key_help() if r.action_id == "all_agents"] == ["g"]


def test_the_key_has_an_id_a_default_and_no_clash() -> None:
    contexts = binding_contexts()
    assert "all-agents" in contexts
    fleet_ids = {getattr(b, "id", None): getattr(b, "key", None) for b in contexts["fleet"]}
    assert fleet_ids["all_agents"] == default_keymap(contexts)["all_agents"] == "0"
    assert clashes(contexts, {}) == []
    # "A" acknowledges an alert in the Fleet screen's Attention panel: the key must not be that
    assert all(getattr(b, "key", None) != "0" for b in contexts["attention"])


# --- acting from it ------------------------------------------------------------------------------------


async def test_pause_acts_on_the_selected_agents_node_only(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(config=Config(operator="alice"))
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_all_agents(pilot)
        table = screen.query_one(AgentsTable)
        await pilot.press("slash", *"coder-01", "enter")  # one coder-01 per node
        await pilot.pause()
        assert sorted(node for node, _ in rows(table)) == sorted(app.links)
        table.move_cursor(row=rows(table).index(("gpu-stage-02", "coder-01")))
        await pilot.pause()
        assert "keys act on gpu-stage-02" in str(screen.query_one("#all-agents-panel").border_subtitle)
        before = {name: len(await link.backend.audit()) for name, link in app.links.items()}

        await pilot.press("p")  # one agent on a staging node: no confirmation, as on the Node screen
        await settle(app)
        await pilot.pause(REDRAW_S + 0.1)

        def state(node: str) -> str:
            return next(a.state for a in app.links[node].snapshot.agents if a.id == "coder-01")

        assert state("gpu-stage-02") == "paused"
        assert state("gpu-prod-01") != "paused" and state("cpu-dev-03") != "paused"
        trail = await app.links["gpu-stage-02"].backend.audit()
        assert [(e.operator, e.action, e.target) for e in trail[before["gpu-stage-02"] :]] == [
            ("alice", "pause", "agent:coder-01")
        ]
        for other in ("gpu-prod-01", "cpu-dev-03"):
            assert len(await app.links[other].backend.audit()) == before[other]
        # and the table shows it now, on that node's row only
        assert str(table.get_cell("gpu-stage-02/coder-01", "state")) == "paused"
        assert str(table.get_cell("gpu-prod-01/coder-01", "state")) != "paused"


async def test_production_node_still_needs_its_name_typed(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(config=Config(operator="alice"))
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_all_agents(pilot)
        table = screen.query_one(AgentsTable)
        await pilot.press("slash", *"gpu-prod coder-0", "enter")
        await pilot.pause()
        assert {node for node, _ in rows(table)} == {"gpu-prod-01"}
        table.move_cursor(row=0)
        await pilot.press("space", "space", "p")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and dialog.production and dialog.node == "gpu-prod-01"
        assert dialog.query_one("#confirm").disabled
        await pilot.press("escape")
        await settle(app)
        assert isinstance(app.screen, AllAgentsScreen)


async def test_marks_on_several_nodes_are_refused_without_a_backend_call(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(config=Config(operator="alice"))
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_all_agents(pilot)
        table = screen.query_one(AgentsTable)
        await pilot.press("slash", *"coder-01", "enter")
        await pilot.pause()
        before = {name: len(await link.backend.audit()) for name, link in app.links.items()}
        table.move_cursor(row=0)
        await pilot.press("space", "space")  # two coder-01s, on two nodes
        assert len({node for node, _ in table.chosen()}) == 2
        assert "marked on 2 nodes" in str(screen.query_one("#all-agents-panel").border_subtitle)
        for key in ("p", "s", "d", "c", "r"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, AllAgentsScreen), key  # no dialog opened
        await settle(app)
        assert {name: len(await link.backend.audit()) for name, link in app.links.items()} == before
        assert any("one node at a time" in str(n.message) for n in app._notifications)


async def test_read_only_node_dims_the_action_keys() -> None:
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=3, agents=80, clock=clock, read_only=True)
    await prime(links, clock)
    app = build_app(links, config=Config(), clock=clock, screen="agents")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AllAgentsScreen)
        assert screen.check_action("pause_resume", ()) is None
        assert screen.check_action("sort", ()) is True
        assert "(read-only)" in str(screen.query_one("#all-agents-panel").border_subtitle)


# --- a node that stops answering ----------------------------------------------------------------------


class ManualClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def test_an_offline_node_keeps_its_rows_marked_while_the_others_stay_live() -> None:
    clock = ManualClock(T0 + 300)
    links = demo_links(seed=7, nodes=3, agents=80, clock=clock)
    app = FleetDeckApp(links, config=Config(refresh_s=0.1), clock=clock, frozen=False, start_screen="agents")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.5)
        screen = app.screen
        assert isinstance(screen, AllAgentsScreen)
        table = screen.query_one(AgentsTable)
        assert table.row_count == 80
        dead = app.links["gpu-stage-02"]
        ids = [a.id for a in dead.snapshot.agents]

        async def refuse() -> Any:
            raise Unreachable("connection refused by 10.0.0.9:8765")

        dead.backend.snapshot = refuse  # type: ignore[method-assign]
        await pilot.pause(REDRAW_S + 0.5)
        assert dead.error is not None

        assert table.row_count == 80  # its last data stays on screen...
        for agent_id in ids:
            key = f"gpu-stage-02/{agent_id}"
            assert str(await shown(pilot, table, key, "node")).startswith("✖ gpu-stage-02")  # ...marked
            name = await shown(pilot, table, key, "name")
            assert isinstance(name, Text) and any("dim" in str(span.style) for span in name.spans)
        for node in ("gpu-prod-01", "cpu-dev-03"):
            for agent in app.links[node].snapshot.agents:
                key = f"{node}/{agent.id}"
                assert str(await shown(pilot, table, key, "node")) == f"  {node}"  # live
                live_name = await shown(pilot, table, key, "name")  # a Text (names are never markup)...
                assert not any("dim" in str(span.style) for span in live_name.spans)  # ...but not dimmed
        text = screen_text(app)
        assert "✖ gpu-stage-02 offline: connection refused by 10.0.0.9:8765 — showing its last data" in text
        assert "2/3 nodes live" in text

        # it comes back: the marks go
        del dead.backend.snapshot
        await pilot.pause(REDRAW_S + 0.5)
        assert dead.error is None
        for agent_id in ids:
            assert str(await shown(pilot, table, f"gpu-stage-02/{agent_id}", "node")) == "  gpu-stage-02"
        assert "all nodes live" in screen_text(app)


# --- the table on its own ------------------------------------------------------------------------------


class Host(App[None]):
    def __init__(self, table: AgentsTable) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table


def agent(ident: str, **fields: object) -> Agent:
    base: dict[str, object] = {"id": ident, "name": ident, "state": "running", "health": "healthy"}
    base.update(fields)
    return Agent(**base)  # type: ignore[arg-type]


async def test_a_new_order_moves_rows_and_patches_only_what_is_on_screen() -> None:
    table = AgentsTable(node_column=True)
    async with Host(table).run_test(size=(120, 12)) as pilot:
        fleet = [(f"n{i % 3}", agent(f"a{i:03d}", cpu_percent=float(i))) for i in range(200)]
        table.show(fleet, T0)
        table.sort_by("cpu")  # highest first
        await pilot.pause()
        assert rows(table)[0] == ("n1", "a199")
        spy = TableSpy(table)
        # every agent's CPU changes and the order turns over: rows move, nothing is re-added
        table.show([(n, agent(a.id, cpu_percent=1000.0 - (a.cpu_percent or 0))) for n, a in fleet], T0)
        await pilot.pause()
        assert not spy.started_over
        assert rows(table)[0] == ("n0", "a000")
        updated = {key for key, _ in spy.changed_cells()}
        assert 0 < len(updated) < 60  # the rows on screen and a margin, not all 200
        assert spy.rows_drawn < 20  # and of those, the ones in view are drawn
        assert table.get_cell("n0/a000", "cpu") == "1000%"
        # rows scrolled to are brought up to date before they are drawn
        table.move_cursor(row=150)
        await pilot.pause()
        key = "/".join(rows(table)[150])
        expected = f"{1000 - int(key.split('/a')[1]):.0f}%"
        assert table.get_cell(key, "cpu") == expected


async def test_marks_survive_a_reorder_and_the_cursor_follows_its_agent() -> None:
    table = AgentsTable(node_column=True)
    async with Host(table).run_test(size=(120, 20)) as pilot:
        fleet = [("x", agent("a", cpu_percent=1.0)), ("y", agent("a", cpu_percent=2.0))]
        table.sort_by("cpu")
        table.show(fleet, T0)
        await pilot.pause()
        assert rows(table) == [("y", "a"), ("x", "a")]
        table.move_cursor(row=1)
        table.toggle_mark()
        assert table.chosen() == [("x", fleet[0][1])]
        table.move_cursor(row=0)  # on y/a
        swapped = [("x", agent("a", cpu_percent=9.0)), ("y", agent("a", cpu_percent=2.0))]
        table.show(swapped, T0)
        await pilot.pause()
        assert rows(table) == [("x", "a"), ("y", "a")]
        assert table.row_at_cursor() == ("y", swapped[1][1])  # the cursor stayed on its agent
        assert [node for node, _ in table.chosen()] == ["x"]
        assert str(table.get_cell("x/a", "name")).startswith("✓ ")


# --- snapshots -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_all_agents_screen(snap_compare, frozen_demo_app, size: str) -> None:
    assert snap_compare(frozen_demo_app(screen="agents"), terminal_size=SIZES[size])


def test_all_agents_screen_with_an_offline_node(snap_compare, frozen_demo_app) -> None:
    """gpu-stage-02 stopped answering: its rows stay, dimmed and marked, and the status line says why."""
    app = frozen_demo_app(screen="agents")
    app.links["gpu-stage-02"].error = "connection refused by 10.0.0.9:8765"
    assert snap_compare(app, terminal_size=(120, 30))


def test_snapshot_command_renders_the_all_agents_screen(fleetdeck, tmp_path) -> None:
    out = tmp_path / "agents.txt"
    at = str(T0)
    result = fleetdeck(
        "snapshot", "--demo", "--at", at, "--screen", "agents", "--size", "80x24", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "All agents · 3 nodes · " in text
    assert {"gpu-prod-01", "gpu-stage-02", "cpu-dev-03"} <= set(text.split())
