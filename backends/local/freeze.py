"""Freezing an agent's process group without freezing the node: never while it holds the store's lock.

SIGSTOP lands wherever the process happens to be. A process stopped inside an SQLite write transaction
keeps the store's write lock for as long as it is paused, and every other writer on the node (supervisors,
reporters, the console's actions) waits on it and then fails. So every store transaction made by a process
of an agent's group is bracketed by a shared ``flock`` on that agent's *freeze gate* (a small file in the
state dir, named to the process through ``FLEETDECK_FREEZE_GATE``, which children inherit), and a freeze
is:

1. take the gate exclusively - this waits for the transactions in flight, and holds off new ones;
2. SIGSTOP the group;
3. wait until every thread of every process in the group is really stopped (signal delivery is
   asynchronous: a process in the middle of a write(2) stops only when it returns);
4. release the gate. A stopped process cannot take it, so it cannot start a transaction until resumed.

A process of the group that talks to the store without the gate (an ``sqlite3`` shell, code with the
environment cleared) is not covered; fleetdeck's own Store always honours it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

GATE_ENV = "FLEETDECK_FREEZE_GATE"
GATES_DIR = "gates"
#: how long a freeze waits for the group's transactions in flight (each is milliseconds; a busy store can
#: keep one waiting on SQLite's own lock for up to its busy timeout)
GATE_WAIT_S = 15.0
#: how long a freeze waits for SIGSTOP to take hold of every thread in the group
STOP_WAIT_S = 5.0


class FreezeError(Exception):
    """The group could not be frozen safely; nothing is left stopped."""


def gate_path(state_dir: Path, agent_id: str) -> Path:
    return state_dir / GATES_DIR / f"{agent_id}.lock"


def gate_env(state_dir: Path, agent_id: str) -> dict[str, str]:
    """The environment entry a supervised agent's process group is started with."""
    path = gate_path(state_dir, agent_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {GATE_ENV: str(path)}


# --- the writer's side: held shared around every transaction -----------------------------------------


class _SharedGate:
    """This process's shared hold on its gate. flock belongs to the open file, not the thread, so the
    threads of one process share one hold and count who is inside it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._holders = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._holders == 0:
                if self._fd is None:
                    try:
                        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    except OSError:
                        return  # no gate to honour (state dir moved, not ours): write as before
                fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            if self._holders == 0:
                return
            self._holders -= 1
            if self._holders == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


_gate: _SharedGate | None = None
_gate_lock = threading.Lock()


def _process_gate() -> _SharedGate | None:
    global _gate
    path = os.environ.get(GATE_ENV)
    if not path:
        return None
    with _gate_lock:
        if _gate is None or _gate.path != path:
            _gate = _SharedGate(path)
        return _gate


@contextmanager
def writing() -> Iterator[None]:
    """Bracket one store transaction: a freeze of this process's group waits for it to end."""
    gate = _process_gate()
    if gate is None:
        yield
        return
    gate.acquire()
    try:
        yield
    finally:
        gate.release()


# --- the freezer's side ------------------------------------------------------------------------------


def freeze_group(pgid: int, gate: Path) -> None:
    """SIGSTOP process group ``pgid`` at a moment none of it is inside a store transaction.

    Raises FreezeError (with the group running) when the gate or the stop cannot be had in time."""
    gate.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(gate, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if not _lock_exclusive(fd, GATE_WAIT_S):
            raise FreezeError(
                f"the agent stayed inside a store write for over {GATE_WAIT_S:.0f} s; not paused"
            )
        try:
            os.killpg(pgid, signal.SIGSTOP)
        except ProcessLookupError:
            return  # the group is gone: nothing to freeze, nothing holding the lock
        if not _wait_stopped(pgid, STOP_WAIT_S):
            with suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGCONT)
            raise FreezeError(f"the agent did not stop within {STOP_WAIT_S:.0f} s of SIGSTOP; not paused")
    finally:
        os.close(fd)  # releases the exclusive lock: the stopped group cannot take it now


def thaw_group(pgid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGCONT)


def _lock_exclusive(fd: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.002)


def _wait_stopped(pgid: int, wait_s: float) -> bool:
    """Until every thread of every process in the group is stopped (or gone)."""
    proc = Path("/proc")
    if not proc.is_dir():  # no /proc to look in: give the signal a moment, as the best that can be done
        time.sleep(0.05)
        return True
    deadline = time.monotonic() + wait_s
    while True:
        if all(_stopped(pid) for pid in _group_members(pgid)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with suppress(OSError):
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
    return members


def _stopped(pid: int) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True  # gone
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # that thread has exited
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
        if state not in (b"T", b"t", b"Z", b"X"):
            return False
    return True
