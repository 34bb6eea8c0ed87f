"""Where the idempotency answers live: one SQLite table (stdlib sqlite3, WAL) in a file beside the node.

The file is the served node's: ``<state_dir>/idempotency.db`` for a local node (its store's directory),
else ``$XDG_STATE_HOME/fleetdeck/served/<node>-<hash>.idempotency.db``. Keeping it there, and not in the
server's memory, is what makes a retry after a restart a replay. Mode 0600: answers carry task payloads.

A row is written before the action runs (``status`` NULL: "acting", with the server process that owns it)
and completed with the answer after. Rows are found by (caller, path, key); ``used`` is a counter, not a
time, so least-recently-used order is exact even when the clock stands still.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.local_token import state_home
from backends.private_files import PrivateFileError, ensure_private_dir

FILE_NAME = "idempotency.db"
Scope = tuple[str, str, str]  # (caller name, path, key)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    caller TEXT NOT NULL,
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    owner TEXT NOT NULL,
    status INTEGER,
    body BLOB,
    media_type TEXT,
    expires REAL NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (caller, path, key)
);
CREATE INDEX IF NOT EXISTS answers_used ON answers (used);
CREATE INDEX IF NOT EXISTS answers_expires ON answers (expires);
"""


class IdempotencyFileError(Exception):
    """The idempotency file cannot be used; one line naming it and what to do."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    media_type: str


@dataclass(frozen=True)
class Row:
    fingerprint: bytes
    owner: str
    answer: Answer | None  # None: the first request is still acting (or was cut off)


def idempotency_file(backend: Any) -> Path:
    """The file for ``backend``: beside its state when it has a state dir, else in the user's state home."""
    state_dir = getattr(backend, "state_dir", None)
    if isinstance(state_dir, Path):
        return state_dir / FILE_NAME
    name = str(backend.info.name)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "node"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]  # two names that slug alike stay apart
    return state_home() / "served" / f"{slug}-{digest}.{FILE_NAME}"


class AnswerTable:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        where = f"idempotency file {path}"
        try:
            if path is not None:
                _prepare(path)
            # used only from the server's event loop, but often made in another thread (before it starts)
            self._db = sqlite3.connect(
                str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
            )
        except (OSError, PrivateFileError, sqlite3.Error) as exc:
            raise IdempotencyFileError(f"{where}: cannot open it: {_why(exc)}") from None
        try:
            self._db.execute("PRAGMA busy_timeout = 2000")
            if path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: a crashed process loses nothing
            ok = self._db.execute("PRAGMA quick_check").fetchone()
            if ok is None or ok[0] != "ok":
                raise sqlite3.DatabaseError(str(ok[0]) if ok else "quick_check gave nothing")
            self._db.executescript(_SCHEMA)
            self._used = int(self._db.execute("SELECT coalesce(max(used), 0) FROM answers").fetchone()[0])
        except sqlite3.Error as exc:
            self._db.close()
            raise IdempotencyFileError(
                f"{where} is damaged ({_why(exc)}): move it aside and start again; it holds only the answers "
                "that retried actions get back"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])

    def get(self, scope: Scope, now: float) -> Row | None:
        found = self._db.execute(
            "SELECT fingerprint, owner, status, body, media_type FROM answers "
            "WHERE caller = ? AND path = ? AND key = ? AND expires > ?",
            (*scope, now),
        ).fetchone()
        if found is None:
            return None
        fingerprint, owner, status, body, media_type = found
        answer = Answer(int(status), bytes(body), str(media_type)) if status is not None else None
        return Row(bytes(fingerprint), str(owner), answer)

    def reserve(self, scope: Scope, fingerprint: bytes, owner: str, now: float, expires: float) -> bool:
        """Write the "acting" row; False when a live row is already there (another process won)."""
        self._db.execute(
            "DELETE FROM answers WHERE caller = ? AND path = ? AND key = ? AND expires <= ?", (*scope, now)
        )
        try:
            self._db.execute(
                "INSERT INTO answers (caller, path, key, fingerprint, owner, expires, used) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*scope, fingerprint, owner, expires, self._next_used()),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def finish(self, scope: Scope, owner: str, answer: Answer, expires: float) -> None:
        self._db.execute(
            "UPDATE answers SET status = ?, body = ?, media_type = ?, expires = ?, used = ? "
            "WHERE caller = ? AND path = ? AND key = ? AND owner = ?",
            (answer.status, answer.body, answer.media_type, expires, self._next_used(), *scope, owner),
        )

    def forget(self, scope: Scope, owner: str) -> None:
        self._db.execute(
            "DELETE FROM answers WHERE caller = ? AND path = ? AND key = ? AND owner = ?", (*scope, owner)
        )

    def touch(self, scope: Scope) -> None:
        self._db.execute(
            "UPDATE answers SET used = ? WHERE caller = ? AND path = ? AND key = ?",
            (self._next_used(), *scope),
        )

    def prune(self, now: float, max_entries: int, max_bytes: int) -> None:
        """Drop expired rows, then the least recently used answers beyond either bound (rows still acting
        are kept: their answer is yet to come)."""
        db = self._db
        db.execute("DELETE FROM answers WHERE expires <= ?", (now,))
        excess = len(self) - max_entries
        if excess > 0:
            db.execute(
                "DELETE FROM answers WHERE (caller, path, key) IN (SELECT caller, path, key FROM answers "
                "WHERE status IS NOT NULL ORDER BY used LIMIT ?)",
                (excess,),
            )
        total = int(db.execute("SELECT coalesce(sum(length(body)), 0) FROM answers").fetchone()[0])
        if total <= max_bytes:
            return
        oldest = db.execute(
            "SELECT caller, path, key, length(body) FROM answers WHERE status IS NOT NULL ORDER BY used"
        ).fetchall()
        doomed = []
        for caller, path, key, size in oldest:
            if total <= max_bytes:
                break
            doomed.append((caller, path, key))
            total -= int(size or 0)
        db.executemany("DELETE FROM answers WHERE caller = ? AND path = ? AND key = ?", doomed)

    def _next_used(self) -> int:
        self._used += 1
        return self._used


def _prepare(path: Path) -> None:
    """The file's directory (private when it is ours to make) and the file itself, created 0600 before
    SQLite opens it: SQLite gives its -wal and -shm files the same mode."""
    if not path.parent.exists() or path.parent.parent == state_home():
        ensure_private_dir(path.parent, "the idempotency file's directory")
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
