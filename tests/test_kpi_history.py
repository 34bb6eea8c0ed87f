"""The console's KPI history and KPI alerts: bounded series, fleet trends, for_s held by the figures' own
times, counters on their rate, units converted, and the alerts NodeLink's judging gives."""

from __future__ import annotations

import random

import msgspec

from backends.model import Agent, Kpi, KpiSeries, NodeInfo, NodeSnapshot
from console.core.alerts import HOLD_UNKNOWN, kpi_alerts, link_alerts
from console.core.config import Thresholds
from console.core.kpi_history import KpiHistory
from console.core.kpi_rules import KpiOverride, KpiRule, rule_book
from console.core.node_link import NodeLink

from .fake_backend import FakeBackend

NODE = NodeInfo(id="n1", name="gpu-01", backend="fake")


def _snapshot(at: float, figures: dict[str, dict[str, float]], **units: str) -> NodeSnapshot:
    agents = tuple(
        Agent(
            id=agent_id,
            name=agent_id,
            state="running",
            health="healthy",
            labels={"role": "retriever"} if agent_id.startswith("r") else {},
            kpis=tuple(
                Kpi(name=name, value=value, unit=units.get(name, "ms"), at=at)  # type: ignore[arg-type]
                for name, value in kpis.items()
            ),
        )
        for agent_id, kpis in figures.items()
    )
    return NodeSnapshot(node=NODE, observed_at=at, agents=agents)


def _feed(history: KpiHistory, steps: list[tuple[float, float]], agent: str = "a1") -> NodeSnapshot:
    snapshot = None
    for at, value in steps:
        snapshot = _snapshot(at, {agent: {"latency_p95_ms": value}})
        history.observe(snapshot)
    assert snapshot is not None
    return snapshot


def test_series_append_only_newer_figures_and_stay_bounded() -> None:
    history = KpiHistory(max_points=5)
    for at in range(20):
        history.observe(_snapshot(float(at), {"a1": {"latency_p95_ms": float(at)}}))
        history.observe(_snapshot(float(at), {"a1": {"latency_p95_ms": 999.0}}))  # same `at`: not new
    assert history.series("a1", "latency_p95_ms") == [(float(t), float(t)) for t in range(15, 20)]
    assert history.series("a1", "nope") == ()


def test_fleet_trend_takes_the_tail_that_matters_for_the_direction() -> None:
    history = KpiHistory()
    latencies = {f"a{i}": {"latency_p95_ms": float(i), "success_ratio": 1 - i / 1000} for i in range(1, 101)}
    history.observe(_snapshot(1.0, latencies, success_ratio="ratio"))
    assert history.fleet_trend("latency_p95_ms") == (96.0,)  # the 95th percentile: the slow tail
    assert history.fleet_trend("success_ratio") == (1 - 96 / 1000,)  # the 5th: the worst few
    assert history.direction("success_ratio") == "below"


def test_a_single_slow_figure_never_alerts_and_a_held_one_does_with_since() -> None:
    rules = ()  # the built-in rule: 120/150 ms for 60 s
    history = KpiHistory()
    snapshot = _feed(history, [(0, 90), (10, 400), (20, 90)])
    assert kpi_alerts(snapshot, rules, history, now=1000) == []
    # the slow figure is the newest and the clock runs on: still one figure, not a slow minute
    snapshot = _feed(history, [(30, 400)])
    assert kpi_alerts(snapshot, rules, history, now=10_000) == []
    snapshot = _feed(history, [(40, 130), (60, 160), (80, 170), (90, 171)])
    (warning,) = kpi_alerts(snapshot, rules, history, now=90)  # over 120 since 30 (60 s held)
    assert (warning.severity, warning.since, warning.rule, warning.subject) == (
        "warning", 30, "kpi:latency_p95_ms", "agent:a1",
    )  # fmt: skip
    snapshot = _feed(history, [(120, 165)])  # over 150 since 60
    (critical,) = kpi_alerts(snapshot, rules, history, now=120, name="gpu-01-configured")
    assert (critical.severity, critical.since, critical.node) == ("critical", 60, "gpu-01-configured")
    assert critical.reason == "latency_p95_ms 165 ms ≥ 150 ms critical threshold (warning 120 ms)"
    assert critical.key == warning.key.replace("gpu-01", "gpu-01-configured")  # one alert, rising
    snapshot = _feed(history, [(130, 100)])
    assert kpi_alerts(snapshot, rules, history, now=130) == []


def test_figures_are_converted_into_the_rule_unit() -> None:
    rules = (KpiRule(name="latency_p95_ms", unit="s", warn=0.2, crit=0.3, for_s=0),)
    history = KpiHistory()
    # figures in ms judged against lines in s: 250 ms is a warning, 0.31 s a critical
    snapshot = _snapshot(1.0, {"a1": {"latency_p95_ms": 250.0}, "b1": {"latency_p95_ms": 310.0}})
    history.observe(snapshot)
    found = {a.subject: a.severity for a in kpi_alerts(snapshot, rules, history, now=1)}
    assert found == {"agent:a1": "warning", "agent:b1": "critical"}
    percent = _snapshot(2.0, {"a1": {"latency_p95_ms": 99.0}}, latency_p95_ms="percent")
    history.observe(percent)
    assert kpi_alerts(percent, rules, history, now=2) == []  # not comparable: not judged


def test_a_counter_is_judged_on_its_rate_per_second() -> None:
    rule = KpiRule(name="ops_total", unit="per_hour", warn=1000, crit=500, direction="below", for_s=0)
    history = KpiHistory(rules=(rule,))

    def ops(agent_id: str, value: float, rate: float | None) -> Agent:
        kpi = Kpi(name="ops_total", value=value, at=5, kind="counter", rate_per_s=rate)
        return Agent(id=agent_id, name=agent_id, kpis=(kpi,))

    agents = (ops("fast", 9e4, 2.0), ops("slow", 10, 0.1), ops("new", 1, None))
    snapshot = NodeSnapshot(node=NODE, observed_at=5, agents=agents)
    history.observe(snapshot)
    (alert,) = kpi_alerts(snapshot, (rule,), history, now=5)
    assert alert.subject == "agent:slow" and alert.severity == "critical"
    assert alert.reason == "ops_total rate 0.1/s ≤ 0.139/s critical threshold (warning 0.278/s)"
    assert history.series("slow", "ops_total") == [(5.0, 0.1)]  # the rate, what a trend shows


def test_without_a_history_a_breach_is_at_most_a_warning_saying_so() -> None:
    snapshot = _snapshot(1.0, {"a1": {"latency_p95_ms": 900.0}})
    (alert,) = kpi_alerts(snapshot, (), None, now=1)
    assert alert.severity == "warning"
    assert alert.reason.endswith(f"({HOLD_UNKNOWN})")
    instant = (KpiRule(name="latency_p95_ms", warn=120, crit=150),)  # for_s 0: the figure is enough
    assert [a.severity for a in kpi_alerts(snapshot, instant, None, now=1)] == ["critical"]


def test_seeded_history_dates_a_breach_that_began_before_the_console() -> None:
    history = KpiHistory()
    history.seed([KpiSeries(agent_id="a1", name="latency_p95_ms", unit="ms", points=((0, 160), (50, 170)))])
    snapshot = _feed(history, [(70, 180)])
    (alert,) = kpi_alerts(snapshot, (), history, now=70)
    assert (alert.severity, alert.since) == ("critical", 0)
    assert history.series("a1", "latency_p95_ms") == [(0, 160), (50, 170), (70, 180)]


def test_a_breach_seeded_longer_than_the_points_kept_is_dated_from_its_first_point() -> None:
    # 600 s of 1 Hz figures over the critical line, a rule with for_s 300: five times the points a series
    # keeps. The breach began at t=1000, not at the oldest point kept.
    rule = (KpiRule(name="latency_p95_ms", warn=120, crit=150, for_s=300),)
    seeded = tuple((float(t), 200.0) for t in range(1000, 1600))
    for seed_first in (True, False):  # seeded before the first snapshot (NodeLink.poll) and after one
        history = KpiHistory(rules=rule)
        if seed_first:
            history.seed([KpiSeries(agent_id="a1", name="latency_p95_ms", unit="ms", points=seeded)])
            snapshot = _feed(history, [(1600.0, 210.0)])
        else:
            snapshot = _feed(history, [(1600.0, 210.0)])
            history.seed([KpiSeries(agent_id="a1", name="latency_p95_ms", unit="ms", points=seeded)])
        (alert,) = kpi_alerts(snapshot, rule, history, now=1600)
        assert (alert.severity, alert.since) == ("critical", 1000.0), seed_first
        assert len(history.series("a1", "latency_p95_ms")) == history.max_points  # still bounded
        # later figures carry the run on; one back under the line ends it
        snapshot = _feed(history, [(1601.0, 220.0)])
        assert [(a.severity, a.since) for a in kpi_alerts(snapshot, rule, history, now=1601)] == [
            ("critical", 1000.0)
        ]
        book = rule_book(rule)
        limits = book.limits(book.for_agent("gpu-01", {})["latency_p95_ms"], "ms")
        assert limits is not None
        assert history.breach_since("a1", "latency_p95_ms", limits, "critical") == 1000.0
        snapshot = _feed(history, [(1602.0, 90.0)])
        assert kpi_alerts(snapshot, rule, history, now=1602) == []


def test_a_seeded_run_that_broke_is_dated_from_after_the_break() -> None:
    # warning from 1000, critical from 1100, one figure back inside at 1400: the run starts again at 1401
    rule = (KpiRule(name="latency_p95_ms", warn=120, crit=150, for_s=300),)
    points = [(float(t), 130.0 if t < 1100 else 200.0) for t in range(1000, 1600)]
    points[400] = (1400.0, 100.0)
    history = KpiHistory(rules=rule)
    history.seed([KpiSeries(agent_id="a1", name="latency_p95_ms", unit="ms", points=tuple(points))])
    snapshot = _feed(history, [(1600.0, 200.0)])
    assert kpi_alerts(snapshot, rule, history, now=1600) == []  # 199 s since the break: short of for_s
    snapshot = _feed(history, [(1701.0, 200.0)])
    assert [(a.severity, a.since) for a in kpi_alerts(snapshot, rule, history, now=1701)] == [
        ("critical", 1401.0)
    ]


async def test_a_node_link_keeps_the_history_and_its_alerts_reach_link_alerts() -> None:
    backend = FakeBackend()
    link = NodeLink("gpu-01", backend, clock=lambda: 100.0, kpi_rules=(rule_book(()).rules[0],))
    for at, value in [(0.0, 200.0), (30.0, 200.0), (61.0, 200.0)]:
        link.record(_snapshot(at, {"a1": {"latency_p95_ms": value}}))
    assert len(link.kpis.series("a1", "latency_p95_ms")) == 3
    kpi = [a for a in link_alerts(link, Thresholds(), 100.0) if a.rule.startswith("kpi:")]
    assert [(a.severity, a.since) for a in kpi] == [("critical", 0.0)]


def _fleet_step(step: int) -> NodeSnapshot:
    """A fleet that moves in every way the history must follow: figures past and back inside the lines,
    a counter whose rate is unknown at times, figures re-sent with the same `at`, agents that come, go,
    die and reorder their KPIs, and one that changes a KPI's unit."""
    agents = []
    for index in range(12):
        if index == 5 and 8 <= step < 14:
            continue  # gone for a while
        at = float(step) if not (index == 3 and step % 3) else float(step - step % 3)  # re-sends its `at`
        rng = random.Random(f"{index}/{at}")  # so a figure re-sent is the same figure
        kpis = [
            Kpi(name="latency_p95_ms", value=rng.choice([90.0, 130.0, 160.0, 200.0]), unit="ms", at=at),
            Kpi(name="success_ratio", value=rng.choice([0.9999, 0.995, 0.98]), unit="ratio", at=at),
            Kpi(
                name="ops_total",
                value=float(step * 10),
                at=at,
                kind="counter",
                rate_per_s=None if rng.random() < 0.2 else rng.choice([0.1, 5.0]),
            ),
        ]
        if index == 7 and step >= 10:
            kpis[0] = Kpi(name="latency_p95_ms", value=kpis[0].value / 1000, unit="s", at=at)
        if index == 2 and step % 4 == 0:
            kpis.reverse()
        agents.append(
            Agent(
                id=f"a{index}",
                name="same" if index < 2 else f"a{index}",
                kind="actor" if index == 9 else "process",
                state="failed" if index == 9 and step > 6 else "running",
                labels={"role": "retriever" if index % 2 else "planner"},
                kpis=tuple(kpis),
            )
        )
    return NodeSnapshot(node=NODE, observed_at=float(step), agents=tuple(agents))


def test_alerts_from_the_judged_history_are_those_of_judging_every_figure() -> None:
    # kpi_alerts takes the breaches the history judged as it observed the snapshot; given any other
    # snapshot object (here an equal copy) it judges every figure against the history instead. Both must
    # agree at every step, whatever the fleet does.
    rules = (
        KpiRule(
            name="latency_p95_ms",
            unit="ms",
            warn=120,
            crit=150,
            for_s=3,
            overrides=(KpiOverride(labels={"role": "retriever"}, crit=190),),
        ),
        KpiRule(name="ops_total", unit="per_s", warn=1, crit=0.5, direction="below", for_s=2),
    )
    history = KpiHistory(max_points=6, rules=rules, node="gpu-01")
    seen = 0
    for step in range(40):
        snapshot = _fleet_step(step)
        history.observe(snapshot)
        judged = kpi_alerts(snapshot, rules, history, now=step, name="gpu-01")
        walked = kpi_alerts(msgspec.structs.replace(snapshot), rules, history, now=step, name="gpu-01")
        assert judged == walked, step
        seen += len(judged)
        for agent in snapshot.agents:
            for kpi in agent.kpis:
                points = history.series(agent.id, kpi.name)
                assert len(points) <= 6
                assert [t for t, _ in points] == sorted({t for t, _ in points})  # each `at` once, in order
    assert seen > 20  # the fleet did breach, so the comparison compared something
    assert {a.rule for a in judged} <= {"kpi:latency_p95_ms", "kpi:ops_total"}


def test_a_breach_carries_over_figures_re_sent_and_a_counter_without_a_rate() -> None:
    rule = KpiRule(name="ops_total", unit="per_s", warn=1, crit=0.5, direction="below", for_s=10)
    history = KpiHistory(rules=(rule,))

    def step(at: float, rate: float | None) -> NodeSnapshot:
        kpi = Kpi(name="ops_total", value=at, at=at, kind="counter", rate_per_s=rate)
        snapshot = NodeSnapshot(node=NODE, observed_at=at, agents=(Agent(id="a1", name="a1", kpis=(kpi,)),))
        history.observe(snapshot)
        return snapshot

    step(0, 0.1)
    snapshot = step(0, 0.1)  # re-sent: the same figure, the breach stands
    assert kpi_alerts(snapshot, (rule,), history, now=0) == []  # held 0 s of 10
    step(6, 0.2)
    snapshot = step(12, None)  # no rate yet (a restart): not judged, the breach not ended
    assert kpi_alerts(snapshot, (rule,), history, now=12) == []
    snapshot = step(13, 0.2)
    (alert,) = kpi_alerts(snapshot, (rule,), history, now=13)
    assert (alert.severity, alert.since) == ("critical", 0)
    assert history.series("a1", "ops_total") == [(0, 0.1), (6, 0.2), (13, 0.2)]
    limits = history.book.limits(history.book.for_agent("gpu-01", {})["ops_total"], "per_s")
    assert limits is not None and history.breach_since("a1", "ops_total", limits, "critical") == 0
