"""KPIs in the console, through Pilot on a node whose agents report them: the agents table's KPI column,
the agent's detail (every KPI with its threshold, state since when, trend), the node's KPI panel (a tab at
80x24, beside the plan at 160x48) and the phase board's live criteria and signed gate; hostile text in
criterion names and sign-offs shown inert; breaches marked by symbol, not colour alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from rich.text import Text

from backends.base import Backend
from backends.model import (
    Agent,
    Criterion,
    Gate,
    GateSignoff,
    Kpi,
    LogRecord,
    Milestone,
    NodeInfo,
    NodeSnapshot,
    Phase,
)
from console.app import FleetDeckApp
from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.kpi_rules import KpiRule, ResolvedRule
from console.core.node_link import NodeLink
from console.screens.agent import AgentScreen
from console.snapshot import build_app, prime, screen_text
from widgets.agents_table import AgentsTable, kpi_label
from widgets.kpi_panel import KpiSummary, breach_text
from widgets.kpi_view import figure_text, state_text, threshold_text, trend
from widgets.phase_board import PhaseBoard

from .hostile import assert_no_raw_controls

T0 = 1767225600.0  # 2026-01-01 00:00:00 UTC
SMALL = (80, 24)
WIDE = (160, 48)
HOSTILE = "[red]x[/] \x1b[2J"
HOSTILE_SHOWN = "[red]x[/] ␛[2J"
# each agent's p95 latency (ms): slow is critical (>= 150), warm a warning (>= 120), fast fine
LATENCY = {"slow": 162.0, "warm": 127.0, "fast": 97.0}


class KpiBackend(Backend):
    """A node whose agents report KPIs; its plan binds a criterion to one and has a signed gate."""

    name = "kpi-test"
    capabilities = frozenset({"logs"})

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(id="kpi-01", name="kpi-01", backend=self.name)

    async def snapshot(self) -> NodeSnapshot:
        now = self.clock()
        agents = [
            Agent(
                id=name,
                name=name,
                state="running",
                health="healthy",
                last_heartbeat=now,
                kpis=(
                    Kpi(name="latency_p95_ms", value=latency, unit="ms", at=now),
                    Kpi(name="success_ratio", value=0.9993, unit="ratio", at=now),
                    Kpi(
                        name="tokens_out_total",
                        value=(now - T0 + 10_000) * 31,
                        unit="tokens",
                        at=now,
                        kind="counter",
                        rate_per_s=31.0,
                    ),
                ),
            )
            for name, latency in LATENCY.items()
        ]
        agents.append(Agent(id="quiet", name="quiet", state="idle", health="healthy", last_heartbeat=now))
        criteria = (
            Criterion(
                name=f"P95 latency {HOSTILE}",
                target="< 120 ms",
                actual="162 ms",
                passed=False,
                kpi="latency_p95_ms",
                since=T0 - 125,
            ),
            Criterion(name="docs written", target="yes", actual="yes", passed=True),
        )
        phase = Phase(
            id="p1",
            name="Rollout",
            order=1,
            status="active",
            progress=0.5,
            milestones=(Milestone(id="m1", name="Week 1", status="active", criteria=criteria),),
            gate=Gate(
                decision="no-go",
                reasons=("P95 latency: 162 ms (target < 120 ms)",),
                since=T0 - 125,
                signed=GateSignoff(
                    decision="go", operator=f"alice{HOSTILE}", at=T0 - 3360, reason=f"load test {HOSTILE}"
                ),
            ),
        )
        return NodeSnapshot(node=self.info, observed_at=now, agents=tuple(agents), phases=(phase,))

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        return
        yield


async def kpi_app(screen: str = "node", config: Config | None = None) -> FleetDeckApp:
    clock = FrozenClock(T0)
    link = NodeLink("kpi-01", KpiBackend(clock), clock=clock)
    await prime([link], clock)
    return build_app([link], config=config or Config(), clock=clock, screen=screen)  # type: ignore[arg-type]


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def row_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if f" {name} " in line)


# --- the pieces ---------------------------------------------------------------------------------------


def test_a_threshold_reads_as_words_in_the_unit_people_use() -> None:
    rule = ResolvedRule("latency_p95_ms", "ms", 120.0, 150.0, "above", 60.0)
    assert threshold_text(rule) == "warn 120 ms · crit 150 ms, above, 60 s"
    ratio = ResolvedRule("success_ratio", "ratio", 0.999, 0.99, "below", 0.0)
    assert threshold_text(ratio) == "warn 99.9% · crit 99%, below"
    counter = ResolvedRule("tokens_out_total", None, 5.0, 10.0, "above", 300.0)
    assert threshold_text(counter, "per_s") == "warn 5/s · crit 10/s, above, 5 min"
    assert threshold_text(None) == "no threshold"


def test_a_breach_is_marked_by_its_symbol_and_word_not_by_colour_alone() -> None:
    kpi = Kpi(name="latency_p95_ms", value=162.0, unit="ms", at=T0)
    assert figure_text(kpi, "critical").plain == "✖ 162 ms"
    assert figure_text(kpi, "warning").plain == "▲ 162 ms"
    assert figure_text(kpi, None).plain == "162 ms"
    assert figure_text(None, None).plain == "n/a"
    assert state_text("critical", T0 + 3723).plain == "✖ critical since 01:02:03"
    assert state_text(None, None).plain == "ok"
    assert state_text(None, None, judged=False).plain == "—"
    rule = ResolvedRule("latency_p95_ms", "ms", 120.0, 150.0, "above", 60.0)
    summary = KpiSummary(name="latency_p95_ms", unit="ms", reporting=3, rule=rule, critical=2, warning=1)
    assert breach_text(summary).plain == "✖2 ▲1"


def test_the_kpi_column_header_leaves_the_unit_to_the_cells() -> None:
    assert kpi_label("latency_p95_ms") == "latency_p95"
    assert kpi_label("tokens_out_total") == "tokens_out"
    assert kpi_label("cost_usd_total") == "cost"
    assert kpi_label("ops_per_hour") == "ops"
    assert kpi_label("queue_depth") == "queue_depth"
    assert kpi_label("a_very_long_kpi_name_indeed") == "a_very_long…"


def test_a_trend_puts_the_threshold_on_its_scale_and_a_steady_figure_flat() -> None:
    # against a crit line of 150 a figure of 97 to 100 runs low; alone it would fill the height
    assert trend([97.0, 98.0, 100.0], 3, (120.0, 150.0)) == "▁▁▁"
    assert trend([97.0, 98.0, 100.0], 3) == "▁▃█"
    assert trend([5.0] * 4, 4) == "▄▄▄▄"  # steady: mid height, never a spike
    assert trend([], 3) == "   "


# --- the agents table ---------------------------------------------------------------------------------


async def test_the_agents_table_shows_the_headline_kpi_graded_and_sorts_worst_first() -> None:
    app = await kpi_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        table = app.screen.query_one(AgentsTable)
        assert table.headline == "latency_p95_ms"
        assert "kpi" in table.shown_columns  # it has room at 80 columns
        text = screen_text(app)
        assert "latency_p95 " in text  # its header: the name, the unit left to the cells
        assert "✖ 162 ms" in row_of(text, "slow")
        assert "▲ 127 ms" in row_of(text, "warm")
        fast = row_of(text, "fast")
        assert "97 ms" in fast and "▲" not in fast and "✖" not in fast
        assert "n/a" in row_of(text, "quiet")
        table.sort_by("kpi", reverse=False)
        await settle(pilot)
        assert [a.name for a in table._agents.values()] == ["slow", "warm", "fast", "quiet"]


async def test_the_config_names_the_headline_kpi() -> None:
    app = await kpi_app(config=Config(headline_kpi="success_ratio"))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert app.screen.query_one(AgentsTable).headline == "success_ratio"
        assert "99.93%" in row_of(screen_text(app), "slow")


# --- the agent's detail -------------------------------------------------------------------------------


async def test_the_agent_detail_shows_every_kpi_with_threshold_state_since_and_trend() -> None:
    for size in (SMALL, WIDE):
        app = await kpi_app()
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            link = app.links["kpi-01"]
            app.push_screen(AgentScreen(app.deck, link, "slow"))
            await settle(pilot)
            text = screen_text(app)
            assert "KPIs of slow" in text
            latency = row_of(text, "latency_p95_ms")
            assert "✖ 162 ms" in latency
            # critical since the first figure the console holds (prime polls back from T0)
            first = link.kpis.series("slow", "latency_p95_ms")[0][0]
            since = Text.assemble(state_text("critical", first)).plain
            assert since in latency, latency
            assert "warn 120 ms · crit 150 ms, above, 60 s" in text
            assert any(block in latency for block in "▁▂▃▄▅▆▇█"), latency  # the trend
            assert "99.93%" in text and "warn 99.9% · crit 99%, below" in text
            tokens = row_of(text, "tokens_out_total")
            assert "31/s" in tokens and "—" in tokens  # a counter's rate; no rule judges it
            if size == SMALL:  # the threshold under its KPI, the trend drawn once, beside the figure
                assert "warn" not in latency
                under = text.splitlines()[text.splitlines().index(latency) + 1]
                assert "warn 120 ms" in under and not any(block in under for block in "▁▂▃▄▅▆▇█"), under


async def test_an_agent_reporting_no_kpi_gets_no_empty_kpi_panel() -> None:
    app = await kpi_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        app.push_screen(AgentScreen(app.deck, app.links["kpi-01"], "quiet"))
        await settle(pilot)
        assert "KPIs of quiet" not in screen_text(app)


# --- the node's KPI panel -----------------------------------------------------------------------------


async def test_the_kpi_tab_at_80x24_shows_fleet_aggregates_thresholds_and_breaches() -> None:
    app = await kpi_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert "7 KPIs" in screen_text(app)
        await pilot.press("7")
        await settle(pilot)
        text = screen_text(app)
        latency = row_of(text, "latency_p95_ms")
        for figure in ("3", "97 ms", "127 ms", "162 ms", "✖1 ▲1"):
            assert figure in latency, (figure, latency)
        assert "warn 120 ms · crit 150 ms, above, 60 s" in text
        assert "ok" in row_of(text, "success_ratio")
        assert "31/s" in row_of(text, "tokens_out_total")
        for line in text.splitlines():
            assert len(line) <= 80


async def test_the_kpi_tab_key_is_in_help_and_can_be_rebound() -> None:
    app = await kpi_app(config=Config(keys={"tab_kpis": "k"}))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert any(row.action_id == "tab_kpis" and row.keys == "k" for row in app.deck.key_help())
        await pilot.press("k")
        await settle(pilot)
        assert "latency_p95_ms" in row_of(screen_text(app), "latency_p95_ms")
        assert getattr(app.screen, "active_tab", None) == "kpis"


async def test_at_160x48_the_kpi_panel_shares_the_screen_with_agents_and_plan() -> None:
    app = await kpi_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "✖1 ▲1" in text  # the KPI panel
        assert "✖ 162 ms" in text  # the agents table
        assert "gate NO-GO" in text  # the phase board


# --- the phase board ----------------------------------------------------------------------------------


async def test_the_phase_board_shows_live_criteria_the_gate_and_its_signoff_inert() -> None:
    app = await kpi_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("4")  # wide: focuses the plan
        await settle(pilot)
        text = assert_no_raw_controls(screen_text(app), "phase board")
        assert HOSTILE_SHOWN in text and "⟳" in text and "signed GO" in text
        assert_no_raw_controls(app.export_screenshot(), "phase board (svg)")
        # the board's lines, whole (the panel wraps them at its width)
        lines = [line.plain for line in app.screen.query_one(PhaseBoard)._lines]
        criterion = next(line for line in lines if "FAIL" in line)
        assert f"FAIL ⟳ P95 latency {HOSTILE_SHOWN}: 162 ms" in criterion, criterion
        assert "(target < 120 ms · latency_p95_ms live since 23:57:55)" in criterion
        assert "PASS docs written: yes" in "\n".join(lines)  # reported, not live: no mark
        gate = next(line for line in lines if "gate" in line)
        assert gate.strip() == "gate NO-GO since 23:57:55 — P95 latency: 162 ms (target < 120 ms)"
        signed = next(line for line in lines if "signed" in line).strip()
        assert signed == (
            f"signed GO by alice{HOSTILE_SHOWN} 23:04:00 — “load test {HOSTILE_SHOWN}”"
            "  (the figures say NO-GO)"
        )
        # markup taken literally: no span of the board is red from the operator's text
        board = app.screen.query_one(PhaseBoard)._lines
        for line in board:
            for span in line.spans:
                if "red" in str(span.style):
                    assert line.plain[span.start : span.end] in ("FAIL", "NO-GO"), line.plain


def test_the_kpi_rule_of_the_config_is_the_one_shown() -> None:
    rule = KpiRule(name="latency_p95_ms", unit="ms", warn=200.0, crit=300.0, for_s=30.0)
    link = NodeLink("kpi-01", KpiBackend(lambda: T0), clock=lambda: T0, kpi_rules=(rule,))
    from console.screens.kpi_judging import rule_of

    shown = rule_of(link, None, "latency_p95_ms")
    assert threshold_text(shown) == "warn 200 ms · crit 300 ms, above, 30 s"
