"""The agents table's Tokens and Cost columns: there when some agent reports tokens or cost, with its figures,
absent from a fleet that reports neither, left out first at narrow widths; on the table alone, on the frozen
demo fleet (whose coders and reviewers report tokens out and cost), and on a real local node that an
OpenTelemetry-fed agent joins."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult

from backends.local.store import Store
from backends.local.store_telemetry import TelemetryWrite
from backends.model import Agent, Kpi
from console.screens.all_agents import AllAgentsScreen
from console.snapshot import screen_text
from widgets.agents_table import AgentsTable

from .table_spy import TableSpy

NOW = 1_767_225_600.0
FIGURES = ("tokens", "cost")


class Host(App[None]):
    def __init__(self, table: AgentsTable) -> None:
        super().__init__()
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table


def kpi(name: str, value: float, unit: str) -> Kpi:
    return Kpi(name=name, value=value, unit=unit, at=NOW, kind="counter")  # type: ignore[arg-type]


def agent(ident: str, *kpis: Kpi, **fields: Any) -> Agent:
    return Agent(id=ident, name=ident, state="running", health="healthy", kpis=kpis, **fields)


def fleet(tokens_in: float = 1200.0) -> list[tuple[str, Agent]]:
    """a: in + out and cost; b: tokens out only; c: neither."""
    tokens = (kpi("tokens_in_total", tokens_in, "tokens"), kpi("tokens_out_total", 11100, "tokens"))
    return [
        ("n", agent("a", *tokens, kpi("cost_usd_total", 1.234, "usd"))),
        ("n", agent("b", kpi("tokens_out_total", 500, "tokens"))),
        ("n", agent("c", cpu_percent=3.0)),
    ]


def plain(rows: list[tuple[str, Agent]]) -> list[tuple[str, Agent]]:
    return [(node, Agent(id=a.id, name=a.name, state=a.state, health=a.health)) for node, a in rows]


def order(table: AgentsTable) -> list[str]:
    return [key.split("/", 1)[1] for key in table.row_keys]


async def test_figures_shown_as_in_plus_out_and_dollars() -> None:
    table = AgentsTable()
    async with Host(table).run_test(size=(240, 12)) as pilot:
        table.show(fleet(), NOW)
        await pilot.pause()
        shown = table.shown_columns
        assert "tokens" in shown and "cost" in shown
        at = shown.index("gpu")
        assert shown[at + 1 : at + 3] == ("tokens", "cost")  # after GPU memory, in that order
        cells = {
            k: (str(table.get_cell(f"n/{k}", "tokens")), str(table.get_cell(f"n/{k}", "cost"))) for k in "abc"
        }
        assert cells == {"a": ("12.3k", "$1.23"), "b": ("500", "n/a"), "c": ("n/a", "n/a")}
        header = table.render_line(0).text
        assert "Tokens" in header and "Cost" in header
        drawn = "\n".join(table.render_line(y).text for y in range(table.size.height))
        assert "12.3k" in drawn and "$1.23" in drawn


async def test_a_fleet_without_tokens_or_cost_has_no_such_columns() -> None:
    table = AgentsTable()
    async with Host(table).run_test(size=(240, 12)) as pilot:
        table.show(plain(fleet()), NOW)
        await pilot.pause()
        assert not set(FIGURES) & set(table.shown_columns)
        assert not set(FIGURES) & set(table.sort_keys)  # nothing to sort by, nothing to cycle through
        assert "Tokens" not in table.render_line(0).text


async def test_columns_follow_what_the_data_reports_and_stay_put_between_refreshes() -> None:
    table = AgentsTable()
    async with Host(table).run_test(size=(240, 12)) as pilot:
        table.show(plain(fleet()), NOW)
        await pilot.pause()
        assert "tokens" not in table.shown_columns
        table.show(fleet(), NOW)  # the same agents, now reporting figures: the columns apply
        await pilot.pause()
        assert {"tokens", "cost"} <= set(table.shown_columns)
        assert str(table.get_cell("n/a", "tokens")) == "12.3k"

        # a figure that moves is one cell patched; the column set and the rows stay
        spy = TableSpy(table)
        table.show(fleet(tokens_in=1300.0), NOW)
        await pilot.pause()
        assert spy.changed_cells() == {("n/a", "tokens")} and not spy.started_over
        assert str(table.get_cell("n/a", "tokens")) == "12.4k"

        table.sort_by("cost")
        table.show(plain(fleet()), NOW)  # nobody reports them any more: gone, the sort back to health
        await pilot.pause()
        assert not set(FIGURES) & set(table.shown_columns)
        assert table.sort_column == "health" and table.row_count == 3


async def test_sorting_by_tokens_and_by_cost_puts_the_unknown_last() -> None:
    table = AgentsTable()
    async with Host(table).run_test(size=(240, 12)) as pilot:
        d = agent("d", kpi("tokens_in_total", 40_000, "tokens"), kpi("cost_usd_total", 0.5, "usd"))
        rows = [*fleet(), ("n", d)]
        table.show(rows, NOW)
        await pilot.pause()
        table.sort_by("tokens")
        await pilot.pause()
        assert order(table) == ["d", "a", "b", "c"]
        assert table.sort_description == "sorted by tokens ▲"
        table.sort_by("cost")
        await pilot.pause()
        assert order(table)[:2] == ["a", "d"] and set(order(table)[2:]) == {"b", "c"}
        table.sort_by("cost", reverse=True)
        await pilot.pause()
        assert order(table)[-2:] == ["d", "a"]


@pytest.mark.parametrize("width", [60, 80, 100, 120, 140, 160, 180, 200, 220, 260])
async def test_they_are_left_out_before_any_column_that_was_there_before(width: int) -> None:
    with_figures, without = AgentsTable(), AgentsTable()
    async with Host(with_figures).run_test(size=(width, 12)) as pilot:
        with_figures.show(fleet(), NOW)
        await pilot.pause()
        shown = set(with_figures.shown_columns)
    async with Host(without).run_test(size=(width, 12)) as pilot:
        without.show(plain(fleet()), NOW)
        await pilot.pause()
        before = set(without.shown_columns)
    assert before <= shown and shown - before <= set(FIGURES)
    if width <= 80:
        assert not set(FIGURES) & shown
    if width >= 260:
        assert set(FIGURES) <= shown


# --- on the frozen demo fleet ------------------------------------------------------------------------------


async def open_all_agents(app: Any, pilot: Any) -> AgentsTable:
    await pilot.pause()
    await pilot.press("0")
    await pilot.pause()
    assert isinstance(app.screen, AllAgentsScreen)
    return app.screen.query_one(AgentsTable)


async def test_demo_fleet_coders_show_their_tokens_and_cost(frozen_demo_app_async) -> None:
    from backends.kpis import format_value

    app = await frozen_demo_app_async()
    async with app.run_test(size=(260, 50)) as pilot:
        table = await open_all_agents(app, pilot)
        assert {"tokens", "cost"} <= set(table.shown_columns)
        coder = next(a for a in app.links["gpu-prod-01"].snapshot.agents if a.id == "coder-01")
        out, cost = coder.kpi("tokens_out_total"), coder.kpi("cost_usd_total")
        assert out is not None and cost is not None and coder.kpi("tokens_in_total") is None
        key = "gpu-prod-01/coder-01"
        table.move_cursor(row=table.row_keys.index(key), animate=False)
        await pilot.pause()
        assert str(table.get_cell(key, "tokens")) == format_value(out.value, "count")
        assert str(table.get_cell(key, "cost")) == format_value(cost.value, "usd")
        assert str(table.get_cell(key, "cost")).startswith("$")
        assert str(table.get_cell("gpu-prod-01/retriever-01", "cost")) == "n/a"  # a server reports neither
        assert "Tokens" in screen_text(app) and "Cost" in screen_text(app)


async def test_demo_fleet_at_80_columns_leaves_them_out(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async()
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_all_agents(app, pilot)
        assert not set(FIGURES) & set(table.shown_columns)
        assert {"tokens", "cost"} <= set(table.sort_keys)  # still sortable by key, as hidden columns are
        assert "Tokens" not in screen_text(app)


# --- a real local node -------------------------------------------------------------------------------------


async def test_a_local_node_gets_the_columns_when_an_otel_agent_reports_them(tmp_path: Path) -> None:
    from console.app import FleetDeckApp
    from console.core.clock import SystemClock
    from console.core.config import Config
    from console.core.fleet_setup import local_link

    state_dir = tmp_path / "node"
    with Store(state_dir) as store:
        store.register_agent("trainer", kind="reporting", state="running", labels={"role": "trainer"})
    clock = SystemClock()
    link = local_link(clock, state_dir=str(state_dir))
    app = FleetDeckApp([link], config=Config(), clock=clock, frozen=False)

    async def until(what: str, done: Any) -> None:
        deadline = time.monotonic() + 30
        while not done():
            assert time.monotonic() < deadline, what
            await pilot.pause(0.1)

    try:
        async with app.run_test(size=(300, 40)) as pilot:
            await until("the trainer never showed", lambda: bool(link.snapshot and link.snapshot.agents))
            table = app.screen.query_one(AgentsTable)  # the Node screen: a node alone is opened on it
            await pilot.pause()
            assert table.row_count == 1 and not set(FIGURES) & set(table.shown_columns)
            with Store(state_dir) as store:
                store.record_telemetry(
                    [
                        TelemetryWrite(
                            "svc",
                            {"source": "otel", "service": "svc", "sdk": "python 1.45.2"},
                            figures={
                                "tokens_in_total": (1200.0, "tokens", "counter"),
                                "cost_usd_total": (0.42, "usd", "counter"),
                            },
                        )
                    ],
                    max_agents=10,
                )
            await until("the otel agent's columns never came", lambda: "cost" in table.shown_columns)
            await pilot.pause()
            assert "tokens" in table.shown_columns
            assert str(table.get_cell("local/svc", "tokens")) == "1.2k"
            assert str(table.get_cell("local/svc", "cost")) == "$0.42"
            assert str(table.get_cell("local/trainer", "cost")) == "n/a"
    finally:
        await link.backend.close()
