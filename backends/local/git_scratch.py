"""Throw-away git indexes in a known place, so that those a killed process left behind are found and removed.

Each one is a directory ``<git dir>/fleetdeck-tmp/<pid>-<random>/`` (per work tree: ``git rev-parse
--git-path`` resolves it), locked with ``flock`` by the process using it. The lock is handed to every git
process started meanwhile (see :func:`inherited_fds`), so a git child still running after its parent was
killed keeps it locked. A directory is stale, and removed, when the process that made it is gone and nothing
holds its lock; :func:`clean` does that, and :func:`scratch_index` calls it each time it makes a new one, so
a workspace never gathers more leftovers than one crash's worth.
"""

from __future__ import annotations

import contextvars
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SCRATCH_DIR = "fleetdeck-tmp"

# The file descriptors every git process started in this context inherits (pass_fds): the locks that
# must outlive us for as long as a git child of ours still runs.
_INHERITED: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar("gitsnap_fds", default=())


def inherited_fds() -> tuple[int, ...]:
    return _INHERITED.get()


@contextmanager
def handing_down(fd: int) -> Iterator[None]:
    """Let every git process started in this block inherit ``fd`` (and so hold the lock taken on it)."""
    token = _INHERITED.set((*_INHERITED.get(), fd))
    try:
        yield
    finally:
        _INHERITED.reset(token)


@contextmanager
def scratch_index(root: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh private directory under ``root`` and the env that points git at an index inside it.

    The directory is removed afterwards; if this process dies first, the next call (or :func:`clean`)
    removes it once nothing of ours runs in it any more.
    """
    root.mkdir(exist_ok=True)
    clean(root)
    directory = root / f"{os.getpid()}-{secrets.token_hex(4)}"
    directory.mkdir()
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with handing_down(fd):
            # The file must not exist yet: git reads a missing index as empty, but an empty file as corrupt.
            yield directory, {"GIT_INDEX_FILE": str(directory / "index")}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.close(fd)


def clean(root: Path) -> list[str]:
    """Remove the stale scratch directories under ``root``; the names removed."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        pid_text = entry.name.partition("-")[0]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue  # in use, or about to be locked by its maker
        if entry.is_dir(follow_symlinks=False) and _held(entry.path):
            continue  # its maker is gone, but a git process of its is still working in it
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with suppress(OSError):
                os.unlink(entry.path)
        removed.append(entry.name)
    return removed


def _held(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock we took
    return False


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask: trust the signal probe
    return status.rpartition(")")[2].split()[:1] != ["Z"]  # a zombie runs nothing and holds nothing
