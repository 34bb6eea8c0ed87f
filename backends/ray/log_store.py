"""The Ray node's log lines, numbered and kept in SQLite in the node's state dir: the seq is a resume cursor
that survives restarts, and every process watching the cluster from this state dir (a console, ``fleetdeck
logs``, ``fleetdeck node serve``) hands out the same seq for the same line.

A line is known by its file and line number (``key``, ``line``): ``job:<id>`` a job's driver log,
``actor:<id>:out``/``:err`` an actor's worker files, ``job:<id>:status`` a job's status changes.
``cursors`` says how many lines of each file are in, and whether the file is finished (its job or actor is
over and the file was read to its end). Two processes that read the same file both offer its lines; in the
write transaction only those past the cursor go in, so a line gets one seq however many read it.

Seqs are handed out under the write lock (BEGIN IMMEDIATE), so they become visible in order, and by
AUTOINCREMENT, so a deleted seq is never handed out again: only retention makes holes, and a reader that
meets one knows exactly how many lines it missed. Retention bounds each file (one flooding job cannot push
the other jobs' lines out) and the whole table.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.errors import BackendError
from backends.model import LogLevel, LogRecord

LOG_DB = "ray-logs.sqlite"
SCHEMA_VERSION = 1
MAX_PER_FILE = 50_000  # lines kept of one file: the newest
MAX_RECORDS = 200_000  # lines kept in all
RETAIN_EVERY = 2_000  # lines added between two applications of the bounds
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    line INTEGER NOT NULL,
    ts REAL NOT NULL,
    level TEXT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL,
    fields TEXT NOT NULL,
    UNIQUE (key, line)
);
CREATE INDEX IF NOT EXISTS records_by_key ON records (key, seq);
CREATE TABLE IF NOT EXISTS cursors (
    key TEXT PRIMARY KEY,
    lines INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class NewLine:
    line: int  # its number in its file, from 0
    ts: float
    level: LogLevel
    source: str  # the agent or task id the line belongs to
    message: str
    fields: dict[str, Any]


class LogStore:
    """Blocking calls (run them in a thread); one connection, serialised by a lock."""

    def __init__(self, state_dir: Path, *, max_per_file: int = MAX_PER_FILE, max_records: int = MAX_RECORDS):
        self.path = state_dir / LOG_DB
        self._max_per_file = max_per_file
        self._max_records = max_records
        self._lock = threading.Lock()
        self._unretained = 0
        # the bounds may be overshot by a tenth of the smaller, at most RETAIN_EVERY lines
        self._retain_every = max(1, min(RETAIN_EVERY, max_per_file // 10, max_records // 10))
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                (found,) = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"the Ray log store {self.path} cannot be used ({_why(exc)})") from None
        if found != str(SCHEMA_VERSION):
            self._db.close()
            raise BackendError(
                f"the Ray log store {self.path} is of schema {found}, this fleetdeck reads "
                f"{SCHEMA_VERSION}: move it aside to start a new one"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing -------------------------------------------------------------------------------------------

    def add(self, key: str, lines: Sequence[NewLine], *, upto: int, finished: bool = False) -> int:
        """Keep ``lines`` of file ``key`` (those already kept are skipped) and move its cursor to ``upto``
        (the lines looked at, those left out included), in one transaction; returns how many were new."""
        try:
            with self._write():
                row = self._db.execute("SELECT lines FROM cursors WHERE key = ?", (key,)).fetchone()
                kept = int(row[0]) if row else 0
                # only what is past the cursor: a skipped INSERT OR IGNORE would still use up a seq
                fresh = [n for n in lines if n.line >= kept]
                self._db.executemany(
                    "INSERT OR IGNORE INTO records (key, line, ts, level, source, message, fields) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(key, n.line, n.ts, n.level, n.source, n.message, json.dumps(n.fields)) for n in fresh],
                )
                added = len(fresh)
                self._db.execute(
                    "INSERT INTO cursors (key, lines, finished) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                    "SET lines = max(lines, excluded.lines), finished = max(finished, excluded.finished)",
                    (key, upto, int(finished)),
                )
                self._unretained += added
                if self._unretained >= self._retain_every or (finished and self._unretained):
                    self._retain()
                return added
        except sqlite3.Error as exc:
            raise BackendError(
                f"the Ray log store {self.path} cannot keep new lines ({_why(exc)}); they are read "
                "again once it can"
            ) from None

    def _retain(self) -> None:
        """Apply both bounds, counting rows kept (not seqs handed out, which one long-lived file would
        run far past). Run every few lines this store added (a tenth of the smaller bound, at most
        :data:`RETAIN_EVERY`), so a bound may be overshot by that many per writing process, never more."""
        self._unretained = 0
        crowded = self._db.execute(
            "SELECT key FROM records GROUP BY key HAVING count(*) > ?", (self._max_per_file,)
        ).fetchall()
        for (key,) in crowded:
            self._db.execute(
                "DELETE FROM records WHERE key = ? AND seq <= (SELECT seq FROM records WHERE key = ? "
                "ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (key, key, self._max_per_file),
            )
        self._db.execute(
            "DELETE FROM records WHERE seq <= (SELECT seq FROM records ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (self._max_records,),
        )

    # --- reading -------------------------------------------------------------------------------------------

    def lines_in(self, keys: Sequence[str]) -> dict[str, tuple[int, bool]]:
        """(lines kept so far, finished) of each file that has a cursor."""
        out: dict[str, tuple[int, bool]] = {}
        with self._reading():
            for chunk in _chunks(list(keys), 500):
                marks = ",".join("?" * len(chunk))
                for key, lines, finished in self._db.execute(
                    f"SELECT key, lines, finished FROM cursors WHERE key IN ({marks})", chunk
                ):
                    out[key] = (int(lines), bool(finished))
        return out

    def after(self, seq: int, limit: int) -> list[LogRecord]:
        with self._reading():
            rows = self._db.execute(
                "SELECT seq, ts, level, source, message, fields FROM records WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [
            LogRecord(seq=s, ts=ts, level=level, source=source, message=message, fields=json.loads(fields))
            for s, ts, level, source, message, fields in rows
        ]

    def last_seq(self) -> int:
        """The highest seq ever handed out (0 if none), deleted or not."""
        with self._reading():
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return int(row[0]) if row else 0

    # --- the connection ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except sqlite3.Error as exc:
            raise BackendError(f"the Ray log store {self.path} cannot be read ({_why(exc)})") from None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
