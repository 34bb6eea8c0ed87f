"""KPI history and judging at 5,000 agents x 5 KPIs, a new figure of each every second.

What the console does with each snapshot it takes (NodeLink.record): ``KpiHistory.observe`` appends
every figure whose ``at`` advanced and one fleet-wide figure per KPI, then ``kpi_alerts`` judges every
figure a rule names, dating a breach from the history. The snapshots are built beforehand (each with new
values and a new ``at`` one second on), so only the console's own work is timed.

Five KPIs per agent: latency_p95_ms, success_ratio and error_ratio (the built-in rules judge them),
tokens_out_total (a counter, no rule: history only) and queue_depth (a gauge, no rule). 1% of the agents
run slow and hold a critical breach, so the judging path that dates a breach runs too.

- added_p50_ms / added_p99_ms: observe + judge per snapshot, less the same on the same agents without
  KPIs (what KPIs add to handling a snapshot).
- cpu_share_percent: that added median at one snapshot a second, as a share of one core.
- floor_p50_ms: a bare loop reading every figure's ``at`` and value, the least any pure-Python handling
  of every figure costs.
- decode_plain_ms / decode_kpis_ms / decode_added_ms: decoding the snapshot from the wire (msgspec JSON)
  without and with the KPIs, and the difference, for scale: a served node's snapshot carries them.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from typing import Any

import msgspec

from backends.model import Agent, Kpi, NodeInfo, NodeSnapshot
from benchmarks.measure import Target, ms, quantile, rss_mb
from console.core.alerts import kpi_alerts
from console.core.kpi_history import KpiHistory

TITLE = "KPI history and judging: 5,000 agents x 5 KPIs at 1 Hz"
TARGETS = {
    "added_p99_ms": Target(2.0, "observe + judge add < 2 ms p99 to a snapshot"),
    "cpu_share_percent": Target(1.0, "< 1% of a core at 1 Hz"),
}
AGENTS = 5000
SLOW_SHARE = 0.01
START = 1767225600.0
NODE = NodeInfo(id="bench", name="bench", backend="demo")


def _agents(step: int, rng: random.Random, with_kpis: bool) -> tuple[Agent, ...]:
    at = START + step
    agents = []
    for index in range(AGENTS):
        kpis: tuple[Kpi, ...] = ()
        if with_kpis:
            latency = (170.0 if index < AGENTS * SLOW_SHARE else 80.0) + rng.random() * 20
            kpis = (
                Kpi(name="latency_p95_ms", value=latency, unit="ms", at=at),
                Kpi(name="success_ratio", value=0.9995 + rng.random() * 0.0005, unit="ratio", at=at),
                Kpi(name="error_ratio", value=rng.random() * 0.005, unit="ratio", at=at),
                Kpi(
                    name="tokens_out_total",
                    value=1000.0 * step + index,
                    unit="tokens",
                    at=at,
                    kind="counter",
                    rate_per_s=1000.0,
                ),
                Kpi(name="queue_depth", value=float(rng.randrange(10)), at=at),
            )  # fmt: skip
        agents.append(
            Agent(
                id=f"agent-{index:05d}",
                name=f"agent-{index:05d}",
                state="running",
                health="healthy",
                kpis=kpis,
            )
        )
    return tuple(agents)


def _snapshots(count: int, with_kpis: bool) -> list[NodeSnapshot]:
    """Snapshots as the console gets them over HTTP: decoded, so each holds its own strings (a name
    compared with the last snapshot's is compared by content, not found identical)."""
    rng = random.Random(7)
    decoder = msgspec.json.Decoder(NodeSnapshot)
    return [
        decoder.decode(
            msgspec.json.encode(
                NodeSnapshot(node=NODE, observed_at=START + step, agents=_agents(step, rng, with_kpis))
            )
        )
        for step in range(count)
    ]


def _floor(snapshots: list[NodeSnapshot]) -> list[float]:
    """Seconds per snapshot of a bare loop reading each figure's `at` and value: what any pure-Python
    handling of every figure costs at least."""
    timings = []
    for snapshot in snapshots:
        started = time.perf_counter()
        for agent in snapshot.agents:
            for kpi in agent.kpis:
                kpi.at, kpi.value  # noqa: B018
        timings.append(time.perf_counter() - started)
    return timings


def _handle(snapshots: list[NodeSnapshot]) -> tuple[list[float], int]:
    """Seconds per snapshot of what NodeLink.record and link_alerts do with KPIs; alerts at the end."""
    history = KpiHistory()
    timings: list[float] = []
    alerts = 0
    for snapshot in snapshots:
        started = time.perf_counter()
        history.observe(snapshot)
        found = kpi_alerts(snapshot, (), history, snapshot.observed_at, name="bench")
        timings.append(time.perf_counter() - started)
        alerts = len(found)
    return timings, alerts


def _decode_s(snapshot: NodeSnapshot, repeats: int) -> float:
    body = msgspec.json.encode(snapshot)
    decoder = msgspec.json.Decoder(NodeSnapshot)
    best = []
    for _ in range(repeats):
        started = time.perf_counter()
        decoder.decode(body)
        best.append(time.perf_counter() - started)
    return statistics.median(best)


def measure(quick: bool) -> dict[str, Any]:
    # Over 60 s of figures, so the built-in rules' for_s (60 s) is crossed and breaches alert.
    count = 12 if quick else 90
    with_kpis = _snapshots(count, True)
    without = _snapshots(count, False)
    gc.collect()
    gc.freeze()  # the prepared snapshots are not the console's garbage to collect
    before = rss_mb()
    kpi_s, alerts = _handle(with_kpis)
    history_mb = rss_mb() - before
    plain_s, _ = _handle(without)
    warm = 2  # the first snapshots make every series: the steady state is what runs at 1 Hz
    kpi_s, plain_s = kpi_s[warm:], plain_s[warm:]
    added = [k - p for k, p in zip(kpi_s, plain_s, strict=True)]
    floor_s = _floor(with_kpis)[warm:]
    decode_kpis = _decode_s(with_kpis[-1], 3 if quick else 10)
    decode_plain = _decode_s(without[-1], 3 if quick else 10)
    figures: dict[str, Any] = {
        "kpi_p50_ms": ms(statistics.median(kpi_s)),
        "kpi_p99_ms": ms(quantile(kpi_s, 0.99)),
        "plain_p50_ms": ms(statistics.median(plain_s)),
        "added_p50_ms": ms(statistics.median(added)),
        "added_p99_ms": ms(quantile(kpi_s, 0.99) - statistics.median(plain_s)),
        "cpu_share_percent": round(100 * statistics.median(added) / 1.0, 2),
        "floor_p50_ms": ms(statistics.median(floor_s)),
        "decode_plain_ms": ms(decode_plain),
        "decode_kpis_ms": ms(decode_kpis),
        "decode_added_ms": ms(decode_kpis - decode_plain),
        "history_mb": round(history_mb, 1),
        "alerts": float(alerts),
        "figures_per_snapshot": float(AGENTS * 5),
        "note": (
            f"{AGENTS} agents x 5 KPIs (3 judged by the built-in rules), {count} snapshots 1 s apart, "
            f"{SLOW_SHARE:.0%} of agents breaching; pure Python, one process"
        ),
    }
    if quick:
        figures["quick"] = f"quick mode: {count} snapshots"
    return figures


if __name__ == "__main__":
    print(measure(quick=True))  # a quick look; the harness runs it in its own process
