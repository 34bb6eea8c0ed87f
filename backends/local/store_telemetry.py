"""Telemetry from outside (the OTLP receiver) written as agents, figures and log lines in one transaction.

One export request is one transaction: it is stored whole or not at all, so an exporter that retries after
a 503 never stores a record twice. Agents the telemetry names are registered on first sight (kind "otel",
running), up to a limit: a client naming 100,000 agents must not grow the store without bound, so the
ones past the limit are refused and counted, and the receiver says so. Agents that exist already (a Claude
Code session its hooks registered) keep their kind and state: telemetry is their sign of life, their
labels gain what it adds.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from backends.errors import Invalid

from . import store_agents as agents_sql
from . import store_kpis as kpis_sql
from . import store_logs as logs_sql
from .store_db import dumps, loads

OTEL_KIND = "otel"
MAX_LABELS = 16
# A log line as a telemetry write carries it: (ts, level, message, fields as JSON or None). Encoded by the
# sender, as the OTLP receiver does in its mapper processes, so that the one writer only inserts.
LogRow = tuple[float, str, str, str | None]


@dataclass
class TelemetryWrite:
    """What one request says of one agent, ready to store."""

    agent_id: str
    labels: dict[str, str]
    increments: dict[str, tuple[float, str]] = field(default_factory=dict)  # counter: delta, unit
    figures: dict[str, tuple[float, str, str]] = field(default_factory=dict)  # value, unit, kind
    logs: Sequence[LogRow] = ()


@dataclass(frozen=True)
class TelemetryResult:
    stored: tuple[str, ...]  # agent ids written
    refused: tuple[str, ...]  # new agents past the limit: nothing of theirs was written
    new: tuple[str, ...]  # agents registered by this write
    kpi_points: int
    log_records: int
    last_log_seq: int


def write(
    conn: sqlite3.Connection, now: float, writes: Sequence[TelemetryWrite], max_agents: int
) -> TelemetryResult:
    ids = [w.agent_id for w in writes]
    existing: dict[str, str] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound on host parameters
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT id, labels FROM agents WHERE id IN ({marks})", chunk):
            existing[row["id"]] = row["labels"] or "{}"
    room: int | None = None
    stored: list[str] = []
    refused: list[str] = []
    new: list[str] = []
    kpi_points = 0
    log_rows: list[tuple[float, str, str, str, str | None]] = []
    for item in writes:
        if item.agent_id not in existing:
            if room is None:
                count = conn.execute("SELECT COUNT(*) FROM agents WHERE kind = ?", (OTEL_KIND,)).fetchone()[0]
                room = max(0, max_agents - int(count))
            if room <= 0:
                refused.append(item.agent_id)
                continue
            room -= 1
            agents_sql.register(
                conn,
                now,
                item.agent_id,
                kind=OTEL_KIND,
                state="running",
                pid=None,
                supervisor_pid=None,
                workspace=None,
                command=None,
                labels=dict(list(item.labels.items())[:MAX_LABELS]),
                phase_id=None,
                restart=None,
                health_url=None,
                pid_alive=lambda _pid: False,
            )
            new.append(item.agent_id)
        else:
            _merge_labels(conn, item.agent_id, existing[item.agent_id], item.labels)
        agents_sql.heartbeat(
            conn,
            now,
            item.agent_id,
            state=None,
            progress=None,
            message=None,
            current_task=None,
            pid=None,
            cpu_percent=None,
            rss_bytes=None,
        )
        kpis = _figures(conn, item)
        if kpis:
            prepared = kpis_sql.prepare(
                {name: (value, unit) for name, (value, unit, _kind) in kpis.items()},
                now,
                at=now,
                kinds={name: kind for name, (_value, _unit, kind) in kpis.items()},
            )
            kpi_points += len(kpis_sql.record(conn, item.agent_id, prepared))
        log_rows += _log_rows(item)
        stored.append(item.agent_id)
    last = logs_sql.append(conn, log_rows) if log_rows else logs_sql.last_seq(conn)
    return TelemetryResult(tuple(stored), tuple(refused), tuple(new), kpi_points, len(log_rows), last)


def _log_rows(item: TelemetryWrite) -> list[tuple[float, str, str, str, str | None]]:
    source = item.agent_id
    rows = []
    for ts, level, message, fields in item.logs:
        if level not in logs_sql.LEVELS or not (math.isfinite(ts) and ts >= 0):
            raise Invalid(f"log line at {ts!r} with level {level!r}: needs an epoch time and a store level")
        rows.append((ts, level, source, message, fields))
    return rows


def _figures(conn: sqlite3.Connection, item: TelemetryWrite) -> dict[str, tuple[float, str, str]]:
    """Absolute figures, and counters' increments added to the figure last stored (same unit)."""
    figures = dict(item.figures)
    if item.increments:
        latest = {
            str(name): (float(value), str(unit))
            for name, value, unit in conn.execute(
                "SELECT name, value, unit FROM kpi_latest WHERE agent_id = ?", (item.agent_id,)
            )
        }
        for name, (delta, unit) in item.increments.items():
            if name in figures:
                continue  # a cumulative series of the same KPI says its total itself
            before = latest.get(name)
            base = before[0] if before is not None and before[1] == unit else 0.0
            figures[name] = (base + delta, unit, "counter")
    return figures


def _merge_labels(conn: sqlite3.Connection, agent_id: str, stored: str, labels: Mapping[str, str]) -> None:
    current: dict[str, str] = loads(stored, {})
    merged = {**current}
    for key, value in labels.items():
        if key == "source" and "source" in current:
            continue  # who registered the agent says where it comes from; telemetry does not rename it
        if key in merged or len(merged) < MAX_LABELS:
            merged[key] = value
    if merged != current:
        conn.execute("UPDATE agents SET labels = ? WHERE id = ?", (dumps(merged), agent_id))
