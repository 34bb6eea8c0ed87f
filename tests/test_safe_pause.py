"""A pause never wedges the node: an agent is frozen only at a moment it cannot hold the store's lock.

A real supervised agent writes to the real SQLite store in a tight loop while an unrelated supervised agent
runs beside it. It is paused and resumed a hundred times, through its live supervisor and then, with the
supervisor killed, by the action itself; after every pause another process must be able to write to the
store again at once, and no supervisor may exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest

from backends.local.actions import Actions
from backends.local.store import Store
from backends.local.store_db import Database
from backends.model import Target

from .agents.local_node import LocalNode, gone, proc_state, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals")

CYCLES = 100
#: a writer that cannot get the lock within this long fails the test: the lock is held by a frozen process
PROBE_RETRY_S = 1.0


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def probe_write(state_dir: Path, i: int) -> None:
    """One write from an unrelated process's point of view: a fresh connection that gives up quickly."""
    db = Database(state_dir, verify=False, retry_for_s=PROBE_RETRY_S, busy_timeout_s=PROBE_RETRY_S)
    try:
        db.write(
            lambda conn: conn.execute("UPDATE agents SET message = ? WHERE id = 'bystander'", (f"probe {i}",))
        )
    finally:
        db.close()


def start_pair(node: LocalNode) -> tuple[int, int]:
    """The busy writer and an unrelated bystander; returns their supervisors' pids."""
    writer = node.start_python("writer", "busy_reporter.py", "writer-report")
    bystander = node.start_python("bystander", "ticker.py", "0.02")
    node.wait_running("writer")
    node.wait_running("bystander")
    wait_for(lambda: node.agent("writer-report"), "the writer's reports")
    return writer.pid, bystander.pid


def cycle_pauses(node: LocalNode, actions: Actions, store: Store) -> None:
    target = Target(kind="agent", id="writer")
    for i in range(CYCLES):
        actions.control("pause", target, "tester", None)
        record = store.agent_record("writer")
        assert record.state == "paused", (i, record.state)
        # "ok" means done: the whole group is stopped by the time the pause answers
        assert record.pid is not None and proc_state(record.pid) == "T", (i, proc_state(record.pid or 0))
        probe_write(node.state_dir, i)  # StoreError here: the frozen agent holds the lock
        actions.control("resume", target, "tester", None)
        assert store.agent_record("writer").state == "running", i


def test_a_hundred_pauses_of_a_busy_writer_never_lock_out_the_others(node: LocalNode) -> None:
    writer_supervisor, bystander_supervisor = start_pair(node)
    with Store(node.state_dir) as store:
        actions = Actions(store, node.state_dir, node="local", read_only=False, python=sys.executable)
        cycle_pauses(node, actions, store)
        assert not gone(writer_supervisor) and not gone(bystander_supervisor), "a supervisor exited"
        assert store.agent_record("bystander").state == "running"
        before = store.last_log_seq()
        wait_for(lambda: store.last_log_seq() > before, "the writer to write again after the last resume")


def test_a_hundred_pauses_with_the_supervisor_killed_first(node: LocalNode) -> None:
    writer_supervisor, bystander_supervisor = start_pair(node)
    os.kill(writer_supervisor, signal.SIGKILL)
    wait_for(lambda: gone(writer_supervisor), "the writer's supervisor to die")
    with Store(node.state_dir) as store:
        actions = Actions(store, node.state_dir, node="local", read_only=False, python=sys.executable)
        record = store.agent_record("writer")
        assert record.pid is not None and not gone(record.pid), "the agent must outlive its supervisor here"
        cycle_pauses(node, actions, store)
        assert not gone(bystander_supervisor), "the bystander's supervisor exited"
        assert store.agent_record("bystander").state == "running"


# --- the store on a full disk ------------------------------------------------------------------------------


@pytest.fixture
def tiny_state_dir(tmp_path: Path):
    """A 3 MiB tmpfs for the node's state: a disk that really fills up."""
    mount_point = tmp_path / "node"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mount_point)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle, suppress(OSError):  # ENOSPC: full, as wanted
        while True:
            handle.write(b"\0" * 65536)
    return filler


def ticks(store: Store) -> list[int]:
    return [
        int(r.message.split()[1])
        for r in store.logs_since(0, limit=100_000, source="ticker")
        if r.message.startswith("tick ")
    ]


def test_a_full_disk_never_takes_an_agent_down_and_loses_no_line(
    tiny_state_dir: Path, node: LocalNode
) -> None:
    assert node.state_dir == tiny_state_dir
    run = node.start_python("ticker", "ticker.py", "0.05")
    agent = node.wait_running("ticker")
    with Store(node.state_dir) as store:
        wait_for(lambda: len(ticks(store)) > 5, "the first lines")
        filler = fill(node.state_dir)
        last_before = max(ticks(store))
        # the agent keeps printing while nothing can be written: some 60 lines, a few retries of the link
        time.sleep(3.0)
        assert run.poll() is None, "the supervisor exited on a full disk"
        assert proc_state(agent["pid"]) not in (None, "Z"), "the agent died on a full disk"
        filler.unlink()
        wait_for(lambda: max(ticks(store)) > last_before + 60, "the lines printed while the disk was full")
        seen = ticks(store)
        assert seen == list(range(seen[0], seen[-1] + 1)), "a line was lost or repeated"
        notes = [
            r.message
            for r in store.logs_since(0, limit=100_000, source="ticker")
            if "unavailable" in r.message
        ]
        assert notes and "disk is full" in notes[0], notes
        record = store.agent_record("ticker")
        assert record.state == "running"
