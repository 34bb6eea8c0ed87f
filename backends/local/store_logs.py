"""Log lines and the audit trail: append-only tables whose seq is the readers' resume cursor.

Writers hold the write lock from BEGIN IMMEDIATE to COMMIT, so seqs become visible in the order they were
handed out: a reader that saw seq N can never later find a new record with a seq below N. AUTOINCREMENT
(kept in sqlite_sequence) means retention deletes never let a seq be handed out twice.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from backends.errors import Invalid
from backends.model import AuditEntry, AuditOutcome, LogRecord

from .store_db import dumps, loads

#: one log record as reporters hand it over: (ts, level, source, message, fields)
LogTuple = tuple[float | None, str, str, str, Mapping[str, Any] | None]

AUDIT_OUTCOMES: tuple[str, ...] = get_args(AuditOutcome)
LEVELS = ("debug", "info", "warning", "error", "critical")
# Names other logging systems use, so a reporter forwarding its own logs is not refused for a synonym.
_LEVEL_ALIASES = {
    "warn": "warning",
    "err": "error",
    "fatal": "critical",
    "crit": "critical",
    "trace": "debug",
    "notice": "info",
}


def normalize_level(level: str) -> str:
    lowered = str(level).lower()
    lowered = _LEVEL_ALIASES.get(lowered, lowered)
    if lowered not in LEVELS:
        raise Invalid(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    return lowered


def prepare(records: Iterable[LogTuple], now: float) -> list[tuple[float, str, str, str, str | None]]:
    """Validate and encode outside the transaction, so the write lock is held only for the inserts."""
    rows = []
    for ts, level, source, message, fields in records:
        stamp = now if ts is None else float(ts)
        if not math.isfinite(stamp) or stamp < 0:
            raise Invalid(f"log timestamp {ts!r} is not a non-negative epoch time")
        if not source:
            raise Invalid("a log record needs a source (an agent id, or 'node')")
        encoded = dumps(dict(fields)) if fields else None
        rows.append((stamp, normalize_level(level), str(source), str(message), encoded))
    return rows


def append(conn: sqlite3.Connection, rows: list[tuple[float, str, str, str, str | None]]) -> int:
    if rows:
        conn.executemany("INSERT INTO logs (ts, level, source, message, fields) VALUES (?, ?, ?, ?, ?)", rows)
    return last_seq(conn)


def last_seq(conn: sqlite3.Connection) -> int:
    """The highest seq ever handed out, even if retention has since deleted that record."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'logs'").fetchone()
    return int(row[0]) if row is not None else 0


def oldest_seq(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(seq) FROM logs").fetchone()
    return int(row[0]) if row is not None and row[0] is not None else None


_LOG_SELECT = "SELECT seq, ts, level, source, message, fields FROM logs"


def since(conn: sqlite3.Connection, seq: int, limit: int, source: str | None) -> list[LogRecord]:
    if source is None:
        cursor = conn.execute(f"{_LOG_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
    else:
        cursor = conn.execute(
            f"{_LOG_SELECT} WHERE source = ? AND seq > ? ORDER BY seq LIMIT ?", (source, seq, limit)
        )
    # Columns by position: a name lookup in an sqlite3.Row compares it with every column name.
    return [
        LogRecord(
            seq=row_seq,
            ts=ts,
            level=level,
            source=row_source,
            message=message,
            fields=loads(fields, {}),
        )
        for row_seq, ts, level, row_source, message, fields in cursor
    ]


def prune(conn: sqlite3.Connection, now: float, max_records: int, max_age_s: float) -> int:
    """Delete records older than ``max_age_s`` and keep at most the newest ``max_records``; count deleted.

    Seqs are dense (only retention deletes, and only old ones), so the count cut is a seq bound: a range
    delete on the primary key, instead of walking ``max_records`` rows to find where to cut.
    """
    deleted = conn.execute("DELETE FROM logs WHERE ts < ?", (now - max_age_s,)).rowcount
    cut = last_seq(conn) - max(0, max_records)
    if cut > 0:
        deleted += conn.execute("DELETE FROM logs WHERE seq <= ?", (cut,)).rowcount
    return int(deleted)


def add_audit(
    conn: sqlite3.Connection,
    now: float,
    *,
    operator: str,
    action: str,
    target: str | None,
    params: Mapping[str, Any] | None,
    reason: str | None,
    outcome: str,
    detail: str | None,
    request_id: str | None,
) -> AuditEntry:
    if outcome not in AUDIT_OUTCOMES:
        raise Invalid(f"audit outcome {outcome!r} is not one of {', '.join(AUDIT_OUTCOMES)}")
    if not operator or not action:
        raise Invalid("an audit entry needs an operator and an action")
    params_json = dumps(dict(params or {}))
    cursor = conn.execute(
        """INSERT INTO audit (ts, operator, action, target, params, reason, outcome, detail, request_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (now, operator, action, target, params_json, reason, outcome, detail, request_id),
    )
    return AuditEntry(
        seq=int(cursor.lastrowid or 0),
        ts=now,
        operator=operator,
        action=action,
        target=target,
        params=loads(params_json, {}),
        reason=reason,
        outcome=outcome,  # type: ignore[arg-type]
        detail=detail,
        request_id=request_id,
    )


def audit_since(conn: sqlite3.Connection, seq: int, limit: int) -> list[AuditEntry]:
    return [
        AuditEntry(
            seq=row["seq"],
            ts=row["ts"],
            operator=row["operator"],
            action=row["action"],
            target=row["target"],
            params=loads(row["params"], {}),
            reason=row["reason"],
            outcome=row["outcome"],
            detail=row["detail"],
            request_id=row["request_id"],
        )
        for row in conn.execute("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
    ]
