"""Live judging's cost cuts, checked for what they must not change: figures summed up by SQLite equal those
summed up in Python from the same points, and a kept figure is judged again exactly when the rule says
(a point in scope and max(1 s, over/600) since) — a real SQLite store, a frozen clock."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.kpis import AGGREGATES, aggregate, counter_increase
from backends.local import store_kpi_figures
from backends.local.plan_apply import apply_plan_file
from backends.local.plan_judge import refresh_after
from backends.local.store import Store
from backends.model import Criterion

T0 = 1_796_000_000.0

PLAN = """
name = "Judging"

[[phases]]
id = "p1"
name = "Pilot"

  [[phases.milestones]]
  id = "m1"
  name = "Steady"

    [[phases.milestones.criteria]]
    name = "Success rate"
    kpi = "success_ratio"
    target = ">= 99.9%"
    over = "10m"

    [[phases.milestones.criteria]]
    name = "Uptime"
    kpi = "uptime_ratio"
    target = ">= 99.9%"
    over = "7d"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path, clock: Clock, plan: Path) -> Iterator[Store]:
    with Store(tmp_path / "node", clock=clock) as opened:
        apply_plan_file(opened, plan, "alice")
        for name in ("web-1", "web-2"):
            opened.register_agent(name, kind="reporting", state="running")
        yield opened


def criteria(store: Store) -> dict[str, Criterion]:
    (phase,) = store.phases()
    return {c.name: c for c in phase.milestones[0].criteria}


def verdict_changes(store: Store, name: str) -> list[str | None]:
    return [
        e.detail
        for e in store.audit_since()
        if e.action == "criterion.verdict" and (e.detail or "").startswith(f"m1/{name}:")
    ]


def test_the_refresh_interval_is_a_600th_of_the_window_and_at_least_a_second() -> None:
    assert refresh_after(600.0) == 1.0
    assert refresh_after(60.0) == 1.0
    assert refresh_after(7 * 86400.0) == 1008.0  # about 17 minutes


def test_a_point_past_the_line_flips_a_short_window_on_the_next_snapshot(store: Store, clock: Clock) -> None:
    store.heartbeat("web-1", kpis={"success_ratio": 0.9995, "uptime_ratio": 1.0})
    assert criteria(store)["Success rate"].passed is True
    clock.now += 1
    store.heartbeat("web-2", kpis={"success_ratio": 0.98})
    success = criteria(store)["Success rate"]
    assert success.passed is False and success.since == clock.now
    assert success.actual == "98% (min of 2 agents, 10 min)"
    clock.now += 5
    for _ in range(3):
        criteria(store)
    changes = verdict_changes(store, "Success rate")
    assert len(changes) == 2 and "FAIL" in (changes[1] or ""), "each change recorded once"


def test_a_kept_figure_waits_its_refresh_interval_then_the_point_counts(store: Store, clock: Clock) -> None:
    store.heartbeat("web-1", kpis={"success_ratio": 0.9995, "uptime_ratio": 1.0})
    judged_at = clock.now
    assert criteria(store)["Uptime"].passed is True
    clock.now += 1
    store.heartbeat("web-2", kpis={"uptime_ratio": 0.5})
    assert criteria(store)["Uptime"].passed is True, "a 7-day figure is kept for 1008 s"
    clock.now = judged_at + 1007.5
    assert criteria(store)["Uptime"].passed is True
    clock.now = judged_at + 1008
    uptime = criteria(store)["Uptime"]
    assert uptime.passed is False and uptime.since == clock.now
    assert uptime.actual == "50% (min of 2 agents, 7 d)"


def test_a_figure_with_nothing_new_is_kept_until_its_points_leave_the_window(
    store: Store, clock: Clock
) -> None:
    store.heartbeat("web-1", kpis={"success_ratio": 0.9995})
    assert criteria(store)["Success rate"].actual == "99.95% (min of 1 agent, 10 min)"
    clock.now += 600
    assert criteria(store)["Success rate"].passed is True, "the point is 600 s old: still in the window"
    clock.now += 1
    success = criteria(store)["Success rate"]
    assert (success.actual, success.passed) == (None, None), "its only point left: not measured"


def test_applying_a_plan_and_another_process_judge_afresh(
    tmp_path: Path, store: Store, clock: Clock, plan: Path
) -> None:
    store.heartbeat("web-1", kpis={"uptime_ratio": 1.0})
    assert criteria(store)["Uptime"].passed is True
    clock.now += 2
    store.heartbeat("web-1", kpis={"uptime_ratio": 0.5})
    assert criteria(store)["Uptime"].passed is True, "kept"
    with Store(tmp_path / "node", clock=clock) as other:
        assert criteria(other)["Uptime"].passed is False, "a cache is a process's own"
    apply_plan_file(store, plan, "alice")
    assert criteria(store)["Uptime"].passed is False, "a plan applied forgets every figure"


# --- SQL figures against Python's, from the same points ----------------------------------------------


@pytest.fixture
def points(tmp_path: Path, clock: Clock) -> Iterator[tuple[Store, sqlite3.Connection]]:
    """Three agents' gauges and counters (with resets), at times that collide, some reported late."""
    rng = random.Random(16)
    with Store(tmp_path / "figures", clock=clock) as store:
        for agent in ("a", "b", "c"):
            store.register_agent(agent, kind="reporting", state="running")
            count = 0.0
            for step in range(150):
                at = T0 - rng.randrange(0, 3600)
                count = 0.0 if rng.random() < 0.05 else count + rng.randrange(0, 50)
                store.record_kpis(agent, {"latency_ms": round(rng.uniform(1, 500), 1)}, at=at)
                # two points at each time: the order measured falls back on the order recorded
                store.record_kpis(agent, {"served_total": count}, at=T0 - 3600 + (step // 2) * 40)
        conn = sqlite3.connect(store.path)
        try:
            yield store, conn
        finally:
            conn.close()


@pytest.mark.parametrize("how", AGGREGATES)
@pytest.mark.parametrize("since_s", [60.0, 1800.0, 7200.0])
@pytest.mark.parametrize("agents", [None, ("a", "c"), ("b",)])
def test_sql_figures_equal_the_python_ones(
    points: tuple[Store, sqlite3.Connection], how: str, since_s: float, agents: tuple[str, ...] | None
) -> None:
    store, conn = points
    since = T0 - since_s
    window = store.kpi_window(["latency_ms", "served_total"], since, agents)
    pooled = sorted(p for (_, name), series in window.items() if name == "latency_ms" for p in series)
    expected = aggregate([v for _, v in pooled], how)
    got = store_kpi_figures.gauge(conn, "latency_ms", since, agents, how)
    assert (got.value is None) == (expected is None)
    if expected is not None:
        assert got.value is not None and math.isclose(got.value, expected, rel_tol=1e-12)
        assert got.agents == len({a for (a, name) in window if name == "latency_ms"})
        assert got.oldest == pooled[0][0]
    grown = [counter_increase(s) for (_, name), s in sorted(window.items()) if name == "served_total"]
    expected = aggregate(grown, how)
    got = store_kpi_figures.counter(conn, "served_total", since, agents, how)
    assert (got.value is None) == (expected is None)
    if expected is not None:
        assert got.value is not None and math.isclose(got.value, expected, rel_tol=1e-12)
        assert got.agents == len(grown)


def test_no_points_and_no_agents_are_no_figure(points: tuple[Store, sqlite3.Connection]) -> None:
    _, conn = points
    assert store_kpi_figures.gauge(conn, "latency_ms", T0 + 1, None, "p95").value is None
    assert store_kpi_figures.gauge(conn, "latency_ms", T0 - 3600, (), "max").value is None
    assert store_kpi_figures.counter(conn, "nothing_total", T0 - 3600, None, "sum").value is None


def test_a_phase_done_through_live_passes_alone_gets_its_finish_time(store: Store, clock: Clock) -> None:
    (phase,) = store.phases()
    assert phase.status != "done" and phase.finished_at is None
    store.heartbeat("web-1", kpis={"success_ratio": 0.9995, "uptime_ratio": 1.0})
    (phase,) = store.phases()
    assert phase.status == "done", "every criterion is a bound number and all hold"
    done_at = clock.now
    clock.now += 5
    (phase,) = store.phases()
    assert (phase.finished_at, phase.started_at) == (done_at, done_at), "stamped with the verdicts"
    clock.now += 1
    store.heartbeat("web-1", kpis={"success_ratio": 0.5})
    (phase,) = store.phases()
    assert phase.status != "done"
    (phase,) = store.phases()
    assert phase.finished_at is None and phase.started_at == done_at, "not finished any more"
