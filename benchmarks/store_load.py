"""The processes of the local_store scenario: reporting agents writing into one SQLite store, and a reader.

A worker process drives a group of agents, each an :class:`AgentReporter` with its own SQLite connection
(as an agent process has). The group's heartbeats (once a second per agent) and log lines (its share of
the line rate) are merged into one timetable, each at its own time with a random phase per agent, and
made one after another on the worker's single thread, each call timed on its own. Calls of one worker
never overlap, so no call waits for Python's GIL behind another agent's: as with separate processes, a
call's time is the store's. At most one write per worker is in flight: with eight workers, eight writers
(and the reader) contend for the store at once. The reader is the console's side: a LocalBackend taking
a snapshot each second and following the log.

Every entry point takes plain arguments and reports back through a queue, so they run under ``spawn``.
"""

from __future__ import annotations

import asyncio
import random
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

from backends.local.backend import LocalBackend
from backends.local.reporter import AgentReporter

GRACE_S = 1.0  # writes may run this long past the timetable's end before the rest count as not done
CATCH_UP_S = 1.0  # the reader follows the log this long after the last write (it polls every 0.1 s)


def timetable(
    agents: int, seconds: float, heartbeat_hz: float, log_rate: float, rng: random.Random
) -> list[tuple[float, int, str]]:
    """(due, agent index, "heartbeat" | "log") for a group of agents over the window, sorted by due time:
    each agent's calls evenly spaced from a random phase within the first second."""
    events: list[tuple[float, int, str]] = []
    for agent in range(agents):
        offset = rng.uniform(0.0, 1.0)
        beats = round(seconds * heartbeat_hz)
        lines = round(seconds * log_rate)
        events += [(offset + k / heartbeat_hz, agent, "heartbeat") for k in range(beats)]
        events += [(offset + k / log_rate, agent, "log") for k in range(lines)]
    return sorted(events)


def agents_process(
    state_dir: str,
    names: list[str],
    seconds: float,
    log_rate: float,
    start: Barrier,
    results: Queue[dict[str, Any]],
) -> None:
    """Register ``names`` (one reporter each), wait for everyone at ``start``, then run the timetable."""
    reporters = [AgentReporter(name, state_dir=state_dir, labels={"role": "worker"}) for name in names]
    events = timetable(len(names), seconds, 1.0, log_rate, random.Random(names[0]))
    latencies: dict[str, list[float]] = {"heartbeat": [], "log": []}
    errors: list[str] = []
    late: list[float] = []  # how late the worker woke for a call it slept for: the machine's own noise
    done = 0
    start.wait(120)
    begin = time.monotonic()
    deadline = begin + (events[-1][0] if events else 0.0) + GRACE_S
    for index, (due, agent, kind) in enumerate(events):
        now = time.monotonic()
        if now > deadline:
            break
        if begin + due > now:
            time.sleep(begin + due - now)
            late.append(time.monotonic() - begin - due)
        reporter = reporters[agent]
        started = time.perf_counter()
        try:
            if kind == "heartbeat":
                reporter.heartbeat(progress=(index % 100) / 100, message=f"step {index}")
            else:
                reporter.log("info", f"step {index} loss 0.{index % 997:03d}", step=index)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies[kind].append(time.perf_counter() - started)
        done += 1
    for reporter in reporters:
        reporter.store.close()
    results.put(
        {
            "heartbeat_s": latencies["heartbeat"],
            "log_s": latencies["log"],
            "planned": len(events),
            "done": done,
            "errors": errors,
            "late_s": late,
        }
    )


def reader_process(
    state_dir: str, start: Barrier, writers_done: Event, results: Queue[dict[str, Any]]
) -> None:
    results.put(asyncio.run(_read(Path(state_dir), start, writers_done)))


async def _read(state_dir: Path, start: Barrier, writers_done: Event) -> dict[str, Any]:
    """The console's side: a snapshot each second (timed) while following the log, until the writers are
    done and the follower has had time to catch up with their last lines."""
    backend = LocalBackend(state_dir=state_dir)
    await backend.open()
    lines = 0
    errors: list[str] = []

    async def follow(since_seq: int) -> None:
        nonlocal lines
        async for _ in backend.logs(since_seq=since_seq, follow=True):
            lines += 1

    latencies: list[float] = []
    try:
        before = await asyncio.to_thread(backend.store.last_log_seq)  # before any agent may log
        await asyncio.to_thread(start.wait, 120)
        follower = asyncio.create_task(follow(before))
        begin = time.monotonic()
        tick = 0
        while not writers_done.is_set():
            delay = begin + tick - time.monotonic()
            tick += 1
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.perf_counter()
            try:
                await backend.snapshot()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                latencies.append(time.perf_counter() - started)
        await asyncio.sleep(CATCH_UP_S)
        follower.cancel()
        (outcome,) = await asyncio.gather(follower, return_exceptions=True)
        if isinstance(outcome, Exception):
            errors.append(f"log follow: {type(outcome).__name__}: {outcome}")
    finally:
        await backend.close()
    return {"snapshot_s": latencies, "lines": lines, "errors": errors}
