"""``fleetdeck status``: every node polled once, its alerts, one line each; the exit code is the worst.

0 ok, 1 warning, 2 critical, 3 unreachable (a node that did not answer outranks everything: a script
cannot call a fleet fine when it could not see part of it).

Alerts an operator acknowledged or snoozed in the console still count here. Acks and snoozes are one
person's triage, kept in their own state dir; a cron job or CI gate asking "is the fleet healthy?" must get
the fleet's condition, not be silenced by someone's snooze.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.model import LogRecord, health_count
from console.core.alerts import (
    ERROR_WINDOW_S,
    Alert,
    kpi_alerts,
    node_alerts,
    recent_error_counts,
    sort_alerts,
)
from console.core.config import Config
from console.core.node_link import NodeLink

EXIT_BY_STATE = {"ok": 0, "warning": 1, "critical": 2, "unreachable": 3}
POLL_TIMEOUT_S = 10.0
LOGS_TIMEOUT_S = 5.0  # the error-rate rule is worth a short wait, not a hung cron job


@dataclass
class NodeStatus:
    name: str
    environment: str
    state: str  # ok | warning | critical | unreachable
    error: str | None = None
    agents_total: int = 0  # every agent the node lists, the dead included
    agents_healthy: int = 0
    gpus: int = 0
    alerts: list[Alert] = field(default_factory=list)
    agents_dead: int = 0  # history, counted apart (backends.model.health_count)
    # whether the node's KPI history judged how long a breach held (else: the snapshot alone, see kpi_alerts)
    kpi_history: bool = True

    @property
    def agents_alive(self) -> int:
        return self.agents_total - self.agents_dead

    def line(self) -> str:
        if self.state == "unreachable":
            return f"{self.name}: UNREACHABLE — {self.error}"
        if self.agents_dead:
            health = (
                f"{self.agents_healthy}/{self.agents_alive} alive agents healthy · {self.agents_dead} dead"
            )
        else:
            health = f"{self.agents_healthy}/{self.agents_total} agents healthy"
        counts = f"{health}, {self.gpus} GPUs"
        crit = sum(1 for a in self.alerts if a.severity == "critical")
        warn = len(self.alerts) - crit
        alerts = f"{crit} critical, {warn} warning"
        return f"{self.name} ({self.environment}): {self.state.upper()} — {counts}, {alerts}"


@dataclass
class StatusReport:
    nodes: list[NodeStatus]

    @property
    def state(self) -> str:
        return max((n.state for n in self.nodes), key=EXIT_BY_STATE.__getitem__, default="ok")

    @property
    def exit_code(self) -> int:
        return EXIT_BY_STATE[self.state]

    def lines(self) -> list[str]:
        out = []
        for node in self.nodes:
            out.append(node.line())
            out.extend(f"  {alert.line()}" for alert in node.alerts)
        out.append(f"fleet: {self.state.upper()}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "exit_code": self.exit_code,
            "nodes": [
                {
                    "name": n.name,
                    "environment": n.environment,
                    "state": n.state,
                    "error": n.error,
                    "agents": {
                        "total": n.agents_total,
                        "healthy": n.agents_healthy,
                        "alive": n.agents_alive,
                        "dead": n.agents_dead,
                    },
                    "gpus": n.gpus,
                    "kpi_hold": "judged from the node's KPI history" if n.kpi_history else "unknown",
                    "alerts": [
                        {
                            "severity": a.severity,
                            "subject": a.subject,
                            "label": a.shown_subject,
                            "rule": a.rule,
                            "reason": a.reason,
                            "since": a.since,
                        }
                        for a in n.alerts
                    ],
                }
                for n in self.nodes
            ],
        }


async def fleet_status(links: Sequence[NodeLink], config: Config, clock: Callable[[], float]) -> StatusReport:
    await asyncio.gather(*(link.poll(timeout=POLL_TIMEOUT_S) for link in links))
    now = clock()
    errors = await asyncio.gather(*(_recent_errors(link, now) for link in links))
    nodes = []
    for link, error_counts in zip(links, errors, strict=True):
        snap = link.snapshot
        if snap is None:
            nodes.append(NodeStatus(link.name, link.environment, "unreachable", error=link.error))
            continue
        alerts = node_alerts(snap, config.thresholds, now, error_counts, name=link.name)
        # KPI breaches are judged over the node's own history (NodeLink.poll fetched it, longer than any
        # rule's for_s); a node that keeps none, or failed to hand it over, is judged on its snapshot
        # alone, and says so: one snapshot cannot tell how long a figure has been past a line
        kpi_history_known = link.kpi_history_read
        history = link.kpis if kpi_history_known else None
        alerts = sort_alerts(alerts + kpi_alerts(snap, config.kpis, history, now, name=link.name))
        alerts += await _interrupted_rollback(link)
        severities = {a.severity for a in alerts}
        state = "critical" if "critical" in severities else ("warning" if severities else "ok")
        count = health_count(snap.agents)
        nodes.append(
            NodeStatus(
                link.name,
                link.environment,
                state,
                agents_total=len(snap.agents),
                agents_healthy=count.healthy,
                gpus=len(snap.gpus),
                alerts=alerts,
                agents_dead=count.dead,
                kpi_history=kpi_history_known,
            )
        )
    for link in links:
        await link.backend.close()
    return StatusReport(nodes)


async def _interrupted_rollback(link: NodeLink) -> list[Alert]:
    """A rollback left half-way is critical: workspaces may be half-restored and agents paused."""
    try:
        notice = await link.backend.interrupted_rollback()
    except Exception:  # a node that cannot tell is judged on the rest
        return []
    return [Alert("critical", link.name, "node", notice, rule="rollback-interrupted")] if notice else []


async def _recent_errors(link: NodeLink, now: float) -> dict[str, int] | None:
    """Error lines per source in the last minute, for the error-rate rule; None (rule skipped) when the
    node has no logs or does not hand them over in time: the snapshot's alerts must not wait on them."""
    if link.snapshot is None or not link.backend.supports("logs"):
        return None

    async def recent() -> list[LogRecord]:
        # Only the last minute is kept while streaming: a node may hold thousands of older lines.
        return [r async for r in link.backend.logs(since_seq=0, follow=False) if r.ts > now - ERROR_WINDOW_S]

    try:
        records = await asyncio.wait_for(recent(), LOGS_TIMEOUT_S)
    except asyncio.CancelledError:
        raise
    except Exception:  # a log stream that fails must not turn a status check into a crash
        return None
    return recent_error_counts(records, now)
