"""Many real processes on one local store at once: nothing lost, nothing claimed twice, no lock errors.

Workers are started with ``spawn`` (a fresh interpreter each, as separate ``fleetdeck`` commands would be)
and each opens its own Store. They report back through a queue: an empty string, or the traceback of
whatever they saw, so an exception in any worker fails the test with its own message.
"""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path
from typing import Any

from backends.local.store import Store

WORKERS = 20
BEATS = 200  # heartbeats and log lines per worker
AUDITS_EVERY = 10  # one audit entry per 10 beats: 20 per worker
TASKS = 60


def _reporter(state_dir: str, index: int, barrier: Any, results: Any) -> None:
    try:
        name = f"agent-{index:02d}"
        with Store(Path(state_dir)) as store:
            store.register_agent(name, kind="reporting")
            barrier.wait(timeout=120)  # everyone writes at the same time, not one after the other
            for i in range(BEATS):
                store.heartbeat(name, progress=(i + 1) / BEATS, message=f"beat {i}")
                store.log(name, "info", f"line {i}", i=i)
                if i % AUDITS_EVERY == 0:
                    store.audit(name, "report", f"agent:{name}", outcome="ok", params={"i": i})
        results.put((index, ""))
    except BaseException:
        results.put((index, traceback.format_exc()))


def _claimer(state_dir: str, barrier: Any, results: Any) -> None:
    try:
        claimed = []
        with Store(Path(state_dir)) as store:
            barrier.wait(timeout=120)
            while (task := store.claim_task("worker")) is not None:
                claimed.append(task.id)
        results.put(("", claimed))
    except BaseException:
        results.put((traceback.format_exc(), []))


def test_twenty_reporters_and_a_console_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    store = Store(tmp_path)
    procs = [ctx.Process(target=_reporter, args=(str(tmp_path), i, barrier, results)) for i in range(WORKERS)]
    for proc in procs:
        proc.start()
    # The console: follow the log by seq cursor, read consistent snapshots, write its own audit entries.
    followed: list[int] = []
    console_audits = 0
    reader_errors: list[str] = []
    reported: dict[int, str] = {}
    while len(reported) < WORKERS and (any(p.is_alive() for p in procs) or not results.empty()):
        try:
            agents, _phases, _tasks, _checkpoints = store.snapshot_parts()
            assert len(agents) <= WORKERS
            cursor = followed[-1] if followed else 0
            followed.extend(record.seq for record in store.logs_since(cursor))
            store.audit("console", "look", None, outcome="ok")
            console_audits += 1
        except Exception:
            reader_errors.append(traceback.format_exc())
        while not results.empty():
            index, error = results.get()
            reported[index] = error
    for proc in procs:
        proc.join(timeout=60)
    while len(reported) < WORKERS and not results.empty():
        index, error = results.get()
        reported[index] = error
    assert reader_errors == []
    assert sorted(reported) == list(range(WORKERS)), "some workers never reported back"
    assert {index: error for index, error in reported.items() if error} == {}
    assert all(proc.exitcode == 0 for proc in procs)

    followed.extend(record.seq for record in store.logs_since(followed[-1] if followed else 0))
    logs = store.logs_since(0, limit=100_000)
    assert len(logs) == WORKERS * BEATS
    seqs = [record.seq for record in logs]
    assert seqs == sorted(set(seqs)), "log seqs are not strictly increasing"
    assert followed == seqs, "a reader following by seq cursor missed or repeated a line"
    for index in range(WORKERS):
        own = [record.fields["i"] for record in logs if record.source == f"agent-{index:02d}"]
        assert own == list(range(BEATS)), f"agent-{index:02d} lines lost or out of order"
    audit = store.audit_since(0)
    assert len([e for e in audit if e.action == "report"]) == WORKERS * BEATS // AUDITS_EVERY
    assert len([e for e in audit if e.operator == "console"]) == console_audits
    for record in store.agent_rows():
        assert (record.heartbeats, record.message, record.progress) == (BEATS, f"beat {BEATS - 1}", 1.0)
    store.close()


def test_two_processes_claiming_take_each_task_exactly_once(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.register_agent("worker", kind="reporting")
        created = {store.create_task("job", "worker", {"n": n}, "alice").id for n in range(TASKS)}
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert [error for error, _ in outcomes] == ["", ""]
    claimed = [task_id for _, ids in outcomes for task_id in ids]
    assert sorted(claimed) == sorted(created)  # every task once: none twice, none missed
    with Store(tmp_path) as store:
        assert {t.status for t in store.tasks()} == {"running"}
        assert {t.attempts for t in store.tasks()} == {1}
