"""Alerts: the thresholds of the config applied to a node's snapshot.

Pure functions of (snapshot, thresholds, now), so the console, `fleetdeck status` and the tests all agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from backends.model import NodeSnapshot
from console.config import Thresholds

Severity = Literal["warning", "critical"]
SEVERITY_RANK = {"critical": 0, "warning": 1}


@dataclass(frozen=True)
class Alert:
    severity: Severity
    node: str
    subject: str  # "agent:coder-07", "gpu:3", "phase:pilot", "host"
    reason: str
    since: float | None = None

    def line(self) -> str:
        mark = "✖" if self.severity == "critical" else "▲"
        return f"{mark} {self.severity:<8} {self.node} {self.subject}: {self.reason}"


def _grade(value: float | None, levels: Sequence[float]) -> Severity | None:
    if value is None:
        return None
    warning, critical = levels[0], levels[1]
    if value >= critical:
        return "critical"
    if value >= warning:
        return "warning"
    return None


def node_alerts(snapshot: NodeSnapshot, thresholds: Thresholds, now: float) -> list[Alert]:
    node = snapshot.node.name
    alerts: list[Alert] = []

    def add(severity: Severity | None, subject: str, reason: str, since: float | None = None) -> None:
        if severity is not None:
            alerts.append(Alert(severity, node, subject, reason, since))

    for gpu in snapshot.gpus:
        add(
            _grade(gpu.temperature_c, thresholds.gpu_temp_c),
            f"gpu:{gpu.index}",
            f"temperature {gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else "",
        )
        if gpu.mem_used is not None and gpu.mem_total:
            pct = 100.0 * gpu.mem_used / gpu.mem_total
            add(_grade(pct, thresholds.gpu_mem_percent), f"gpu:{gpu.index}", f"memory {pct:.0f}% used")
    if snapshot.gpu_status.status == "error":
        add("warning", "gpu", f"GPU metrics failed: {snapshot.gpu_status.reason or 'unknown error'}")
    system = snapshot.system
    if system.mem_used is not None and system.mem_total:
        pct = 100.0 * system.mem_used / system.mem_total
        add(_grade(pct, thresholds.host_mem_percent), "host", f"memory {pct:.0f}% used")
    for agent in snapshot.agents:
        subject = f"agent:{agent.id}"
        if agent.state == "failed":
            add("critical", subject, agent.health_reason or agent.message or "agent failed")
        elif agent.health == "unhealthy":
            add("critical", subject, agent.health_reason or "unhealthy")
        elif agent.health == "degraded":
            add("warning", subject, agent.health_reason or "degraded")
        if agent.last_heartbeat is not None and agent.state in ("running", "idle", "starting"):
            age = now - agent.last_heartbeat
            severity = _grade(age, thresholds.heartbeat_stale_s)
            if severity and agent.health != "unhealthy":
                add(severity, subject, f"no heartbeat for {age:.0f} s", agent.last_heartbeat)
        add(_grade(agent.restarts, thresholds.agent_restarts), subject, f"restarted {agent.restarts} times")
    for phase in snapshot.phases:
        subject = f"phase:{phase.id}"
        if phase.gate.decision == "no-go" and phase.status in ("active", "blocked"):
            add("warning", subject, "gate NO-GO: " + ("; ".join(phase.gate.reasons) or "criteria failing"))
        if phase.due_at is not None and phase.due_at < now and phase.status not in ("done", "failed"):
            add("warning", subject, f"past its due date by {(now - phase.due_at) / 3600:.0f} h", phase.due_at)
        if phase.status == "failed":
            add("critical", subject, "phase failed")
    return sort_alerts(alerts)


def sort_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (SEVERITY_RANK[a.severity], a.node, a.subject))


def worst(alerts: Iterable[Alert]) -> Severity | None:
    severities = {a.severity for a in alerts}
    return "critical" if "critical" in severities else ("warning" if severities else None)
