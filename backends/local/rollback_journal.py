"""The rollback journal and the node's checkpoint lock: how a rollback killed half-way is found and finished.

A rollback writes its journal before it changes anything and updates it after each step, so whoever comes
next knows what was done: which checkpoint it restores, which agents it paused, the git ref its safety
checkpoint is (being) taken under, and that checkpoint's id once it is in the store.

It is a file in the state dir (written to a temporary file, fsynced, renamed over, the directory fsynced),
not a row in the store, for three reasons. It is checked by every command, by every supervisor every few
seconds and by every console poll: one ``stat`` where nothing is pending, instead of a query. Whether the
rollback that wrote it is still running is told by a lock, ``flock`` on ``rollback.lock``, which the kernel
drops when its holder dies however it dies, and which a git child of the rollback keeps while it runs:
a row could only name a pid, which a reused pid fools. And what it guards is the moment the node is least
healthy (agents stopped, the store perhaps busy): reading it must not need the store.

One rollback, checkpoint or recovery at a time per node, under the lock; an interrupted rollback blocks
new ones until it is recovered, since a half-restored workspace is no state to start from or to keep.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from backends.errors import Conflict, Invalid

JOURNAL = "rollback-journal.json"
LOCK = "rollback.lock"
FORMAT = 1

#: the steps of a rollback, in order; the journal names the last one done
STEPS = ("journaled", "paused", "safety-refs", "safety-recorded", "restored", "state-restored", "resumed")

#: test hook: ``STEP:FLAG_FILE`` makes a rollback create FLAG_FILE and wait at STEP (to be killed there)
HOLD_ENV = "FLEETDECK_ROLLBACK_HOLD_AT"


@dataclass
class Journal:
    id: str
    checkpoint: str
    #: the workspaces the rollback restores, each with the checkpoint's git ref there
    workspaces: dict[str, str]
    #: the agents the rollback pauses (written before the first pause) and so must resume
    agents: list[str]
    #: the git ref name the safety checkpoint is taken under, in every workspace it covers
    safety_ref: str
    operator: str
    reason: str | None
    pid: int
    started_at: float
    #: the audit seq before the rollback began: its own entries come after it
    audit_seq: int
    step: str = "journaled"
    #: the safety checkpoint's id in the store, once recorded
    safety: str | None = None
    #: the agent holds the restored store state asked for (id -> paused|stopped|running)
    holds: dict[str, str] = field(default_factory=dict)
    #: whether the audit trail already says this rollback was interrupted or failed half-way
    reported: bool = False
    format: int = FORMAT

    @staticmethod
    def start(checkpoint: str, workspaces: dict[str, str], agents: list[str], **rest: object) -> Journal:
        ident = f"rb-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
        safety_ref = f"{ident[3:]}-safety"
        return Journal(ident, checkpoint, workspaces, agents, safety_ref, **rest)  # type: ignore[arg-type]

    def done(self, step: str) -> bool:
        return STEPS.index(self.step) >= STEPS.index(step)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return f"the rollback to {self.checkpoint} (pid {self.pid}, {started}) stopped after '{self.step}'"


def path(state_dir: Path) -> Path:
    return state_dir / JOURNAL


def read(state_dir: Path) -> Journal | None:
    """The journal, or None when no rollback is unfinished; Invalid naming the file if it is unreadable."""
    file = path(state_dir)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        return Journal(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise Invalid(
            f"the rollback journal {file} is unreadable ({exc}); check the workspaces by hand"
        ) from None


def write(state_dir: Path, journal: Journal) -> None:
    """Replace the journal durably: when this returns, a crash leaves this version or none newer."""
    file = path(state_dir)
    partial = file.with_name(f".{JOURNAL}.{os.getpid()}")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(asdict(journal), handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, file)
    _sync_dir(state_dir)


def remove(state_dir: Path) -> None:
    """Drop the journal, and any copy a writer killed before its rename left (only lock holders write)."""
    for leftover in state_dir.glob(f".{JOURNAL}.*"):
        with suppress(OSError):
            os.unlink(leftover)
    with suppress(FileNotFoundError):
        os.unlink(path(state_dir))
    _sync_dir(state_dir)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the lock ------------------------------------------------------------------------------------------


@contextmanager
def node_lock(state_dir: Path, node: str, *, wait_s: float) -> Iterator[int]:
    """Hold the node's checkpoint lock for the block; its fd (for git children to inherit).

    Waits up to ``wait_s`` for another holder (a rollback, or the git processes a killed one left running),
    then refuses with Conflict.
    """
    fd = os.open(state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise Conflict(
                        f"another checkpoint or rollback is running on node {node} (pid {holder}); "
                        "try again when it is done"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield fd
    finally:
        os.close(fd)  # closing our last fd on it drops the lock


def in_progress(state_dir: Path) -> bool:
    """Whether a checkpoint, rollback or recovery holds the lock now (or git children of a killed one do)."""
    try:
        fd = os.open(state_dir / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def interrupted(state_dir: Path) -> Journal | None:
    """The journal of a rollback that stopped half-way and is not running any more; None otherwise."""
    if not path(state_dir).exists():  # the usual case: one stat
        return None
    if in_progress(state_dir):
        return None
    return read(state_dir)


def notice(state_dir: Path, node: str) -> str | None:
    """One line for an operator when a rollback on this node was interrupted: what, and what to run."""
    try:
        journal = interrupted(state_dir)
    except Invalid as exc:
        return str(exc)
    return None if journal is None else advice(journal, node)


def advice(journal: Journal, node: str) -> str:
    where = "" if node == "local" else f" --node {node}"
    return (
        f"{journal.describe()}: it was interrupted and its agents may still be paused; "
        f"finish it with: fleetdeck rollback --recover{where}"
    )


class Watch:
    """For a long-running process (a supervisor): the notice once when a rollback is found interrupted,
    again only after it was recovered and another one was; looked for at most every ``every_s``."""

    def __init__(self, state_dir: Path, node: str = "local", every_s: float = 2.0) -> None:
        self.state_dir = state_dir
        self.node = node
        self.every_s = every_s
        self._next = 0.0
        self._said: str | None = None

    def poll(self) -> str | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every_s
        text: str | None
        try:
            journal = interrupted(self.state_dir)
        except OSError:
            return None  # cannot look now (the lock file is not ours to open?): look again later
        except Invalid as exc:
            journal, text = None, str(exc)
        else:
            text = notice(self.state_dir, self.node) if journal is not None else None
        key = journal.id if journal is not None else text
        if key == self._said:
            return None
        self._said = key
        return text


def hold(step: str) -> None:
    """The test hook: inert unless HOLD_ENV names this step."""
    wanted = os.environ.get(HOLD_ENV)
    if not wanted:
        return
    name, _, flag = wanted.partition(":")
    if name != step:
        return
    Path(flag).touch()
    while True:  # until killed: that is what the hook is for
        time.sleep(1.0)
