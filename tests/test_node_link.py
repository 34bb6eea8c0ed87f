"""NodeLink's judgement of a node's data: live, stale while it is slow, offline when it is gone; and what
it takes from a node that tells its environment and rights only once connected."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from backends.errors import TimedOut, Unreachable
from backends.local.backend import LocalBackend
from backends.local.store import Store
from backends.model import NodeInfo
from console.core.clock import FrozenClock
from console.core.node_link import NodeLink, offline_after
from tests.fake_backend import FakeBackend

REFRESH_S = 1.0


class FlakyBackend(FakeBackend):
    """Answers until told to fail with ``failure``; can change what it says of itself."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.reported = NodeInfo(id="fake-01", name="fake-01", backend="fake")

    @property
    def info(self) -> NodeInfo:
        return self.reported

    async def snapshot(self):
        if self.failure is not None:
            raise self.failure
        return await super().snapshot()


def _link(clock: FrozenClock, **kwargs: object) -> tuple[NodeLink, FlakyBackend]:
    backend = FlakyBackend()
    return NodeLink("n1", backend, clock=clock, **kwargs), backend  # type: ignore[arg-type]


def test_a_node_that_times_out_is_stale_with_the_reason_then_offline() -> None:
    clock = FrozenClock(1000.0)
    link, backend = _link(clock)
    assert asyncio.run(link.poll(timeout=1.0))
    backend.failure = TimedOut("timed out after 3 s")
    clock.advance(2.0)
    assert not asyncio.run(link.poll(timeout=1.0))
    fresh = link.freshness(REFRESH_S)
    assert (fresh.kind, fresh.text) == ("stale", "stale 2s · timed out after 3 s")
    clock.advance(offline_after(REFRESH_S))
    assert link.freshness(REFRESH_S).text == "offline: timed out after 3 s"


@pytest.mark.parametrize("failure", [Unreachable("connection refused"), RuntimeError("boom")])
def test_a_node_that_refuses_is_offline_at_once(failure: BaseException) -> None:
    clock = FrozenClock(1000.0)
    link, backend = _link(clock)
    assert asyncio.run(link.poll(timeout=1.0))
    backend.failure = failure
    assert not asyncio.run(link.poll(timeout=1.0))
    assert link.freshness(REFRESH_S).kind == "offline"
    backend.failure = None
    assert asyncio.run(link.poll(timeout=1.0))
    assert link.freshness(REFRESH_S).kind == "live"


def test_the_stricter_environment_wins_and_rights_follow_the_node() -> None:
    clock = FrozenClock(1000.0)
    link, backend = _link(clock, environment="dev")
    assert (link.environment, link.read_only, link.read_only_reason) == ("dev", False, None)
    # once connected, the node says it is production and that this caller may only read
    backend.reported = NodeInfo(id="fake-01", name="fake-01", backend="fake", environment="production",
                                read_only=True)  # fmt: skip
    backend.read_only_reason = "token bob is a viewer"
    assert link.environment == "production"
    assert (link.read_only, link.read_only_reason) == (True, "token bob is a viewer")
    # a production config is never relaxed by a node that calls itself dev
    strict, _ = _link(clock, environment="production")
    assert strict.environment == "production"


def test_an_empty_node_hints_at_the_next_command_for_its_kind() -> None:
    from console.screens.node import empty_node_hint

    link, backend = _link(FrozenClock(1000.0))
    assert empty_node_hint(link) == "No agents reported by this node yet."
    backend.reported = NodeInfo(id="c", name="c", backend="ray")
    assert "fleetdeck dispatch --node n1" in empty_node_hint(link)
    # a served local node: the http backend names what it serves in its labels
    backend.reported = NodeInfo(id="c", name="c", backend="http", labels={"served_backend": "local"})
    assert "fleetdeck run --name NAME" in empty_node_hint(link)


def _store_with_a_slow_agent(state_dir: Path, now: float) -> None:
    with Store(state_dir) as store:
        agent = store.register_agent("slow", kind="process", state="running", pid=os.getpid()).id
        for step in range(0, 91, 10):
            store.record_kpis(agent, {"latency_p95_ms": 200.0}, at=now - 90 + step)
        store.heartbeat(agent, state="running")


def _lose_the_kpi_points(state_dir: Path) -> None:
    """The store's points become unreadable while its latest figures still read: the points' table gives
    way to a view that answers what a snapshot asks (which series have new points) but holds no figure."""
    with Store(state_dir) as store:
        db = store.path
    conn = sqlite3.connect(db)
    try:
        conn.execute("ALTER TABLE kpi_points RENAME TO kpi_points_lost")
        conn.execute("CREATE VIEW kpi_points AS SELECT id, agent_id, name FROM kpi_points_lost")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("readable", [True, False])
async def test_the_link_records_whether_the_nodes_kpi_history_was_read(
    tmp_path: Path, readable: bool
) -> None:
    now = time.time()
    _store_with_a_slow_agent(tmp_path, now)
    if not readable:
        _lose_the_kpi_points(tmp_path)
    backend = LocalBackend(state_dir=tmp_path)
    link = NodeLink("n1", backend, clock=lambda: now)
    try:
        assert await link.poll(timeout=10.0)  # the snapshot reads either way
    finally:
        await backend.close()
    assert backend.supports("kpi_history")
    assert link.kpis_seeded
    assert link.kpi_history_read is readable
    if readable:
        assert link.kpi_history_error is None
        assert len(link.kpis.series(link.snapshot.agents[0].id, "latency_p95_ms")) == 10  # type: ignore[union-attr]
    else:
        assert link.kpi_history_error is not None and "no such column" in link.kpi_history_error
        # judged from the snapshot alone: the one figure seen, not the 90 s the store held
        assert len(link.kpis.series(link.snapshot.agents[0].id, "latency_p95_ms")) == 1  # type: ignore[union-attr]
