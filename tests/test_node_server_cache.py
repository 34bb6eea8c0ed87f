"""The node server's snapshot cache: single flight, refresh ahead of expiry, never older than its TTL."""

from __future__ import annotations

import asyncio

from backends.demo.backend import DemoBackend
from backends.model import NodeSnapshot
from backends.node_server.snapshot_cache import SnapshotCache
from console.core.clock import FrozenClock
from tests.conftest import T0

TTL = 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowBackend(DemoBackend):
    """A demo node whose snapshot takes ``call_s`` of the test clock, and counts its calls."""

    def __init__(self, clock: Clock, call_s: float) -> None:
        super().__init__(seed=7, clock=FrozenClock(T0))
        self.test_clock = clock
        self.call_s = call_s
        self.release = asyncio.Event()

    async def snapshot(self) -> NodeSnapshot:
        await self.release.wait()
        self.test_clock.now += self.call_s
        return await super().snapshot()


def test_refresh_ahead_answers_from_the_current_snapshot_and_never_past_its_ttl() -> None:
    async def run() -> None:
        clock = Clock()
        backend = SlowBackend(clock, call_s=0.01)
        cache = SnapshotCache(backend, ttl_s=TTL, clock=clock)
        backend.release.set()
        first = await cache.get()
        assert cache.backend_calls == 1
        clock.now += 0.2
        assert await cache.get() is first and cache.backend_calls == 1  # fresh: no call

        # close to expiry (within a few call durations): answered at once, the next call starts behind it
        backend.release.clear()
        clock.now = first.taken_at + TTL - 0.03
        assert await cache.get() is first
        await asyncio.sleep(0)  # the refresh task starts
        assert cache.backend_calls == 2
        assert await cache.get() is first and cache.backend_calls == 2  # one call in flight, not two
        backend.release.set()
        second = first
        for _ in range(100):  # until the refresh lands (no wall-clock wait: it is all one event loop)
            await asyncio.sleep(0)
            second = await cache.get()
            if second is not first:
                break
        assert second is not first and cache.backend_calls == 2

        # a refresh still running at expiry: readers wait for it rather than get a stale snapshot
        backend.release.clear()
        clock.now = second.taken_at + TTL - 0.03
        assert await cache.get() is second
        clock.now = second.taken_at + TTL
        waiting = asyncio.create_task(cache.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        backend.release.set()
        third = await waiting
        assert third is not second and cache.backend_calls == 3

    asyncio.run(run())


def test_an_action_still_makes_the_next_read_wait_for_a_new_snapshot() -> None:
    async def run() -> None:
        clock = Clock()
        backend = SlowBackend(clock, call_s=0.01)
        backend.release.set()
        cache = SnapshotCache(backend, ttl_s=TTL, clock=clock)
        first = await cache.get()
        cache.invalidate()
        assert await cache.get() is not first
        assert cache.backend_calls == 2

    asyncio.run(run())
