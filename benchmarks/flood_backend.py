"""A demo node whose log floods: ``rate`` lines a second, seqs 1..``total``, once :meth:`FloodBackend.begin`
is called. Everything else (snapshot, actions, audit) is the demo node's.

The schedule is fixed by the start time: line ``n`` is written at ``t0 + (n - 1) / rate`` and that is its
``ts``, so the delay a reader measures (arrival - ts) includes every wait on the way, the writer's own
bursts included. The lines come out in bursts every ``TICK_S``, each burst holding the lines now due, as a
busy node's log appender would flush them. A reader resuming from ``since_seq`` gets exactly the lines after
it, the way a real node serves its log.

The text is the demo node's own (its roster's agents and line templates), drawn once into a pool and
reused, so producing a line costs about what a real node's log buffer does, not a template rendering.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from backends.demo import DemoBackend
from backends.demo.logtext import draw_line
from backends.model import LogLevel, LogRecord

TICK_S = 0.01  # the writer's flush interval: 100 lines a burst at 10,000 lines/s
POOL = 1024  # distinct lines drawn up front

Line = tuple[LogLevel, str, str, dict[str, Any]]  # level, source, message, fields


def line_pool(backend: DemoBackend, size: int = POOL, seed: int = 1) -> list[Line]:
    """``size`` lines as the demo node's agents (and the node itself) write them."""
    rng = random.Random(seed)
    roster = backend.world.roster
    pool: list[Line] = []
    for _ in range(size):
        if not roster or rng.random() < 0.12:
            level, message, fields = draw_line(rng, "node", None)
            pool.append((level, "node", message, fields))
        else:
            agent = roster[rng.randrange(len(roster))]
            level, message, fields = draw_line(rng, agent.role.name, agent.model)
            pool.append((level, agent.id, message, fields))
    return pool


class FloodBackend(DemoBackend):
    """The demo node, with a log of ``total`` lines written at ``rate`` lines a second from :meth:`begin`."""

    def __init__(self, *, rate: float, total: int, **demo: Any) -> None:
        super().__init__(**demo)
        if rate <= 0 or total < 0:
            raise ValueError(f"rate must be > 0 and total >= 0, not {rate} and {total}")
        self.rate = rate
        self.total = total
        self.started_at: float | None = None
        self._pool = line_pool(self)

    def begin(self, at: float) -> None:
        """Start the flood at ``at`` (epoch seconds): line 1 is written then."""
        self.started_at = at

    def due(self, now: float) -> int:
        """How many lines are written by ``now``."""
        if self.started_at is None or now < self.started_at:
            return 0
        return min(self.total, int((now - self.started_at) * self.rate) + 1)

    def record(self, seq: int) -> LogRecord:
        assert self.started_at is not None
        level, source, message, fields = self._pool[seq % len(self._pool)]
        ts = self.started_at + (seq - 1) / self.rate
        return LogRecord(seq=seq, ts=ts, level=level, source=source, message=message, fields=fields)

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        cursor = max(since_seq, 0)
        while True:
            due = self.due(time.time())
            for seq in range(cursor + 1, due + 1):
                yield self.record(seq)
            cursor = max(cursor, due)
            if not follow:
                return  # what is written by now, and no more
            await asyncio.sleep(TICK_S)

    def log_records(self, since_seq: int = 0, now: float | None = None) -> list[LogRecord]:
        due = self.due(time.time() if now is None else now)
        return [self.record(seq) for seq in range(max(since_seq, 0) + 1, due + 1)]
