"""Live plan judging on a local node: what judging KPI-bound criteria costs a snapshot.

A real store holds 7 days of points of 200 agents x 5 KPIs, one every 5 minutes: 2,016,000 points, about
the retention cap (2,000,000), so what a node at 1 Hz holds after half an hour and keeps from then on. The
plan binds criteria to all five, as examples/plan.toml does: latency p95 and uptime over 7 days, the
success ratio over 10 minutes, memory over 1 hour, a counter's growth over 7 days, and a no-go trigger over
5 minutes. Then every agent reports its five figures each second (untimed) and a snapshot is read
(timed), as a console or node server does at 1 Hz.

- cold_ms: the first snapshot of a process: every binding judged from the store.
- steady_p50_ms / steady_max_ms: snapshots a second apart, each after new points in every window.
- refresh_ms: a snapshot 20 minutes on, when even the 7-day figures are due again.
- window_points: points in the longest window (what a snapshot would read to judge it in Python).
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.local.plan_apply import apply_plan_file
from backends.local.store import Store
from benchmarks.measure import Target, ms

TITLE = "Live plan judging: 200 agents x 5 KPIs, 7 days of points"
TARGETS = {
    "steady_p50_ms": Target(20.0, "a 1 Hz snapshot judges the plan in < 20 ms"),
    "cold_ms": Target(2000.0, "the first snapshot of a process in < 2 s"),
}
START = 1_796_000_000.0
WEEK_S = 7 * 86400.0
SEED_STEP_S = 300.0

PLAN = """
name = "Bench"

[[phases]]
id = "p1"
name = "Bench"

  [[phases.milestones]]
  id = "m1"
  name = "Load"

    [[phases.milestones.criteria]]
    name = "P95 latency"
    kpi = "latency_p95_ms"
    target = "< 120 ms"
    over = "7d"

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

    [[phases.milestones.criteria]]
    name = "Memory"
    kpi = "memory_rss_bytes"
    target = "< 80 MB"
    over = "1h"
    aggregate = "max"

    [[phases.milestones.criteria]]
    name = "Requests served"
    kpi = "requests_total"
    target = ">= 1000"
    over = "7d"

  [phases.gate]
  criteria = ["P95 latency", "Success rate", "Uptime", "Memory", "Requests served"]

    [[phases.gate.no_go]]
    name = "latency runaway"
    kpi = "latency_p95_ms"
    target = "> 500 ms"
    over = "5m"
    aggregate = "mean"
"""


def _figures(rng: random.Random, index: int, step: int) -> dict[str, float]:
    return {
        "latency_p95_ms": 80.0 + rng.random() * 30,
        "success_ratio": 0.9995 + rng.random() * 0.0005,
        "uptime_ratio": 0.9999 + rng.random() * 0.0001,
        "memory_rss_bytes": 50e6 + rng.random() * 20e6,
        "requests_total": 300.0 * step + index,
    }


def _seed(db: Path, agents: list[str], points_per_series: int, now: float) -> int:
    """Bulk-insert the history, oldest first, with each series' latest figure (as record_kpis keeps it)."""
    rng = random.Random(16)
    units = {"latency_p95_ms": ("ms", "gauge"), "success_ratio": ("ratio", "gauge"),
             "uptime_ratio": ("ratio", "gauge"), "memory_rss_bytes": ("bytes", "gauge"),
             "requests_total": ("count", "counter")}  # fmt: skip
    conn = sqlite3.connect(db)
    try:
        rows: list[tuple[str, str, float, float]] = []
        latest: dict[tuple[str, str], tuple[float, float]] = {}
        for step in range(points_per_series):
            at = now - (points_per_series - 1 - step) * SEED_STEP_S
            for index, agent in enumerate(agents):
                for name, value in _figures(rng, index, step).items():
                    rows.append((agent, name, at, value))
                    latest[(agent, name)] = (at, value)
        with conn:
            conn.executemany("INSERT INTO kpi_points (agent_id, name, at, value) VALUES (?, ?, ?, ?)", rows)
            conn.executemany(
                "INSERT OR REPLACE INTO kpi_latest (agent_id, name, unit, kind, value, at, rate_per_s)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [(a, n, *units[n], v, at) for (a, n), (at, v) in latest.items()],
            )
        return len(rows)
    finally:
        conn.close()


def _count_since(db: Path, since: float) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM kpi_points WHERE at >= ?", (since,)).fetchone()[0])
    finally:
        conn.close()


def measure(quick: bool) -> dict[str, Any]:
    agent_count = 20 if quick else 200
    points_per_series = 100 if quick else int(WEEK_S / SEED_STEP_S) + 1
    steady_steps = 3 if quick else 4
    now = [START]
    with tempfile.TemporaryDirectory(prefix="fleetdeck-plan-judging-") as tmp:
        state = Path(tmp) / "node"
        plan = Path(tmp) / "plan.toml"
        plan.write_text(PLAN, encoding="utf-8")
        agents = [f"agent-{i:03d}" for i in range(agent_count)]
        with Store(state, clock=lambda: now[0], kpi_max_points=10_000_000) as store:
            for agent in agents:
                store.register_agent(agent, kind="reporting", state="running")
            apply_plan_file(store, plan, "bench")
            db = store.path
        seeded = _seed(db, agents, points_per_series, now[0])

        rng = random.Random(7)
        step = points_per_series
        with Store(state, clock=lambda: now[0], kpi_max_points=10_000_000, verify=False) as store:

            def tick(seconds: float) -> float:
                nonlocal step
                now[0] += seconds
                step += 1
                for index, agent in enumerate(agents):
                    store.record_kpis(agent, _figures(rng, index, step))
                started = time.perf_counter()
                read = store.snapshot_read()
                elapsed = time.perf_counter() - started
                assert read.phases[0].milestones[0].criteria[0].actual is not None
                return elapsed

            window_points = _count_since(db, now[0] - WEEK_S)
            started = time.perf_counter()
            cold = store.snapshot_read()
            cold_s = time.perf_counter() - started
            steady = [tick(1.0) for _ in range(steady_steps)]
            refresh_s = tick(1200.0)
            gate = store.snapshot_read().phases[0].gate.decision
    figures: dict[str, Any] = {
        "cold_ms": ms(cold_s),
        "steady_p50_ms": ms(statistics.median(steady)),
        "steady_max_ms": ms(max(steady)),
        "refresh_ms": ms(refresh_s),
        "window_points": float(window_points),
        "seeded_points": float(seeded),
        "note": (
            f"{agent_count} agents x 5 KPIs, {points_per_series} points each ({SEED_STEP_S:.0f} s apart), "
            f"6 bindings (3 over 7 d); {steady_steps} snapshots 1 s apart; gate {gate}; one process"
        ),
    }
    assert cold.phases, "the plan was read"
    if quick:
        figures["quick"] = f"quick mode: {agent_count} agents, {points_per_series} points each"
    return figures


if __name__ == "__main__":
    print(measure(quick=True))  # a quick look; the harness runs it in its own process
