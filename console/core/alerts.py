"""Alerts: the thresholds of the config applied to a node's snapshot (and its recent error logs).

Pure functions of (snapshot, thresholds, now[, error counts]), so the console, `fleetdeck status` and the
tests all agree. Tracking alerts over time (since-when, flapping, acks, snoozes) is alert_book's job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Reversible, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from backends.kpis import format_value
from backends.model import Agent, LogRecord, NodeSnapshot
from console.core.config import Thresholds
from console.core.kpi_history import Breach, KpiHistory
from console.core.kpi_rules import COUNTER_UNIT, KpiRule, KpiSeverity, Limits, RuleBook, rule_book

if TYPE_CHECKING:
    from console.core.node_link import NodeLink

Severity = Literal["warning", "critical"]
SEVERITY_RANK = {"critical": 0, "warning": 1}
# Rules that say a person is needed, not that something is wrong: an agent waiting for input or an approval.
# They come first in the inbox whatever their severity (the one who can unblock it is reading), while
# their severity, a warning, is what `fleetdeck status` counts: waiting is never a critical exit.
NEEDS_YOU_RULES: Final = frozenset({"waiting"})
ERROR_WINDOW_S: Final = 60.0  # the error-log rate is counted over one minute, so a count is a per-minute rate
ERROR_LEVELS: Final = frozenset({"error", "critical"})
ENDED_PHASE: Final = frozenset({"done", "failed", "stopped"})  # a phase that is over cannot be overdue
NODE_SOURCE: Final = "node"  # LogRecord.source for the node's own lines, as opposed to an agent id
ID_SHOWN: Final = 8  # characters of an agent's id that tell two of the same name apart


@dataclass(frozen=True)
class Alert:
    severity: Severity
    node: str
    subject: str  # "agent:coder-07", "gpu:3", "gpu", "phase:pilot", "host", "node"
    reason: str
    since: float | None = None  # when the condition began, where the data says so (a last heartbeat)
    # Which rule fired: with node and subject it names the alert across refreshes, while the reason's
    # numbers ("no heartbeat for 74 s") change every second.
    rule: str = "other"
    # the subject as a person reads it, where that is not its id: "agent:planner" for a Ray actor whose id
    # is 32 hex digits (see agent_labels); the subject stays the id, which the key and navigation use
    label: str | None = None

    @property
    def key(self) -> str:
        """A stable id, ``node/subject/rule``; node and rule names never hold a "/", so it splits back."""
        return alert_key(self.node, self.subject, self.rule)

    @property
    def shown_subject(self) -> str:
        return self.label or self.subject

    @property
    def needs_you(self) -> bool:
        return self.rule in NEEDS_YOU_RULES

    def line(self) -> str:
        if self.needs_you:
            return f"⏸ {'waiting':<8} {self.node} {self.shown_subject}: {self.reason}"
        mark = "✖" if self.severity == "critical" else "▲"
        return f"{mark} {self.severity:<8} {self.node} {self.shown_subject}: {self.reason}"


def attention_rank(severity: str, rule: str) -> int:
    """Where an alert goes in a list: what needs a person first, then critical, then warning."""
    return 0 if rule in NEEDS_YOU_RULES else 1 + SEVERITY_RANK.get(severity, len(SEVERITY_RANK))


def agent_labels(agents: Iterable[Agent]) -> dict[str, str]:
    """How each agent is named to a person, by id: its name, with the start of its id after it only where
    another agent has the same name (a Ray actor made again under a name keeps none of the old one's id)."""
    agents = list(agents)
    seen: dict[str, int] = {}
    for agent in agents:
        seen[agent.name] = seen.get(agent.name, 0) + 1
    return {
        a.id: a.name if a.name and seen[a.name] == 1 else f"{a.name or 'agent'} ({a.id[:ID_SHOWN]})"
        for a in agents
    }


def alert_key(node: str, subject: str, rule: str) -> str:
    return f"{node}/{subject}/{rule}"


def split_key(key: str) -> tuple[str, str, str]:
    """(node, subject, rule) of an :func:`alert_key`; a subject may itself hold a "/"."""
    node, rest = key.split("/", 1)
    subject, rule = rest.rsplit("/", 1)
    return node, subject, rule


def _grade(value: float | None, levels: Sequence[float]) -> Severity | None:
    if value is None:
        return None
    warning, critical = levels[0], levels[1]
    if value >= critical:
        return "critical"
    if value >= warning:
        return "warning"
    return None


def node_alerts(
    snapshot: NodeSnapshot,
    thresholds: Thresholds,
    now: float,
    error_counts: Mapping[str, int] | None = None,
    *,
    name: str | None = None,
) -> list[Alert]:
    """Every alert the snapshot warrants at ``now``.

    ``error_counts``: error and critical log lines per source over the last minute (see
    :func:`recent_error_counts`); None when the logs are not known, which skips the error-rate rule. The
    heartbeat and error-rate rules judge only what the node's own health leaves out
    (``NodeInfo.health_checks``), so one condition is one alert with the node's one count.
    ``name``: the node's name as configured, which the alerts carry (default: the name it reports).

    A dead agent (:attr:`~backends.model.Agent.dead`, a Ray actor Ray reports DEAD) is history: it raises
    none. A failed phase's alert quotes why it failed (``Phase.status_reason``) and dates from its end.
    """
    node = name or snapshot.node.name
    # A condition the node already judged into its agents' health is its alert alone (agent_health): the
    # console's own rule would count it again from another view (its log buffer, its clock) and say it twice.
    judged_by_node = snapshot.node.health_checks
    agent_ids = {agent.id for agent in snapshot.agents}
    alerts: list[Alert] = []

    labels: dict[str, str] | None = None  # made only when an agent has an alert: 5,000 agents mostly don't

    def add(
        severity: Severity | None, subject: str, rule: str, reason: str, since: float | None = None
    ) -> None:
        nonlocal labels
        if severity is None:
            return
        label = None
        if subject.startswith("agent:"):
            labels = labels if labels is not None else agent_labels(snapshot.agents)
            agent_id = subject.split(":", 1)[1]
            shown = labels.get(agent_id, agent_id)
            label = f"agent:{shown}" if shown != agent_id else None
        alerts.append(Alert(severity, node, subject, reason, since, rule, label))

    for gpu in snapshot.gpus:
        add(
            _grade(gpu.temperature_c, thresholds.gpu_temp_c),
            f"gpu:{gpu.index}",
            "gpu_temp",
            f"temperature {gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else "",
        )
        if gpu.mem_used is not None and gpu.mem_total:
            pct = 100.0 * gpu.mem_used / gpu.mem_total
            add(
                _grade(pct, thresholds.gpu_mem_percent),
                f"gpu:{gpu.index}",
                "gpu_mem",
                f"memory {pct:.0f}% used",
            )
    if snapshot.gpu_status.status == "error":
        reason = f"GPU metrics failed: {snapshot.gpu_status.reason or 'unknown error'}"
        add("warning", "gpu", "gpu_status", reason)
    system = snapshot.system
    if system.mem_used is not None and system.mem_total:
        pct = 100.0 * system.mem_used / system.mem_total
        add(_grade(pct, thresholds.host_mem_percent), "host", "host_mem", f"memory {pct:.0f}% used")
    for agent in snapshot.agents:
        if agent.dead:
            continue
        subject = f"agent:{agent.id}"
        # One rule for failed/unhealthy/degraded, so degraded -> unhealthy is one alert rising in severity
        # (which takes back an acknowledgement) rather than one alert clearing and another starting.
        if agent.state == "failed":
            add("critical", subject, "agent_health", agent.health_reason or agent.message or "agent failed")
        elif agent.health == "unhealthy":
            add("critical", subject, "agent_health", agent.health_reason or "unhealthy")
        elif agent.health == "degraded":
            add("warning", subject, "agent_health", agent.health_reason or "degraded")
        if agent.state == "waiting":
            asked = f"needs you: {agent.message}" if agent.message else "needs you"
            add("warning", subject, "waiting", asked, agent.state_since)
        if (
            "heartbeat" not in judged_by_node
            and agent.last_heartbeat is not None
            and agent.state in ("running", "idle", "starting")
        ):
            age = now - agent.last_heartbeat
            otel = agent.kind == "otel"  # it speaks when its SDK exports, not on a heartbeat's beat
            severity = _grade(age, thresholds.telemetry_stale_s if otel else thresholds.heartbeat_stale_s)
            if severity and agent.health != "unhealthy":
                sign = "telemetry" if otel else "heartbeat"
                add(severity, subject, "heartbeat", f"no {sign} for {age:.0f} s", agent.last_heartbeat)
        add(
            _grade(agent.restarts, thresholds.agent_restarts),
            subject,
            "restarts",
            f"restarted {agent.restarts} times",
        )
    for source, count in sorted((error_counts or {}).items()):
        if "error_rate" in judged_by_node and source in agent_ids:
            continue  # the node's health counted this agent's lines: it has them all, a log buffer may not
        subject = NODE_SOURCE if source == NODE_SOURCE else f"agent:{source}"
        plural = "s" if count != 1 else ""
        add(
            _grade(count, thresholds.error_log_rate_per_min),
            subject,
            "error_rate",
            f"{count} error line{plural} in the last minute",
        )
    for phase in snapshot.phases:
        subject = f"phase:{phase.id}"
        if phase.gate.decision == "no-go" and phase.status in ("active", "blocked"):
            reason = "gate NO-GO: " + ("; ".join(phase.gate.reasons) or "criteria failing")
            add("warning", subject, "gate_no_go", reason)
        if phase.due_at is not None and phase.due_at < now and phase.status not in ENDED_PHASE:
            overdue = f"past its due date by {(now - phase.due_at) / 3600:.0f} h"
            add("warning", subject, "phase_overdue", overdue, phase.due_at)
        if phase.status == "failed":
            why = f"phase failed: {phase.status_reason}" if phase.status_reason else "phase failed"
            add("critical", subject, "phase_failed", why, phase.finished_at)
    return sort_alerts(alerts)


def link_alerts(link: NodeLink, thresholds: Thresholds, now: float) -> list[Alert]:
    """What the console knows of one node, judged: its last snapshot, its recent errors, its reachability.

    The last good snapshot of a node that stopped answering still counts: what was wrong then is the best
    knowledge there is, and the unreachable alert above it says how far to trust it.
    """
    alerts: list[Alert] = []
    if link.snapshot is not None:
        counts = recent_error_counts(link.logs, now)
        alerts = node_alerts(link.snapshot, thresholds, now, counts, name=link.name)
        found = kpi_alerts(link.snapshot, link.kpi_rules, link.kpis, now, name=link.name)
        if found:
            alerts = sort_alerts(alerts + found)
    if link.error is not None:
        alerts.insert(0, unreachable_alert(link.name, link.error))
    return alerts


def unreachable_alert(node: str, error: str) -> Alert:
    """A node the console cannot reach: critical, since nothing else about it can be trusted."""
    return Alert("critical", node, NODE_SOURCE, f"unreachable: {error}", rule="unreachable")


def recent_error_counts(
    records: Reversible[LogRecord], now: float, window_s: float = ERROR_WINDOW_S
) -> dict[str, int]:
    """Error and critical lines per source with a timestamp in ``(now - window_s, now]``.

    Walks the buffer newest first and stops at the first older line: records come in ``seq`` order,
    which is time order, so a 10 000-line buffer costs only the last minute's lines.
    """
    counts: dict[str, int] = {}
    cutoff = now - window_s
    for record in reversed(records):
        if record.ts <= cutoff:
            break
        if record.ts <= now and record.level in ERROR_LEVELS:
            counts[record.source] = counts.get(record.source, 0) + 1
    return counts


def sort_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (attention_rank(a.severity, a.rule), a.node, a.subject))


def worst(alerts: Iterable[Alert]) -> Severity | None:
    severities = {a.severity for a in alerts}
    return "critical" if "critical" in severities else ("warning" if severities else None)


# --- KPIs ---------------------------------------------------------------------------------------------
# KPI breaches as alerts: each agent's latest figures against its rules, raised once a breach has held.
#
# One alert per agent and KPI (rule ``kpi:NAME``), so a figure going from warning to critical is one alert
# rising in severity. A breach must have held ``for_s`` by the figures' own times (the first point past the
# line to the newest), never by the clock: an agent that reported one slow figure and went quiet has not
# shown a slow minute. Critical needs the critical line held ``for_s``; short of that, the warning line held
# ``for_s`` makes a warning.
#
# Without a history (``history=None``: a node that keeps none, or failed to hand it over, asked once by
# ``fleetdeck status``) how long a figure has been past a line is unknown. A rule with ``for_s`` 0 judges
# the figure as it is; any other rule raises at most a warning that says the hold time is unknown: the
# figure is over the line now, which a cron job should hear, but one sample cannot page anyone as critical.

HOLD_UNKNOWN = "held time unknown: no KPI history from the node"


def kpi_alerts(
    snapshot: NodeSnapshot,
    rules: Sequence[KpiRule] | RuleBook,
    history: KpiHistory | None,
    now: float,
    *,
    name: str | None = None,
) -> list[Alert]:
    """The KPI alerts of ``snapshot`` (which ``history`` has observed) at ``now``.

    ``rules``: the config's ``kpis`` (the built-in rules fill in the rest); ``name``: the node's name as
    configured. Dead agents raise none. Figures a rule cannot compare (another unit family) are skipped.
    """
    del now  # a breach's hold is measured by its figures' times (see the module's doc)
    node = name or snapshot.node.name
    book = rule_book(rules)
    if history is not None:
        breaches = history.breaches(snapshot, book, node)
        if breaches is not None:
            return _breach_alerts(snapshot, breaches, node)
    alerts: list[Alert] = []
    labels: dict[str, str] | None = None  # made only when an agent has an alert
    uniform = book.uniform
    limits_of = book.limits
    for agent in snapshot.agents:
        kpis = agent.kpis
        if not kpis or agent.dead:
            continue
        agent_rules = uniform if uniform is not None else book.for_agent(node, agent.labels)
        for kpi in kpis:
            rule = agent_rules.get(kpi.name)
            if rule is None:
                continue
            counter = kpi.kind == "counter"
            value = kpi.rate_per_s if counter else kpi.value
            if value is None:
                continue
            unit = COUNTER_UNIT if counter else kpi.unit
            limits = limits_of(rule, unit)
            if limits is None:
                continue
            # Inline grading: this runs for every judged figure of every agent at every refresh.
            if limits.above:
                if value < limits.warn:
                    continue
            elif value > limits.warn:
                continue
            found = _judge(agent.id, kpi.name, value, limits, history)
            if found is None:
                continue
            severity, since, note = found
            if labels is None:
                labels = agent_labels(snapshot.agents)
            shown = labels.get(agent.id, agent.id)
            reason = kpi_reason(kpi.name, value, unit, limits, severity, counter=counter)
            if note:
                reason += f" ({note})"
            alerts.append(
                Alert(
                    severity,
                    node,
                    f"agent:{agent.id}",
                    reason,
                    since,
                    f"kpi:{kpi.name}",
                    f"agent:{shown}" if shown != agent.id else None,
                )
            )
    return sort_alerts(alerts)


def _breach_alerts(snapshot: NodeSnapshot, breaches: Iterable[Breach], node: str) -> list[Alert]:
    """The alerts of the series the history judged past a line as it took ``snapshot``: what the walk over
    every figure in kpi_alerts gives, from the few past a line, in the same order."""
    found: list[tuple[int, str, int, Alert]] = []
    labels: dict[str, str] | None = None
    for breach in breaches:
        limits = breach.limits
        if breach.crit_since is not None and breach.newest - breach.crit_since >= limits.for_s:
            severity: KpiSeverity = "critical"
            since = breach.crit_since
        elif breach.newest - breach.warn_since >= limits.for_s:
            severity, since = "warning", breach.warn_since
        else:
            continue
        if labels is None:
            labels = agent_labels(snapshot.agents)
        agent_id = breach.agent.id
        shown = labels.get(agent_id, agent_id)
        reason = kpi_reason(breach.name, breach.value, breach.unit, limits, severity, counter=breach.counter)
        subject = f"agent:{agent_id}"
        alert = Alert(
            severity,
            node,
            subject,
            reason,
            since,
            f"kpi:{breach.name}",
            f"agent:{shown}" if shown != agent_id else None,
        )
        found.append((SEVERITY_RANK[severity], subject, breach.index, alert))
    found.sort(key=lambda item: item[:3])
    return [alert for *_, alert in found]


def _judge(
    agent_id: str, name: str, value: float, limits: Limits, history: KpiHistory | None
) -> tuple[KpiSeverity, float | None, str | None] | None:
    """(severity, since, note) of a figure past the warning line; None while it has not held."""
    now_severity = limits.grade(value)
    if history is None or history.latest(agent_id, name) is None:
        if limits.for_s == 0:
            return (now_severity, None, None) if now_severity else None
        return "warning", None, HOLD_UNKNOWN
    latest = history.latest(agent_id, name)
    assert latest is not None
    newest = latest[0]
    crit_since = history.breach_since(agent_id, name, limits, "critical")
    if crit_since is not None and newest - crit_since >= limits.for_s:
        return "critical", crit_since, None
    warn_since = history.breach_since(agent_id, name, limits, "warning")
    if warn_since is not None and newest - warn_since >= limits.for_s:
        return "warning", warn_since, None
    return None


def kpi_reason(
    name: str, value: float, unit: str, limits: Limits, severity: str, *, counter: bool = False
) -> str:
    """``latency_p95_ms 162 ms ≥ 150 ms critical threshold (warning 120 ms)``."""
    sign = "≥" if limits.above else "≤"
    line, other, other_name = (
        (limits.crit, limits.warn, "warning")
        if severity == "critical"
        else (limits.warn, limits.crit, "critical")
    )
    what = f"{name} rate" if counter else name
    return (
        f"{what} {format_value(value, unit)} {sign} {format_value(line, unit)} {severity} threshold"
        f" ({other_name} {format_value(other, unit)})"
    )
