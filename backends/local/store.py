"""The local node's store: one SQLite file that agents, supervisors, the console and the node server share.

No daemon: every process opens its own ``Store`` on ``state_dir/fleetdeck.db`` and each method is one
short transaction (see store_db for why that never surfaces 'database is locked'). Methods are plain
synchronous calls; async callers use ``asyncio.to_thread``. Reads return wire-model objects.

    with Store(default_state_dir()) as store:
        store.register_agent("trainer-1", kind="reporting")
        store.heartbeat("trainer-1", progress=0.4)
        agents, phases, tasks, checkpoints = store.snapshot_parts()
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from backends.errors import Invalid
from backends.model import Agent, AuditEntry, Checkpoint, Gate, Kpi, KpiSeries, LogRecord, Phase, Task

from . import plan_history, plan_judge, plan_live
from . import store_agents as agents_sql
from . import store_kpis as kpis_sql
from . import store_logs as logs_sql
from . import store_plan as plan_sql
from . import store_telemetry as telemetry_sql
from . import store_work as work_sql
from .schema import SCHEMA_VERSION, StoreError, quick_check
from .store_api import AgentsApi
from .store_db import Database
from .store_health import DEFAULT_THRESHOLDS, AgentRecord, HealthThresholds, compute_health
from .store_health import pid_alive as _pid_alive
from .store_kpis import KpiInput, Window
from .store_logs import LogTuple
from .store_plan import PlanCriterion, PlanMilestone, PlanPhase
from .store_work import CheckpointRecord

__all__ = [
    "SCHEMA_VERSION",
    "AgentRecord",
    "CheckpointRecord",
    "HealthThresholds",
    "PlanCriterion",
    "PlanMilestone",
    "PlanPhase",
    "SnapshotRead",
    "Store",
    "StoreError",
    "compute_health",
    "default_state_dir",
]

PRUNE_EVERY_RECORDS = 1000
PRUNE_EVERY_S = 60.0
# KPI points are pruned like logs: now and then, not per insert (5,000 agents x 5 KPIs at 1 Hz would
# otherwise run a delete 25,000 times a second).
KPI_PRUNE_EVERY_POINTS = 5000
KPI_KEEP_S = 8 * 86400.0  # a week's report card, with a day to spare
KPI_MAX_POINTS = 2_000_000


def default_state_dir() -> Path:
    """$FLEETDECK_STATE_DIR, else $XDG_STATE_HOME/fleetdeck/node, else ~/.local/state/fleetdeck/node."""
    explicit = os.environ.get("FLEETDECK_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "fleetdeck" / "node"


T = TypeVar("T", int, float)


class SnapshotRead(NamedTuple):
    """The store's part of a snapshot, as of one moment, with the agents' records it was judged from."""

    agents: list[Agent]
    records: list[AgentRecord]
    phases: list[Phase]
    tasks: list[Task]
    checkpoints: list[Checkpoint]


def _env_number(name: str, default: T, kind: Callable[[str], T]) -> T:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise Invalid(f"${name} must be a number, got {text!r}") from None


class Store(AgentsApi):
    """The store of one node. Safe to share between threads; open one per process."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        log_max_records: int | None = None,
        log_max_age_s: float | None = None,
        clock: Callable[[], float] = time.time,
        verify: bool = True,
        pid_alive: Callable[[int], bool] = _pid_alive,
        kpi_max_points: int | None = None,
        kpi_max_age_s: float | None = None,
    ) -> None:
        """``verify`` runs SQLite's quick_check on open (reads the whole file: short-lived reporters that
        open the store every few seconds may skip it; the console and supervisors should not).

        Log retention defaults to $FLEETDECK_LOG_MAX_RECORDS / $FLEETDECK_LOG_MAX_AGE_S, else 200,000 records
        and 7 days: read from the environment so every process sharing the store (supervisors started by a
        dispatch inherit it) prunes alike. KPI points likewise keep $FLEETDECK_KPI_KEEP_S (8 days) and at
        most $FLEETDECK_KPI_MAX_POINTS (2,000,000) points."""
        log_max_records = (
            log_max_records
            if log_max_records is not None
            else _env_number("FLEETDECK_LOG_MAX_RECORDS", 200_000, int)
        )
        log_max_age_s = (
            log_max_age_s
            if log_max_age_s is not None
            else _env_number("FLEETDECK_LOG_MAX_AGE_S", 7 * 86400.0, float)
        )
        if log_max_records < 0 or log_max_age_s <= 0:
            raise Invalid("log retention needs a record count >= 0 and an age > 0 seconds")
        self._db = Database(Path(state_dir), verify=verify)
        self._clock = clock
        self._pid_alive = pid_alive
        self.log_max_records = log_max_records
        self.log_max_age_s = log_max_age_s
        self._appended_since_prune = 0
        self._last_prune: float | None = None  # None: prune on the first append of this process
        self._init_kpi_retention(kpi_max_points, kpi_max_age_s)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def schema_version(self) -> int:
        return int(self._db.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    # --- logs ------------------------------------------------------------------------------------------

    def append_logs(self, records: Iterable[LogTuple]) -> int:
        """Append (ts, level, source, message, fields) records in one transaction; return the last seq.

        A None ts means now. Retention runs now and then, after the append and in its own transaction."""
        rows = logs_sql.prepare(records, self._clock())
        last = self._db.write(lambda c: logs_sql.append(c, rows))
        self._appended_since_prune += len(rows)
        now = self._clock()
        if (
            self._last_prune is None
            or self._appended_since_prune >= PRUNE_EVERY_RECORDS
            or now - self._last_prune >= PRUNE_EVERY_S
        ):
            self.prune_logs()
        return last

    def log(self, source: str, level: str, message: str, /, **fields: Any) -> int:
        return self.append_logs([(None, level, source, message, fields)])

    def logs_since(self, seq: int = 0, limit: int = 10_000, source: str | None = None) -> list[LogRecord]:
        return self._db.read(lambda c: logs_sql.since(c, seq, limit, source))

    def last_log_seq(self) -> int:
        return self._db.read(logs_sql.last_seq)

    def oldest_log_seq(self) -> int | None:
        """The oldest seq still kept; a reader resuming below it knows retention dropped the gap."""
        return self._db.read(logs_sql.oldest_seq)

    def prune_logs(self) -> int:
        """Apply retention (age, then count) now; returns how many log records were deleted. Day-old taken
        commands go too (agents that get no new commands would otherwise keep them)."""
        now = self._clock()
        self._appended_since_prune = 0
        self._last_prune = now

        def prune(conn: sqlite3.Connection) -> int:
            agents_sql.forget_taken_commands(conn, now)
            return logs_sql.prune(conn, now, self.log_max_records, self.log_max_age_s)

        return self._db.write(prune)

    # --- telemetry from outside ------------------------------------------------------------------------

    def record_telemetry(
        self,
        writes: Sequence[telemetry_sql.TelemetryWrite],
        *,
        max_agents: int,
        within_s: float | None = None,
    ) -> telemetry_sql.TelemetryResult:
        """Store what one OTLP request said of its agents in one transaction (store_telemetry): agents
        registered on first sight up to ``max_agents`` of kind "otel" (the rest refused), heartbeats,
        figures, log lines. Retention runs as after any append. ``within_s`` bounds the wait for a lock
        (StoreError past it, nothing written)."""
        now = self._clock()
        result = self._db.write(lambda c: telemetry_sql.write(c, now, writes, max_agents), within_s=within_s)
        self._kpis_written(result.kpi_points)
        self._appended_since_prune += result.log_records
        if (
            self._appended_since_prune >= PRUNE_EVERY_RECORDS
            or now - (self._last_prune or 0.0) >= PRUNE_EVERY_S
        ):
            self.prune_logs()
        return result

    # --- KPIs ------------------------------------------------------------------------------------------

    def _init_kpi_retention(self, max_points: int | None, max_age_s: float | None) -> None:
        self.kpi_max_points = (
            max_points
            if max_points is not None
            else _env_number("FLEETDECK_KPI_MAX_POINTS", KPI_MAX_POINTS, int)
        )
        self.kpi_max_age_s = (
            max_age_s if max_age_s is not None else _env_number("FLEETDECK_KPI_KEEP_S", KPI_KEEP_S, float)
        )
        if self.kpi_max_points < 0 or self.kpi_max_age_s <= 0:
            raise Invalid("KPI retention needs a point count >= 0 and an age > 0 seconds")
        self._kpi_points_since_prune = 0
        self._last_kpi_prune: float | None = None  # None: prune on the first record of this process
        self._latest_kpis = kpis_sql.LatestCache()  # what snapshots read, kept between them
        self._figures = plan_judge.FigureCache()  # bound criteria's figures, judged again when due

    def record_kpis(
        self,
        agent_id: str,
        kpis: KpiInput,
        *,
        at: float | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> list[Kpi]:
        """Record an agent's figures ({name: value}, {name: (value, unit)} or Kpi values) measured ``at``
        (default now); returns them as stored, a counter's rate filled in.

        Invalid naming the KPI and the field for a figure the wire model refuses (nothing is recorded
        then); NotFound for an unknown agent, as a heartbeat. Unit and kind default to what the name
        implies (``backends.kpis.infer_unit`` / ``infer_kind``)."""
        prepared = kpis_sql.prepare(kpis, self._clock(), at=at, kinds=kinds)

        def write(conn: sqlite3.Connection) -> list[Kpi]:
            agents_sql.require(conn, agent_id)
            return kpis_sql.record(conn, agent_id, prepared)

        stored = self._db.write(write)
        self._kpis_written(len(stored))
        return stored

    def latest_kpis(self) -> dict[str, tuple[Kpi, ...]]:
        """Every agent's latest figures by agent id, each agent's sorted by name."""
        return self._db.read(kpis_sql.latest)

    def kpi_window(
        self, names: Collection[str] | None, since: float, agent_ids: Collection[str] | None = None
    ) -> Window:
        """Points since ``since`` keyed (agent_id, name), oldest first (see store_kpis.window)."""
        return self._db.read(lambda c: kpis_sql.window(c, names, since, agent_ids))

    def kpi_history(
        self,
        since: float,
        names: Collection[str] | None = None,
        agent_ids: Collection[str] | None = None,
    ) -> list[KpiSeries]:
        """One series per (agent, KPI) with points since ``since``, by agent then name."""
        return self._db.read(lambda c: kpis_sql.history(c, since, names, agent_ids))

    def prune_kpis(self) -> int:
        """Apply KPI retention (age, then count) now; returns how many points were deleted."""
        now = self._clock()
        self._kpi_points_since_prune = 0
        self._last_kpi_prune = now
        return self._db.write(lambda c: kpis_sql.prune(c, now, self.kpi_max_points, self.kpi_max_age_s))

    def _kpis_written(self, count: int) -> None:
        if not count:
            return
        self._kpi_points_since_prune += count
        now = self._clock()
        if (
            self._last_kpi_prune is None
            or self._kpi_points_since_prune >= KPI_PRUNE_EVERY_POINTS
            or now - self._last_kpi_prune >= PRUNE_EVERY_S
        ):
            self.prune_kpis()

    # --- plan ------------------------------------------------------------------------------------------

    def apply_plan(self, phases: Sequence[PlanPhase]) -> list[Phase]:
        """Make the stored plan match ``phases`` (ids are identity; statuses and actuals are kept)."""
        now = self._clock()

        def write(conn: sqlite3.Connection) -> list[Phase]:
            self._figures.clear()  # a plan applied is judged afresh
            plan_sql.apply(conn, now, phases)
            return self._read_phases(conn, agents_sql.all_records(conn))

        return self._db.write(write)

    def set_milestone(
        self, milestone_id: str, status: str | None = None, criteria: Mapping[str, str | float] | None = None
    ) -> None:
        """Set a milestone's status and/or its criteria's actual values (a number takes the unit)."""
        now = self._clock()
        self._db.write(lambda c: plan_sql.set_milestone(c, now, milestone_id, status, criteria or {}))

    def set_phase_status(self, phase_id: str, status: str | None) -> None:
        """Pin a phase's status (e.g. paused by an operator); None returns it to the derived one."""
        now = self._clock()
        self._db.write(lambda c: plan_sql.set_phase_status(c, now, phase_id, status))

    def phases(self, *, record_verdicts: bool = True) -> list[Phase]:
        """The plan as of now; ``record_verdicts`` as for :meth:`snapshot_read`."""
        now = self._clock()
        changes: list[plan_history.Change] = []

        def read(conn: sqlite3.Connection) -> list[Phase]:
            phases = self._read_phases(conn, agents_sql.all_records(conn))
            if record_verdicts:
                changes.extend(plan_history.pending(phases, plan_history.stored_verdicts(conn)))
            return phases

        phases = self._db.read(read)
        self._record(now, changes)
        return phases

    def sign_gate(self, phase_id: str, decision: str, operator: str, reason: str | None = None) -> Gate:
        """Record an operator's sign-off on a phase's gate, with its audit entry, in one transaction; the
        gate returned carries it in ``signed`` beside the decision the figures make."""
        if decision not in ("go", "no-go"):
            raise Invalid(f"decision {decision!r} is not one of go, no-go")
        now = self._clock()

        def write(conn: sqlite3.Connection) -> Gate:
            if conn.execute("SELECT 1 FROM phases WHERE id = ?", (phase_id,)).fetchone() is None:
                raise agents_sql.not_found("phase", phase_id, agents_sql.known_ids(conn, "phases"))
            conn.execute(
                "INSERT INTO gate_signoffs (phase_id, decision, operator, at, reason) VALUES (?, ?, ?, ?, ?)",
                (phase_id, decision, operator, now, reason),
            )
            phase = next(p for p in self._read_phases(conn, agents_sql.all_records(conn)) if p.id == phase_id)
            logs_sql.add_audit(
                conn,
                now,
                operator=operator,
                action="gate.sign",
                target=f"phase:{phase_id}",
                params={"decision": decision},
                reason=reason,
                outcome="ok",
                detail=f"signed {decision.upper()}; the figures say {phase.gate.decision.upper()}",
                request_id=None,
            )
            return phase.gate

        return self._db.write(write)

    # --- tasks -----------------------------------------------------------------------------------------

    def create_task(self, kind: str, target: str, payload: Mapping[str, Any], submitted_by: str) -> Task:
        now = self._clock()
        return self._db.write(lambda c: work_sql.create_task(c, now, kind, target, payload, submitted_by))

    def claim_task(self, agent_id: str) -> Task | None:
        now = self._clock()
        return self._db.write(lambda c: work_sql.claim_task(c, now, agent_id))

    def finish_task(self, task_id: str, *, result: Any = None, error: str | None = None) -> Task:
        now = self._clock()
        return self._db.write(lambda c: work_sql.finish_task(c, now, task_id, result, error))

    def set_task_status(self, task_id: str, status: str) -> Task:
        now = self._clock()
        return self._db.write(lambda c: work_sql.set_task_status(c, now, task_id, status))

    def get_task(self, task_id: str) -> Task:
        return self._db.read(lambda c: work_sql.get_task(c, task_id))

    def tasks(self, limit: int = 500) -> list[Task]:
        return self._db.read(lambda c: work_sql.list_tasks(c, limit))

    # --- checkpoints -----------------------------------------------------------------------------------

    def capture_state(self) -> dict[str, Any]:
        return self._db.read(work_sql.capture)

    def restore_state(self, state: Mapping[str, Any]) -> dict[str, str]:
        """Restore plan and tasks; returns agent holds (id -> paused|stopped|running) for the caller."""
        now = self._clock()
        return self._db.write(lambda c: work_sql.restore(c, now, state))

    def add_checkpoint(
        self,
        label: str,
        created_by: str,
        *,
        automatic: bool = False,
        phase_id: str | None = None,
        covers: Sequence[str] = (),
        state: Mapping[str, Any] | None = None,
        git_refs: Mapping[str, str] | None = None,
    ) -> Checkpoint:
        """Record a checkpoint; without ``state`` the store's current state is captured in the same
        transaction, so nothing can change between the capture and the record."""
        now = self._clock()

        def write(conn: sqlite3.Connection) -> Checkpoint:
            captured = work_sql.capture(conn) if state is None else state
            return work_sql.add_checkpoint(
                conn,
                now,
                label=label,
                created_by=created_by,
                automatic=automatic,
                phase_id=phase_id,
                covers=covers,
                state=captured,
                git_refs=git_refs or {},
            )

        return self._db.write(write)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return self._db.read(lambda c: work_sql.get_checkpoint(c, checkpoint_id))

    def checkpoint_record(self, checkpoint_id: str) -> CheckpointRecord:
        return self._db.read(lambda c: work_sql.checkpoint_record(c, checkpoint_id))

    def checkpoints(self, limit: int = 200) -> list[Checkpoint]:
        return self._db.read(lambda c: work_sql.list_checkpoints(c, limit))

    # --- audit -----------------------------------------------------------------------------------------

    def audit(
        self,
        operator: str,
        action: str,
        target: str | None,
        *,
        outcome: str,
        params: Mapping[str, Any] | None = None,
        reason: str | None = None,
        detail: str | None = None,
        request_id: str | None = None,
    ) -> AuditEntry:
        now = self._clock()
        return self._db.write(
            lambda c: logs_sql.add_audit(
                c,
                now,
                operator=operator,
                action=action,
                target=target,
                params=params,
                reason=reason,
                outcome=outcome,
                detail=detail,
                request_id=request_id,
            )
        )

    def audit_since(self, seq: int = 0, limit: int = 10_000) -> list[AuditEntry]:
        return self._db.read(lambda c: logs_sql.audit_since(c, seq, limit))

    def last_audit_seq(self) -> int:
        """The newest audit entry's seq (0 when there is none): where a later ``audit_since`` starts."""
        newest = self._db.read(lambda c: c.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0])
        return int(newest)

    # --- the snapshot ----------------------------------------------------------------------------------

    def snapshot_parts(
        self,
        thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
        *,
        task_limit: int = 500,
        checkpoint_limit: int = 200,
    ) -> tuple[list[Agent], list[Phase], list[Task], list[Checkpoint]]:
        """Agents, phases, tasks and checkpoints as of one moment (one read transaction)."""
        read = self.snapshot_read(thresholds, task_limit=task_limit, checkpoint_limit=checkpoint_limit)
        return read.agents, read.phases, read.tasks, read.checkpoints

    def snapshot_read(
        self,
        thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
        *,
        task_limit: int = 500,
        checkpoint_limit: int = 200,
        record_verdicts: bool = True,
    ) -> SnapshotRead:
        """What :meth:`snapshot_parts` reads, plus the agents' records, from the same transaction: the
        backend needs both, and reading the agents table twice was a third of a snapshot's cost.

        With ``record_verdicts`` (off for a read-only node), a criterion verdict or gate decision that
        changed since it was last recorded is recorded now, once, with its audit entry (plan_history)."""

        def read(conn: sqlite3.Connection) -> SnapshotRead:
            agents, records, rows, assignment = self._read_agents(conn, thresholds)
            phases = plan_live.read_phases(conn, now, rows, records, assignment, self._figures)
            if record_verdicts:
                changes.extend(plan_history.pending(phases, plan_history.stored_verdicts(conn)))
            return SnapshotRead(
                agents=agents,
                records=records,
                phases=phases,
                tasks=work_sql.list_tasks(conn, task_limit),
                checkpoints=work_sql.list_checkpoints(conn, checkpoint_limit),
            )

        now = self._clock()
        changes: list[plan_history.Change] = []
        result = self._db.read(read)
        self._record(now, changes)
        return result

    def verify(self) -> None:
        """SQLite's quick_check; StoreError naming the damage if the file is corrupt."""
        self._db.read(lambda c: quick_check(c, self.path))

    def _read_phases(self, conn: sqlite3.Connection, records: list[AgentRecord]) -> list[Phase]:
        rows = plan_sql.read_rows(conn)
        assignment = {r.id: plan_sql.assign_phase(rows, r.id, r.phase_id) for r in records}
        return plan_live.read_phases(conn, self._clock(), rows, records, assignment, self._figures)

    def _record(self, now: float, changes: list[plan_history.Change]) -> None:
        """Record verdict changes seen by a read; a store too busy to take them now is asked again by the
        next read, which sees the same changes."""
        if not changes:
            return
        with contextlib.suppress(StoreError):
            self._db.write(lambda c: plan_history.record(c, now, changes))
