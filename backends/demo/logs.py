"""The demo node's log: generated a whole second at a time from a per-(seed, node, second) RNG.

Sequence numbers are positional, ``seq = (second - origin) * SLOTS_PER_SECOND + slot + 1``, so the records of
any second can be produced on their own: a reader resuming from ``since_seq`` starts at the right second
without replaying history, and the same (seed, time) always yields the same records. Slots below
``GENERATED_SLOTS`` hold simulated lines; the rest hold lines written by operator actions. Only completed
seconds are visible, so a follower never sees a second it has read grow a lower-numbered line.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from backends.model import LogLevel, LogRecord

from .logtext import draw_line
from .roster import (
    CRASH_FAILED_S,
    CRASH_PERIOD_S,
    CRASH_STARTING_S,
    HOT_THRESHOLD_C,
    STALL_LENGTH_S,
    STALL_PERIOD_S,
    STALL_UNHEALTHY_AFTER_S,
)
from .signals import mix
from .state import Hold, stronger
from .world import CRASH_REASON, World

SLOTS_PER_SECOND = 64
GENERATED_SLOTS = 48
BACKLOG_S = 600  # history that exists before genesis, so a fresh console has something to show
RETENTION_S = 900  # like a ring buffer: a reader gets at most this much history
THROTTLE_C = 90.0  # where the hot GPU starts throttling its clocks
LATENCY_SLO_MS = 150.0  # what the slow agent's own SLO says, as it logs crossing it
NODE_SOURCE_SHARE = 0.12  # share of lines written by the node itself rather than an agent

Line = tuple[float, LogLevel, str, str, dict[str, Any]]  # ts, level, source, message, fields

# How long into a heartbeat gap the node complains, and how loudly.
_STALL_ALERTS: tuple[tuple[float, LogLevel], ...] = ((STALL_UNHEALTHY_AFTER_S, "warning"), (60.0, "error"))


def _fires(s: int, epoch: float, period: float, delay: float) -> float | None:
    """When an event scheduled at ``epoch + k * period + delay`` (k >= 0) falls within second ``s``."""
    x = s - epoch - delay
    k = math.ceil(x / period)
    at = epoch + k * period + delay
    return at if k >= 0 and s <= at < s + 1 else None


class LogStream:
    def __init__(self, seed: int, world: World) -> None:
        self.seed = seed
        self.world = world
        self.origin = math.floor(world.genesis) - BACKLOG_S
        self._rate = 2.0 + 0.015 * len(world.roster)  # lines per second: a few, a little more on big nodes
        self._phase_of = {a.id: a.phase_id for a in world.roster}
        self._actions: dict[int, list[LogRecord]] = {}

    def seq_of(self, second: int, slot: int) -> int:
        return (second - self.origin) * SLOTS_PER_SECOND + slot + 1

    # --- reading -----------------------------------------------------------------------------------------

    def records(
        self,
        since_seq: int,
        now: float,
        agent_holds: Mapping[str, Hold],
        phase_holds: Mapping[str, Hold],
        read_before: int | None = None,
    ) -> list[LogRecord]:
        """Every retained record with ``seq > since_seq`` from the seconds completed by ``now``.
        ``read_before``: a follower's promise that it has read every second before this one already (a
        completed second never changes), so they are not generated again just to be skipped."""
        end = math.floor(now)  # exclusive: the current second is still being written
        start = max(self.origin, end - RETENTION_S, self.origin + max(since_seq, 0) // SLOTS_PER_SECOND)
        if read_before is not None:
            start = max(start, read_before)
        out: list[LogRecord] = []
        for second in range(start, end):
            for record in self.second(second, agent_holds, phase_holds):
                if record.seq > since_seq:
                    out.append(record)
        return out

    def second(
        self, s: int, agent_holds: Mapping[str, Hold], phase_holds: Mapping[str, Hold]
    ) -> list[LogRecord]:
        lines = self._generated(s, agent_holds, phase_holds) + self._events(s)
        lines.sort(key=lambda line: line[0])
        records = [
            LogRecord(
                seq=self.seq_of(s, slot), ts=ts, level=level, source=source, message=message, fields=fields
            )
            for slot, (ts, level, source, message, fields) in enumerate(lines[:GENERATED_SLOTS])
        ]
        return records + self._actions.get(s, [])

    # --- writing (operator actions) ----------------------------------------------------------------------

    def append(
        self, ts: float, level: LogLevel, source: str, message: str, fields: dict[str, Any] | None = None
    ) -> LogRecord | None:
        """Record a line written by an action; None if that second's action slots are all used."""
        second = math.floor(ts)
        bucket = self._actions.setdefault(second, [])
        slot = GENERATED_SLOTS + len(bucket)
        if slot >= SLOTS_PER_SECOND:
            return None  # the audit trail still has the action; only its log echo is dropped
        record = LogRecord(
            seq=self.seq_of(second, slot),
            ts=round(ts, 3),
            level=level,
            source=source,
            message=message,
            fields=fields or {},
        )
        bucket.append(record)
        return record

    # --- generation --------------------------------------------------------------------------------------

    def _silent(
        self, agent_id: str, s: int, agent_holds: Mapping[str, Hold], phase_holds: Mapping[str, Hold]
    ) -> bool:
        """Whether an agent writes nothing at second ``s``: held by an operator, crashed, or hung."""
        world, trouble = self.world, self.world.trouble
        if agent_holds or phase_holds:
            phase = self._phase_of.get(agent_id)
            hold = stronger(agent_holds.get(agent_id), phase_holds.get(phase) if phase else None)
            if hold is not None and s >= hold.since:
                return True
        if agent_id == trouble.crash_id:
            view = world.crash_view(s)
            return view is not None and view.state == "failed"
        return agent_id == trouble.stall_id and world.stall_started(s) is not None

    def _generated(
        self, s: int, agent_holds: Mapping[str, Hold], phase_holds: Mapping[str, Hold]
    ) -> list[Line]:
        rng = random.Random(mix(self.seed, self.world.spec.index, s))
        # Poisson arrivals by inversion: cheap, and a second may be quiet or busy like a real log.
        count, p, threshold = 0, 1.0, math.exp(-self._rate)
        while count < GENERATED_SLOTS - 8:
            p *= rng.random()
            if p < threshold:
                break
            count += 1
        roster = self.world.roster
        stamps = sorted(round(s + rng.random(), 3) for _ in range(count))
        lines: list[Line] = []
        for ts in stamps:
            if not roster or rng.random() < NODE_SOURCE_SHARE:
                level, message, fields = draw_line(rng, "node", None)
                lines.append((ts, level, "node", message, fields))
                continue
            agent = roster[rng.randrange(len(roster))]
            level, message, fields = draw_line(rng, agent.role.name, agent.model)
            if not self._silent(agent.id, s, agent_holds, phase_holds):
                lines.append((ts, level, agent.id, message, fields))
        return lines

    def _events(self, s: int) -> list[Line]:
        """The trouble the world simulates, narrated at the second it happens."""
        trouble = self.world.trouble
        lines: list[Line] = []
        if trouble.crash_id:
            who, epoch = trouble.crash_id, trouble.crash_epoch
            if (at := _fires(s, epoch, CRASH_PERIOD_S, 0.0)) is not None:
                lines.append(
                    (
                        round(at, 3),
                        "critical",
                        who,
                        f"process {CRASH_REASON}",
                        {"exit_code": 137, "signal": "SIGKILL"},
                    )
                )
            if (at := _fires(s, epoch, CRASH_PERIOD_S, 0.5)) is not None:
                lines.append(
                    (
                        round(at, 3),
                        "warning",
                        "node",
                        f"restarting {who} in {CRASH_FAILED_S:.0f} s (crash loop backoff)",
                        {"agent": who, "backoff_s": CRASH_FAILED_S},
                    )
                )
            if (at := _fires(s, epoch, CRASH_PERIOD_S, CRASH_FAILED_S)) is not None:
                lines.append((round(at, 3), "info", "node", f"started {who}", {"agent": who}))
            ready = CRASH_FAILED_S + CRASH_STARTING_S
            if (at := _fires(s, epoch, CRASH_PERIOD_S, ready)) is not None:
                lines.append((round(at, 3), "info", who, f"ready after {ready:.0f} s", {"startup_s": ready}))
        if trouble.stall_id:
            who, epoch = trouble.stall_id, trouble.stall_epoch
            for delay, level in _STALL_ALERTS:
                if (at := _fires(s, epoch, STALL_PERIOD_S, delay)) is not None:
                    lines.append(
                        (
                            round(at, 3),
                            level,
                            "node",
                            f"no heartbeat from {who} for {delay:.0f} s",
                            {"agent": who, "silent_s": delay},
                        )
                    )
            if (at := _fires(s, epoch, STALL_PERIOD_S, STALL_LENGTH_S)) is not None:
                lines.append(
                    (
                        round(at, 3),
                        "info",
                        "node",
                        f"heartbeat from {who} resumed after {STALL_LENGTH_S:.0f} s",
                        {"agent": who},
                    )
                )
        if trouble.slow_id:
            lines.extend(self._slow_agent_lines(s, trouble.slow_id))
        if trouble.hot_gpu is not None:
            lines.extend(self._hot_gpu_lines(s, trouble.hot_gpu))
        return lines

    def _slow_agent_lines(self, s: int, who: str) -> list[Line]:
        """The slow agent says so when its own p95 crosses its 150 ms SLO, read from the figure it reports
        (so the log and the KPI agree), not from any verdict on its health."""
        before, now = self.world.latency_at(who, s - 1), self.world.latency_at(who, s)
        if before is None or now is None:
            return []
        fields = {"latency_p95_ms": now, "slo_ms": LATENCY_SLO_MS}
        if before <= LATENCY_SLO_MS < now:
            return [(s + 0.5, "warning", who, f"p95 latency {now:.0f} ms, over the 150 ms SLO", fields)]
        if now <= LATENCY_SLO_MS < before:
            return [(s + 0.5, "info", who, f"p95 latency back to {now:.0f} ms", fields)]
        return []

    def _hot_gpu_lines(self, s: int, index: int) -> list[Line]:
        """Narrate the hot GPU crossing its thresholds. The warning fires at 86 degC, a degree past the
        threshold, so the message never reads "85 degC above 85 degC"."""
        before, now = self.world.hot_gpu_temperature(s - 1), self.world.hot_gpu_temperature(s)
        if before is None or now is None:
            return []
        limit = HOT_THRESHOLD_C
        fields = {"gpu": index, "temperature_c": round(now), "threshold_c": limit}
        if before < limit + 1 <= now:
            return [
                (
                    s + 0.25,
                    "warning",
                    "node",
                    f"GPU {index} temperature {round(now)} °C, above {limit:.0f} °C",
                    fields,
                )
            ]
        if before < THROTTLE_C <= now:
            return [
                (
                    s + 0.25,
                    "error",
                    "node",
                    f"GPU {index} at {round(now)} °C: clocks throttled (HW slowdown)",
                    fields,
                )
            ]
        if now < limit <= before:
            return [
                (
                    s + 0.25,
                    "info",
                    "node",
                    f"GPU {index} back under {limit:.0f} °C ({math.floor(now)} °C)",
                    fields,
                )
            ]
        return []
