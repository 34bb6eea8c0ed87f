"""Local store: 200 reporting agents heartbeating at 1 Hz plus 2,000 log lines a second, all writing into
one SQLite store, with the console's reader beside them.

Eight worker processes drive 25 agents each; every agent is an ``AgentReporter`` with its own SQLite
connection. Each agent heartbeats once a second and logs 10 lines a second (2,000 a second in all) on a
fixed timetable with a random phase; a worker makes its agents' calls one at a time (see
``benchmarks/store_load.py``), so eight writers contend for the store's write lock at any moment. A ninth
process reads as the console does: a LocalBackend snapshot every second while following the log.

Figures: write latency around each reporter call (``heartbeat`` looks for the operator's commands, then
writes; ``log`` is one write), writes done against planned, errors, and how many of them were "database
is locked"; the reader's snapshot latency and the log lines it missed. ``wake_late_p99_ms`` is how late
the workers woke from their sleeps between calls: the machine's scheduling noise, which no store can beat
(on a busy machine a writer is descheduled while it holds the write lock, and the others wait on it).
"""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.measure import Target, ms, quantile
from benchmarks.store_load import agents_process, reader_process

TITLE = "Local store: 200 agents heartbeating at 1 Hz + 2,000 log lines/s"
TARGETS = {
    "write_p99_ms": Target(10, "store write p99 < 10 ms"),
    "database_locked_errors": Target(0, "no 'database is locked'", inclusive=True),
    "write_errors": Target(0, "no failed write", inclusive=True),
}
RESULT_TIMEOUT_S = 120.0


def measure(quick: bool) -> dict[str, float | str]:
    if quick:
        return run(workers=2, per_worker=10, log_rate=5.0, seconds=2.0)
    return run(workers=8, per_worker=25, log_rate=10.0, seconds=30.0)


def run(*, workers: int, per_worker: int, log_rate: float, seconds: float) -> dict[str, float | str]:
    """``workers`` processes of ``per_worker`` agents, each logging ``log_rate`` lines a second."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-store-") as tmp:
        state_dir = Path(tmp) / "node"
        from backends.local.store import Store

        Store(state_dir).close()  # the store exists before its agents start, as on a running node
        start = ctx.Barrier(workers + 2)  # the agent processes, the reader and this process
        writers_done = ctx.Event()
        results: Any = ctx.Queue()
        writers = [
            ctx.Process(
                target=agents_process,
                args=(
                    str(state_dir),
                    [f"agent-{w:02d}-{a:02d}" for a in range(per_worker)],
                    seconds,
                    log_rate,
                    start,
                    results,
                ),
                daemon=True,
            )
            for w in range(workers)
        ]
        reader = ctx.Process(
            target=reader_process, args=(str(state_dir), start, writers_done, results), daemon=True
        )
        processes = [*writers, reader]
        for process in processes:
            process.start()
        try:
            start.wait(RESULT_TIMEOUT_S)
            # a process that dies before it reports would leave this waiting: the timeout ends the run
            collected = [results.get(timeout=seconds + RESULT_TIMEOUT_S) for _ in writers]
            writers_done.set()
            collected.append(results.get(timeout=RESULT_TIMEOUT_S))
            for process in processes:
                process.join(30)
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
                    process.join()
    read = next(r for r in collected if "snapshot_s" in r)
    agents = [r for r in collected if "snapshot_s" not in r]
    return figures(agents, read, workers * per_worker, log_rate, seconds)


def figures(
    agents: list[dict[str, Any]], reader: dict[str, Any], count: int, log_rate: float, seconds: float
) -> dict[str, float | str]:
    heartbeats = [v for r in agents for v in r["heartbeat_s"]]
    logs = [v for r in agents for v in r["log_s"]]
    errors = [e for r in agents for e in r["errors"]]
    planned = sum(r["planned"] for r in agents)
    done = sum(r["done"] for r in agents)
    out: dict[str, float | str] = {
        "agents": float(count),
        "log_lines_per_s": count * log_rate,
        "heartbeat_p50_ms": ms(quantile(heartbeats, 0.50)),
        "heartbeat_p99_ms": ms(quantile(heartbeats, 0.99)),
        "log_p50_ms": ms(quantile(logs, 0.50)),
        "log_p99_ms": ms(quantile(logs, 0.99)),
        "write_p99_ms": ms(quantile(heartbeats + logs, 0.99)),
        "write_max_ms": ms(max(heartbeats + logs, default=float("nan"))),
        "writes_planned": float(planned),
        "writes_done": float(done),
        "writes_done_percent": round(100.0 * done / planned, 2) if planned else float("nan"),
        "write_errors": float(len(errors)),
        "database_locked_errors": float(sum("locked" in e.lower() for e in errors)),
        "wake_late_p99_ms": ms(quantile([v for r in agents for v in r["late_s"]], 0.99)),
        "reader_snapshot_p50_ms": ms(quantile(reader["snapshot_s"], 0.50)),
        "reader_snapshot_p99_ms": ms(quantile(reader["snapshot_s"], 0.99)),
        "reader_log_lines_missed": float(len(logs) - reader["lines"]),
        "reader_errors": float(len(reader["errors"])),
    }
    if errors or reader["errors"]:
        out["first_error"] = (errors or reader["errors"])[0][:300]
    if seconds < 10:
        out["quick"] = f"quick mode: {count} agents, {count * log_rate:.0f} lines/s for {seconds:.0f} s"
    return out
