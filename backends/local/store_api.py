"""The agent half of the Store's API: registration, heartbeats, health, commands (a mixin of Store).

Kept apart from store.py only to keep files short; Store is the one class callers use.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence

from backends.model import Agent, Kpi

from . import store_agents as agents_sql
from . import store_kpis as kpis_sql
from . import store_plan as plan_sql
from .store_db import Database
from .store_health import DEFAULT_THRESHOLDS, AgentRecord, HealthThresholds, compute_health, judges_supervisor

ERROR_WINDOW_S = 60.0


class AgentsApi:
    """Agent methods of Store; the attributes are set by Store.__init__."""

    _db: Database
    _clock: Callable[[], float]
    _pid_alive: Callable[[int], bool]
    _latest_kpis: kpis_sql.LatestCache

    def _kpis_written(self, count: int) -> None:
        """Store counts recorded KPI points here, to prune their history now and then."""

    # --- agents ----------------------------------------------------------------------------------------

    def register_agent(
        self,
        name: str,
        *,
        kind: str,
        state: str = "starting",
        pid: int | None = None,
        supervisor_pid: int | None = None,
        workspace: str | None = None,
        command: Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        phase_id: str | None = None,
        restart: str | None = None,
        health_url: str | None = None,
    ) -> Agent:
        """Add an agent, or start a new incarnation of a known one (restarts and history are kept).

        Conflict if the name is live under another supervisor that still exists."""
        now = self._clock()
        record = self._db.write(
            lambda c: agents_sql.register(
                c,
                now,
                name,
                kind=kind,
                state=state,
                pid=pid,
                supervisor_pid=supervisor_pid,
                workspace=workspace,
                command=command,
                labels=labels,
                phase_id=phase_id,
                restart=restart,
                health_url=health_url,
                pid_alive=self._pid_alive,
            )
        )
        return self._judge(record, now, DEFAULT_THRESHOLDS, {})

    def heartbeat(
        self,
        agent_id: str,
        *,
        state: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        current_task: str | None = None,
        pid: int | None = None,
        cpu_percent: float | None = None,
        rss_bytes: int | None = None,
        kpis: kpis_sql.KpiInput | None = None,
    ) -> None:
        """Record that the agent is alive; ``kpis`` ({name: value} or {name: (value, unit)}) are recorded
        in the same transaction, as :meth:`Store.record_kpis` would."""
        now = self._clock()
        prepared = kpis_sql.prepare(kpis, now, at=None, kinds=None) if kpis else []

        def write(conn: sqlite3.Connection) -> None:
            agents_sql.heartbeat(
                conn,
                now,
                agent_id,
                state=state,
                progress=progress,
                message=message,
                current_task=current_task,
                pid=pid,
                cpu_percent=cpu_percent,
                rss_bytes=rss_bytes,
            )
            kpis_sql.record(conn, agent_id, prepared)

        self._db.write(write)
        self._kpis_written(len(prepared))

    def set_agent_state(
        self,
        agent_id: str,
        state: str,
        *,
        exit_code: int | None = None,
        message: str | None = None,
        restarts_increment: bool = False,
        pid: int | None = None,
    ) -> AgentRecord:
        now = self._clock()
        return self._db.write(
            lambda c: agents_sql.set_state(
                c,
                now,
                agent_id,
                state,
                exit_code=exit_code,
                message=message,
                restarts_increment=restarts_increment,
                pid=pid,
            )
        )

    def get_agent(self, agent_id: str, thresholds: HealthThresholds = DEFAULT_THRESHOLDS) -> Agent:
        def read(conn: sqlite3.Connection) -> Agent:
            now = self._clock()
            record = agents_sql.get(conn, agent_id)
            phase_id = plan_sql.assign_phase(plan_sql.read_rows(conn), record.id, record.phase_id)
            errors = agents_sql.error_counts(conn, now - ERROR_WINDOW_S)
            kpis = kpis_sql.latest(conn, record.id).get(record.id, ())
            return self._judge(record, now, thresholds, errors, phase_id, kpis)

        return self._db.read(read)

    def agent_record(self, agent_id: str) -> AgentRecord:
        return self._db.read(lambda c: agents_sql.get(c, agent_id))

    def agent_rows(self) -> list[AgentRecord]:
        return self._db.read(agents_sql.all_records)

    def agents(self, thresholds: HealthThresholds = DEFAULT_THRESHOLDS) -> list[Agent]:
        return self._db.read(lambda c: self._read_agents(c, thresholds)[0])

    def remove_agent(self, agent_id: str) -> None:
        self._db.write(lambda c: agents_sql.remove(c, agent_id))

    def enqueue_command(
        self,
        agent_id: str,
        command: str,
        *,
        operator: str | None = None,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> int:
        """Queue pause|resume|stop for an agent that polls for its commands; returns the command id."""
        now = self._clock()
        return self._db.write(
            lambda c: agents_sql.enqueue_command(
                c, now, agent_id, command, operator=operator, reason=reason, request_id=request_id
            )
        )

    def take_commands(self, agent_id: str) -> list[tuple[int, str]]:
        """The agent's untaken commands, oldest first, now marked taken.

        Agents ask at every heartbeat and almost always there are none: a read (which never waits for a
        writer) finds that out, and only pending commands cost a write transaction."""
        if not self._db.read(lambda c: agents_sql.has_pending_commands(c, agent_id)):
            return []
        now = self._clock()
        return self._db.write(lambda c: agents_sql.take_commands(c, now, agent_id))

    # --- helpers ---------------------------------------------------------------------------------------

    def _read_agents(
        self, conn: sqlite3.Connection, thresholds: HealthThresholds
    ) -> tuple[list[Agent], list[AgentRecord], plan_sql.PlanRows, dict[str, str | None]]:
        now = self._clock()
        records = agents_sql.all_records(conn)
        rows = plan_sql.read_rows(conn)
        assignment = {r.id: plan_sql.assign_phase(rows, r.id, r.phase_id) for r in records}
        errors = agents_sql.error_counts(conn, now - ERROR_WINDOW_S) if records else {}
        kpis = self._latest_kpis.read(conn) if records else {}
        judged = [
            self._judge(r, now, thresholds, errors, assignment[r.id], kpis.get(r.id, ())) for r in records
        ]
        return judged, records, rows, assignment

    def _judge(
        self,
        record: AgentRecord,
        now: float,
        thresholds: HealthThresholds,
        errors: Mapping[str, int],
        phase_id: str | None = None,
        kpis: tuple[Kpi, ...] = (),
    ) -> Agent:
        alive = None
        if judges_supervisor(record) and record.supervisor_pid is not None:
            alive = self._pid_alive(record.supervisor_pid)
        health, reason = compute_health(
            record, now, thresholds, errors_last_minute=errors.get(record.id, 0), supervisor_alive=alive
        )
        return record.to_agent(health, reason, phase_id=phase_id, kpis=kpis)
