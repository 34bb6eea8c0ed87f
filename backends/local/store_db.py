"""How the store talks to SQLite: one connection per Store, WAL, short transactions, no 'database is locked'.

Many processes (every ``fleetdeck run`` supervisor, every reporting agent, the console, the node server)
share one file. WAL lets readers and the one writer proceed together; writers take the write lock up front
with ``BEGIN IMMEDIATE``, because a deferred transaction that reads and then writes can fail with
SQLITE_BUSY at once (its snapshot went stale) without the busy handler ever waiting. The busy timeout
covers ordinary waits; a jittered retry loop covers what is left (WAL recovery, a checkpoint holding a
lock), so no caller ever sees a lock error - only, after a long wait, a StoreError saying who to blame.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from . import freeze
from .schema import StoreError, corrupt_message, migrate, quick_check, refuse_unusable

T = TypeVar("T")

DB_FILENAME = "fleetdeck.db"
BUSY_TIMEOUT_S = 10.0
RETRY_FOR_S = 30.0
WAL_AUTOCHECKPOINT_PAGES = 8000
_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_UNDECODABLE = "a row holds bytes that do not decode: the file is damaged"


class Database:
    """One SQLite connection, used by one thread at a time, each call one short transaction."""

    def __init__(
        self,
        state_dir: Path,
        *,
        verify: bool = True,
        retry_for_s: float | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = state_dir / DB_FILENAME
        self._retry_for_s = RETRY_FOR_S if retry_for_s is None else retry_for_s
        self._busy_timeout_s = busy_timeout_s
        # Store methods run in worker threads (asyncio.to_thread); one lock keeps their transactions apart.
        self._lock = threading.Lock()
        _prepare_file(state_dir, self.path)
        self._conn = self._retry(lambda: _connect(self.path, busy_timeout_s))
        try:
            self._retry(lambda: refuse_unusable(self._conn, self.path))
            self._retry(lambda: _use_wal(self._conn))
            self.found_version = self._retry(lambda: migrate(self._conn, self.path))
            if verify:
                self._retry(lambda: quick_check(self._conn, self.path))
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        # the last connection to close checkpoints the WAL, which takes the lock like a write does
        with self._lock, freeze.writing():
            self._conn.close()

    def write(self, work: Callable[[sqlite3.Connection], T], *, within_s: float | None = None) -> T:
        """Run ``work`` in a write transaction; it may be run again if the first try hit a lock.

        ``within_s`` bounds the whole wait for the lock (the busy handler's and the retries'), for a caller
        whose own client gives up sooner than the store's usual patience (``StoreError`` past it)."""
        if within_s is None:
            return self._transaction(work, "BEGIN IMMEDIATE")
        return self._transaction(work, "BEGIN IMMEDIATE", within_s=within_s)

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a read transaction: every query in it sees the same committed state."""
        return self._transaction(work, "BEGIN")

    def _transaction(
        self, work: Callable[[sqlite3.Connection], T], begin: str, *, within_s: float | None = None
    ) -> T:
        conn = self._conn

        def attempt() -> T:
            conn.execute(begin)
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        with self._lock:
            if within_s is None:
                return self._retry(attempt)
            # the connection is ours while the lock is held: its busy timeout can be narrowed for this call
            conn.execute(f"PRAGMA busy_timeout = {int(min(within_s, self._busy_timeout_s) * 1000):d}")
            try:
                return self._retry(attempt, within_s)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000):d}")

    def _retry(self, operation: Callable[[], T], retry_for_s: float | None = None) -> T:
        retry_for_s = self._retry_for_s if retry_for_s is None else retry_for_s
        deadline = time.monotonic() + retry_for_s
        delay = 0.002
        while True:
            try:
                # Held only while SQLite may hold a lock, never across the sleep below: a freeze of this
                # process's agent waits for it, so the agent is never stopped inside a transaction.
                with freeze.writing():
                    return operation()
            except sqlite3.OperationalError as exc:
                if "could not decode" in str(exc).lower():
                    raise StoreError(corrupt_message(self.path, _UNDECODABLE)) from None
                if not _is_busy(exc):
                    raise StoreError(f"the store {self.path} failed: {exc}") from None
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"the store {self.path} stayed locked for over {retry_for_s:.0f} s; another "
                        f"process is holding it (a stuck fleetdeck or an sqlite3 shell?)"
                    ) from None
            except sqlite3.DatabaseError as exc:
                # Exactly DatabaseError (not Integrity/Programming errors, which are bugs) is what SQLite
                # raises for a damaged or foreign file.
                if type(exc) is not sqlite3.DatabaseError:
                    raise
                raise StoreError(corrupt_message(self.path, str(exc))) from None
            except (UnicodeDecodeError, msgspec.DecodeError):
                # Damage inside a row rather than in the file's structure: a text or JSON column that no
                # longer decodes. Named here, once, rather than as a traceback from whichever reader met it.
                raise StoreError(corrupt_message(self.path, _UNDECODABLE)) from None
            # Jitter so that processes which collided once do not collide again in lockstep.
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.25)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _prepare_file(state_dir: Path, path: Path) -> None:
    """Create the state dir (private) and refuse early, without writing, a file that is not SQLite."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Create the file ourselves so it is private; SQLite gives its -wal and -shm the same mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot open the store {path}: {exc.strerror or exc}") from None
    # An empty file is a new database; anything else must start with SQLite's magic string.
    if header and header != _SQLITE_HEADER:
        raise StoreError(corrupt_message(path, "not an SQLite file"))


def _connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (Python's implicit BEGIN is DEFERRED).
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable across application crashes in WAL mode and skips an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        # The commit that fills the WAL past this many pages copies it back into the database, with two
        # fsyncs, before it returns: about 12 ms on an ordinary disk. At SQLite's default (1,000 pages)
        # a busy node (a log line is 4 pages) did that eight times a second, each time in some writer's
        # call; 8,000 pages (a WAL of about 32 MB) makes it about once a second.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES:d}")
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    # Switching a file to WAL rewrites its header, so this comes only after the file was found to be ours.
    # (On a filesystem without shared memory SQLite stays in its rollback journal: slower, still correct.)
    conn.execute("PRAGMA journal_mode = WAL")


# --- JSON columns --------------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder(enc_hook=str, order="deterministic")


def dumps(value: Any) -> str:
    """JSON text for a column; values JSON cannot hold (paths, datetimes) are stored as their str()."""
    return _encoder.encode(value).decode()


def loads(text: str | bytes | None, default: Any = None) -> Any:
    if text is None:
        return default
    return msgspec.json.decode(text)
