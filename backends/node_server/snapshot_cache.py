"""A short-lived, single-flight snapshot cache: many readers, one backend call.

A dashboard polling ``/v1/snapshot`` and Prometheus scraping ``/metrics`` at 50 requests a second on a node
with 1,000 agents must not cost 50 snapshots a second (each is psutil, NVML and SQLite for the local node).
A snapshot younger than ``ttl_s`` is served as is; when it is older, the first caller starts one backend
call and every caller arriving meanwhile awaits that same call. The call runs as its own task, so a
client that disconnects does not cancel it for the others. Encoded forms (JSON of the snapshot or of
one of its lists, the metrics text) are kept with the snapshot they came from, so they are built once.
An action invalidates the cache, so its caller's next read sees what it did.

Refresh ahead: a read that finds the snapshot close to expiry (within a few times the last backend call's
duration) starts the next call in the background and is answered from the current one, so under steady
polling no reader waits for the backend (a 1,000-agent local snapshot takes 10-20 ms: the one reader in
25 that used to wait for it set the p99). No answer is ever older than ``ttl_s``: if the refresh is not
done by then, readers wait for it as before. An idle server makes no calls: only a read starts one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from backends.base import Backend
from backends.model import NodeSnapshot

DEFAULT_TTL_S = 0.5
# Refresh when the snapshot's remaining life is under LEAD_FACTOR x the last call's duration + LEAD_MIN_S
# (at most half its life): room for a slower call than the last, without taking many more snapshots.
LEAD_FACTOR = 3.0
LEAD_MIN_S = 0.02


class CachedSnapshot:
    """One snapshot and the encodings made of it so far."""

    def __init__(self, snapshot: NodeSnapshot, taken_at: float) -> None:
        self.snapshot = snapshot
        self.taken_at = taken_at
        self._encoded: dict[str, Any] = {}

    def encoded(self, name: str, build: Callable[[NodeSnapshot], Any]) -> Any:
        """``build(snapshot)``, computed once per snapshot under ``name``."""
        if name not in self._encoded:
            self._encoded[name] = build(self.snapshot)
        return self._encoded[name]


class SnapshotCache:
    def __init__(
        self, backend: Backend, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.backend = backend
        self.ttl_s = ttl_s
        self.clock = clock
        self.backend_calls = 0  # for tests and benchmarks: how many snapshots were really taken
        self._current: CachedSnapshot | None = None
        self._inflight: asyncio.Task[CachedSnapshot] | None = None
        self._generation = 0
        self._last_call_s = 0.0  # how long the last backend call took

    async def get(self) -> CachedSnapshot:
        current = self._current
        if current is not None:
            age = self.clock() - current.taken_at
            if age < self.ttl_s:
                if age >= self.ttl_s - self._lead_s() and self._inflight is None:
                    self._start()  # refresh ahead; this reader is answered from the current one
                return current
        inflight = self._inflight if self._inflight is not None else self._start()
        # shield: a disconnecting client cancels its own wait, never the shared backend call
        return await asyncio.shield(inflight)

    def _lead_s(self) -> float:
        return min(self.ttl_s / 2, LEAD_FACTOR * self._last_call_s + LEAD_MIN_S)

    def _start(self) -> asyncio.Task[CachedSnapshot]:
        task = asyncio.create_task(self._take(self._generation))
        task.add_done_callback(self._forget_inflight)
        self._inflight = task
        return task

    def invalidate(self) -> None:
        """Forget the cached snapshot (after an action); a call already running will not be cached."""
        self._generation += 1
        self._current = None
        self._inflight = None

    async def _take(self, generation: int) -> CachedSnapshot:
        self.backend_calls += 1
        started = self.clock()
        snapshot = await self.backend.snapshot()
        self._last_call_s = max(0.0, self.clock() - started)
        taken = CachedSnapshot(snapshot, started)
        if generation == self._generation:
            self._current = taken
        return taken

    def _forget_inflight(self, task: asyncio.Task[CachedSnapshot]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # mark a failure as retrieved; each waiter got it already
