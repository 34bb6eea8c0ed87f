"""An agent's row as the local backend sees it, and the pure rules that turn it into a health and a why.

Health is computed when read, never stored: a stored "healthy" would stay healthy after the agent died,
while the age of the last heartbeat keeps growing by itself.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from backends.model import Agent, AgentKind, AgentState, Health, HealthCheck, Kpi

from .store_db import loads

_SEVERITY: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}
#: states in which an agent is expected to report; the others are judged by their state alone
LIVE_STATES: frozenset[str] = frozenset(("starting", "running", "idle", "waiting", "stopping"))


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """[warning, critical] pairs, as in the config's ``[thresholds]``."""

    heartbeat_stale_s: tuple[float, float] = (15.0, 60.0)
    # An agent known only from its OpenTelemetry speaks when its SDK exports: metrics every 60 s by default
    # (OTEL_METRIC_EXPORT_INTERVAL), so a heartbeat's 15 s would call every such agent stale.
    telemetry_stale_s: tuple[float, float] = (180.0, 900.0)
    error_rate_per_min: tuple[float, float] = (10.0, 50.0)


DEFAULT_THRESHOLDS = HealthThresholds()
#: what :func:`compute_health` judges, declared in the node's info so that the console does not judge the same
#: conditions again from its own log buffer and clock (two alerts, two counts for one condition)
HEALTH_CHECKS: frozenset[HealthCheck] = frozenset(("heartbeat", "error_rate"))


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """Everything the store keeps about an agent, including what only the local node needs."""

    id: str
    name: str
    kind: AgentKind
    state: AgentState
    pid: int | None = None
    supervisor_pid: int | None = None
    workspace: str | None = None
    command: tuple[str, ...] | None = None
    restart_policy: str = "no"
    health_url: str | None = None
    exit_code: int | None = None
    restarts: int = 0
    registered_at: float = 0.0
    started_at: float | None = None
    last_heartbeat: float | None = None
    heartbeats: int = 0
    progress: float | None = None
    message: str | None = None
    current_task: str | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    phase_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    state_since: float | None = None  # when state last changed; NULL for rows from before schema 5

    def to_agent(
        self, health: Health, reason: str | None, *, phase_id: str | None = None, kpis: tuple[Kpi, ...] = ()
    ) -> Agent:
        return Agent(
            id=self.id,
            name=self.name,
            kind=self.kind,
            state=self.state,
            health=health,
            health_reason=reason,
            last_heartbeat=self.last_heartbeat,
            pid=self.pid,
            cpu_percent=self.cpu_percent,
            rss_bytes=self.rss_bytes,
            phase_id=phase_id if phase_id is not None else self.phase_id,
            current_task=self.current_task,
            progress=self.progress,
            message=self.message,
            restarts=self.restarts,
            started_at=self.started_at,
            labels=dict(self.labels),
            state_since=self.state_since,
            kpis=kpis,
        )


#: how a supervisor starts the message of what it found wrong around its agent, and how bad each is: the
#: message is the one field a supervisor writes that a judge of the row can read
HEALTH_CHECK_FAILED = "health check failed"
STORE_OUTAGE_NOTE = "the store was unavailable"
_SUPERVISOR_FINDINGS: tuple[tuple[str, Health], ...] = (
    (HEALTH_CHECK_FAILED, "unhealthy"),
    (STORE_OUTAGE_NOTE, "degraded"),
)


def compute_health(
    record: AgentRecord,
    now: float,
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
    *,
    errors_last_minute: int = 0,
    supervisor_alive: bool | None = None,
) -> tuple[Health, str | None]:
    """Judge one agent: its state first, then its supervisor, heartbeat age and recent error lines.

    The worst finding wins and carries the reason; findings of equal weight are joined with "; ".
    """
    if record.state == "failed":
        return "unhealthy", failure_reason(record)
    if record.state == "stopped":
        return "unknown", "stopped"
    if record.state == "paused":
        # A paused process is frozen and cannot report; staleness would be a false alarm.
        return "unknown", "paused"
    findings: list[tuple[Health, str]] = []
    if supervisor_alive is False and record.supervisor_pid is not None:
        gone = f"supervisor gone (pid {record.supervisor_pid})"
        if restarting_after_failure(record):
            gone += f" during a restart backoff ({failure_reason(record)})"
        findings.append(("unhealthy", gone))
    elif restarting_after_failure(record):
        # No process runs until the backoff ends, so no heartbeat is due: the failure is the finding, and
        # it stays one until a new incarnation runs (a crash loop is not a healthy agent that is starting).
        return "unhealthy", f"{failure_reason(record)}; restarting"
    elif record.kind == "process" and record.message:
        findings += [
            (health, record.message)
            for prefix, health in _SUPERVISOR_FINDINGS
            if record.message.startswith(prefix)
        ]
    reference = record.last_heartbeat if record.last_heartbeat is not None else record.started_at
    if reference is None:
        reference = record.registered_at
    age = max(0.0, now - reference)
    otel = record.kind == "otel"
    warn_s, crit_s = thresholds.telemetry_stale_s if otel else thresholds.heartbeat_stale_s
    # An agent waiting for a human often reports nothing until answered (a hook fires only on events):
    # its silence is the wait, not a fault, so staleness is not judged while it waits.
    if age >= warn_s and record.state != "waiting":
        sign = "telemetry" if otel else "heartbeat"
        what = f"no {sign} for" if record.last_heartbeat is not None else f"no {sign} yet after"
        findings.append(("unhealthy" if age >= crit_s else "degraded", f"{what} {int(age)} s"))
    warn_n, crit_n = thresholds.error_rate_per_min
    if errors_last_minute >= warn_n:
        plural = "error" if errors_last_minute == 1 else "errors"
        findings.append(
            (
                "unhealthy" if errors_last_minute >= crit_n else "degraded",
                f"{errors_last_minute} {plural} in the last minute",
            )
        )
    if not findings:
        if record.state == "unknown" or (record.state == "starting" and record.last_heartbeat is None):
            return "unknown", "starting" if record.state == "starting" else None
        return "healthy", None
    worst = max(_SEVERITY[health] for health, _ in findings)
    reasons = [reason for health, reason in findings if _SEVERITY[health] == worst]
    return ("unhealthy" if worst == 2 else "degraded"), "; ".join(reasons)


def describe_exit(code: int) -> str:
    """An exit status in words: "exited with code 3", "killed by SIGTERM"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def restarting_after_failure(record: AgentRecord) -> bool:
    """Whether a supervisor is waiting out its restart backoff: the agent failed and no process runs."""
    return record.state == "starting" and record.exit_code is not None


def failure_reason(record: AgentRecord) -> str:
    """Why a failed (or restarting) agent ended, from its exit status, else from what was recorded."""
    if record.exit_code is not None:
        return describe_exit(record.exit_code)
    return record.message or "failed"


def judges_supervisor(record: AgentRecord) -> bool:
    """Whether the supervisor's life matters now: only while the agent should be running under it."""
    return record.supervisor_pid is not None and record.state in LIVE_STATES


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (signal 0 probes without sending).

    A zombie does not count: it has exited and holds nothing, and only its parent's wait() is missing. A
    supervisor killed under a parent that has not reaped it yet is gone all the same."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return not _is_zombie(pid)  # it exists, it just belongs to someone else
    except OSError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False  # no /proc (not Linux) or already gone: signal 0 had the last word
    # the state follows the command name, which is in parentheses and may itself contain ") "
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


#: the ``agents`` columns :func:`record_from_row` reads, in its order (select them with AGENT_SELECT)
AGENT_COLUMNS = (
    "id",
    "name",
    "kind",
    "state",
    "pid",
    "supervisor_pid",
    "workspace",
    "command",
    "restart_policy",
    "health_url",
    "exit_code",
    "restarts",
    "registered_at",
    "started_at",
    "last_heartbeat",
    "heartbeats",
    "progress",
    "message",
    "current_task",
    "cpu_percent",
    "rss_bytes",
    "phase_id",
    "labels",
    "state_since",
)
AGENT_SELECT = f"SELECT {', '.join(AGENT_COLUMNS)} FROM agents"


def record_from_row(row: Any) -> AgentRecord:
    """Build an AgentRecord from a row of :data:`AGENT_SELECT`.

    Unpacked by position: looking columns up by name in an sqlite3.Row compares the name with every
    column, which made reading a 1,000-agent table most of a snapshot's cost."""
    (
        id_,
        name,
        kind,
        state,
        pid,
        supervisor_pid,
        workspace,
        command,
        restart_policy,
        health_url,
        exit_code,
        restarts,
        registered_at,
        started_at,
        last_heartbeat,
        heartbeats,
        progress,
        message,
        current_task,
        cpu_percent,
        rss_bytes,
        phase_id,
        labels,
        state_since,
    ) = row
    argv = loads(command)
    return AgentRecord(
        id=id_,
        name=name,
        kind=kind,
        state=state,
        pid=pid,
        supervisor_pid=supervisor_pid,
        workspace=workspace,
        command=tuple(argv) if argv is not None else None,
        restart_policy=restart_policy,
        health_url=health_url,
        exit_code=exit_code,
        restarts=restarts,
        registered_at=registered_at,
        started_at=started_at,
        last_heartbeat=last_heartbeat,
        heartbeats=heartbeats,
        progress=progress,
        message=message,
        current_task=current_task,
        cpu_percent=cpu_percent,
        rss_bytes=rss_bytes,
        phase_id=phase_id,
        labels=loads(labels, {}),
        state_since=state_since,
    )
