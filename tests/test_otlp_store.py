"""What the OTLP receiver writes, at the store: agents of kind "otel" registered on first sight up to a
limit, labels merged, counters' increments added up, staleness judged on telemetry's clock, and actions
refused (nothing of fleetdeck's can pause an agent that only exports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.errors import Conflict
from backends.local.backend import LocalBackend
from backends.local.store import Store
from backends.local.store_telemetry import TelemetryWrite
from backends.model import Target

T0 = 1_767_225_600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_agents_past_the_limit_are_refused_whole_and_the_rest_stored(tmp_path: Path) -> None:
    with Store(tmp_path, clock=Clock()) as store:
        store.register_agent("trainer", kind="reporting")  # not an otel agent: it does not count
        writes = [
            TelemetryWrite(
                f"svc-{n}",
                {"source": "otel", "service": f"svc-{n}"},
                figures={"orders_total": (float(n), "count", "counter")},
                logs=[(T0, "info", f"hello from {n}", None)],
            )
            for n in range(5)
        ]
        result = store.record_telemetry(writes, max_agents=3)
        assert (result.stored, result.refused) == (("svc-0", "svc-1", "svc-2"), ("svc-3", "svc-4"))
        assert result.log_records == 3
        assert {a.id: a.kind for a in store.agents()} == {
            "trainer": "reporting",
            "svc-0": "otel",
            "svc-1": "otel",
            "svc-2": "otel",
        }
        assert sorted(r.message for r in store.logs_since(0)) == [f"hello from {n}" for n in range(3)]
        # an agent known already is never refused, whatever the count
        again = store.record_telemetry(
            [TelemetryWrite("svc-0", {}), TelemetryWrite("svc-9", {})], max_agents=3
        )
        assert (again.stored, again.refused) == (("svc-0",), ("svc-9",))


def test_increments_add_to_the_last_figure_and_labels_merge_keeping_the_source(tmp_path: Path) -> None:
    clock = Clock()
    with Store(tmp_path, clock=clock) as store:
        store.register_agent("claude-1a2b3c4d", kind="reporting", labels={"source": "claude-code"})
        for _ in range(3):
            clock.now += 5
            store.record_telemetry(
                [
                    TelemetryWrite(
                        "claude-1a2b3c4d",
                        {"source": "otel", "model": "claude-sonnet-4-5"},
                        increments={"tokens_in_total": (100.0, "tokens")},
                    )
                ],
                max_agents=10,
            )
        (record,) = store.agents()
        assert record.kind == "reporting" and record.last_heartbeat == T0 + 15
        assert record.labels == {"source": "claude-code", "model": "claude-sonnet-4-5"}
        kpis = {k.name: k.value for k in store.latest_kpis()["claude-1a2b3c4d"]}
        assert kpis == {"tokens_in_total": 300.0}


async def test_an_otel_agent_is_stale_on_telemetrys_clock_and_cannot_be_paused(tmp_path: Path) -> None:
    clock = Clock()
    with Store(tmp_path, clock=clock) as store:
        store.record_telemetry([TelemetryWrite("svc", {"source": "otel"})], max_agents=10)
    backend = LocalBackend(state_dir=tmp_path, clock=clock)
    try:
        seen = {}
        for later in (60, 200, 1000):  # a heartbeat would be stale at 15 s; the SDK exports every 60 s
            clock.now = T0 + later
            (agent,) = (await backend.snapshot()).agents
            seen[later] = (agent.kind, agent.state, agent.health, agent.health_reason)
        assert seen == {
            60: ("otel", "running", "healthy", None),
            200: ("otel", "running", "degraded", "no telemetry for 200 s"),
            1000: ("otel", "running", "unhealthy", "no telemetry for 1000 s"),
        }
        for action in (backend.pause, backend.resume, backend.stop):
            with pytest.raises(Conflict, match="known only from its OpenTelemetry"):
                await action(Target(kind="agent", id="svc"), operator="alice")
        (agent,) = (await backend.snapshot()).agents
        assert agent.state == "running"
    finally:
        await backend.close()
