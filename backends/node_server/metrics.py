"""``GET /metrics``: the node snapshot in the Prometheus text format (version 0.0.4).

The text is written directly from one snapshot (no registry, no per-sample objects: at 5,000 agents that
is about 93,000 samples, and prometheus-client's own collector path took over half a second for a third
of them). The route takes the snapshot from the shared cache and keeps the text with it, so a scrape costs
no backend call of its own and the text is built once per snapshot. Everything comes from that one
snapshot, so an agent that is gone from the fleet leaves no series behind.

Names follow Prometheus's naming guide and pass ``promtool check metrics``: base units in the name
(``_bytes``, ``_seconds``, ``_celsius``, ``_watts``), shares as 0-1 ``_ratio`` rather than percent, points
in time as ``_timestamp_seconds`` (UTC epoch) rather than ages that change on every scrape, and counters
with ``_total``. An enumeration (agent state and health, phase status, GPU driver status) is one 0/1 series
per possible value, exactly one of them 1, as kube-state-metrics does: the set of series does not change
when a value does, and ``== 1`` selects the current one. Per-agent series carry only the agent's id; its
name, kind and phase are on ``fleetdeck_agent_info``, to join on (``* on(agent) group_left(name)``).
No series is made per log line, task or message.

Unknown values (None) are left out rather than exported as 0: "no reading" and "zero" differ (a GPU at
0 °C would be an alarm). The README's "Prometheus metrics" section lists every family with its type and unit.

KPIs are exported as the agents report them, in their own unit (a ``unit`` label, not the name: one family
holds every KPI, ``latency_p95_ms`` in ms beside ``success_ratio``), with a counter's rate per second
beside it. Where the serving process judges KPIs by rules (the config's ``[[kpis]]`` and the built-in
ones), their lines for this node are exported too (:class:`KpiThreshold`, plain data handed in by the
serve command: backends never import the console), so an alert rule in Prometheus compares with the same
numbers the console judges by.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from backends.model import AgentState, GpuStatusKind, Health, NodeSnapshot, PhaseStatus, TaskStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_P = "fleetdeck_"

AGENT_STATES: tuple[str, ...] = get_args(AgentState)
HEALTHS: tuple[str, ...] = get_args(Health)
PHASE_STATUSES: tuple[str, ...] = get_args(PhaseStatus)
GPU_STATUSES: tuple[str, ...] = get_args(GpuStatusKind)
TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)


def _label(value: str) -> str:
    """A label value as the text format quotes it (backslash, double quote and newline escaped)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _number(value: float) -> str:
    if type(value) is int:
        return str(value)
    if math.isfinite(value):
        return repr(float(value))
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _ratio(percent: float | None) -> float | None:
    """Percent (0-100) as a 0-1 ratio; rounded so 40.4 % reads 0.404, not 0.40399999999999997."""
    return None if percent is None else round(percent / 100.0, 6)


def _enum_blocks(family: str, label: str, values: tuple[str, ...]) -> dict[str, list[str]]:
    """For each current value, one agent's lines of an enumeration family split around the agent's id:
    ``aid.join(blocks[current])`` is the whole block, written in one join (at 5,000 agents and 12 series
    each, formatting every line on its own was most of the scrape)."""
    blocks: dict[str, list[str]] = {}
    for current in values:
        pieces = [f'{_P}{family}{{agent="']
        for value in values:
            tail = f'",{label}="{value}"}} {1 if value == current else 0}\n'
            pieces.append(tail + (f'{_P}{family}{{agent="' if value != values[-1] else ""))
        blocks[current] = pieces
    return blocks


_AGENT_STATE_BLOCKS = _enum_blocks("agent_state", "state", AGENT_STATES)
_AGENT_HEALTH_BLOCKS = _enum_blocks("agent_health", "health", HEALTHS)


class _Text:
    """The exposition text, family by family; a family with no known sample is left out whole."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def family(self, name: str, kind: str, doc: str, lines: Iterable[str]) -> None:
        """``lines`` are the family's sample lines (each ``name{labels} value\\n``), already written."""
        body = "".join(lines)
        if body:
            self.parts.append(f"# HELP {_P}{name} {doc}\n# TYPE {_P}{name} {kind}\n{body}")

    def gauge(self, name: str, doc: str, value: float | None, labels: str = "") -> None:
        if value is not None:
            self.family(name, "gauge", doc, (f"{_P}{name}{labels} {_number(value)}\n",))

    def enum(self, name: str, doc: str, label: str, values: tuple[str, ...], current: str) -> None:
        """One series per possible value, 1 for ``current`` and 0 for the others."""
        self.family(
            name,
            "gauge",
            doc,
            (f'{_P}{name}{{{label}="{v}"}} {1 if v == current else 0}\n' for v in values),
        )

    def encode(self) -> bytes:
        return "".join(self.parts).encode("utf-8")


@dataclass(frozen=True, slots=True)
class KpiThreshold:
    """A KPI rule's lines as this node's agents are judged by them (without per-label overrides).
    ``unit``: the unit ``warn`` and ``crit`` are in; None when they are in each agent's own unit. A
    counter's lines are for its rate (a ``per_s``, ``per_min`` or ``per_hour`` unit)."""

    kpi: str
    warn: float
    crit: float
    direction: Literal["above", "below"]
    unit: str | None = None
    for_s: float = 0.0


def exposition(snap: NodeSnapshot, thresholds: Sequence[KpiThreshold] = ()) -> bytes:
    """The snapshot as Prometheus exposition text; ``thresholds``: the KPI rules this node is judged by."""
    out = _Text()
    node = snap.node
    node_labels = ",".join(
        f'{key}="{_label(value)}"'
        for key, value in (
            ("node", node.name),
            ("backend", node.backend),
            ("version", node.version or ""),
            ("hostname", node.hostname or ""),
            ("environment", node.environment),
            ("read_only", str(node.read_only).lower()),
        )
    )
    out.gauge(
        "node_info", "The node served here, always 1; its identity is in the labels.", 1, f"{{{node_labels}}}"
    )
    out.gauge(
        "node_observed_timestamp_seconds",
        "When the node took the snapshot these figures come from, in seconds since the Unix epoch.",
        snap.observed_at,
    )
    _host(out, snap)
    _gpus(out, snap)
    _agents(out, snap)
    _kpis(out, snap, thresholds)
    _work(out, snap)
    return out.encode()


def _host(out: _Text, snap: NodeSnapshot) -> None:
    system = snap.system
    out.gauge(
        "host_cpu_usage_ratio",
        "Share of the host's logical CPUs busy over the sampler's last interval, 0 to 1.",
        _ratio(system.cpu_percent),
    )
    out.gauge("host_cpus", "Logical CPUs of the host.", system.cpu_count)
    if system.load_avg is not None:
        load = system.load_avg
        out.family(
            "host_load_average",
            "gauge",
            "Host load average (runnable and uninterruptible tasks) over the period: 1m, 5m or 15m.",
            (
                f'{_P}host_load_average{{period="{period}"}} {_number(value)}\n'
                for period, value in (("1m", load.m1), ("5m", load.m5), ("15m", load.m15))
            ),
        )
    for name, doc, value in (
        ("host_memory_total_bytes", "Host physical memory, in bytes.", system.mem_total),
        (
            "host_memory_used_bytes",
            "Host memory in use, in bytes (as the console's memory alert counts).",
            system.mem_used,
        ),
        (
            "host_memory_available_bytes",
            "Host memory available to new work without swapping, in bytes.",
            system.mem_available,
        ),
        ("host_swap_total_bytes", "Host swap space, in bytes.", system.swap_total),
        ("host_swap_used_bytes", "Host swap in use, in bytes.", system.swap_used),
        (
            "host_disk_total_bytes",
            "Size of the filesystem holding the node's state, in bytes.",
            system.disk_total,
        ),
        (
            "host_disk_used_bytes",
            "Space used on the filesystem holding the node's state, in bytes.",
            system.disk_used,
        ),
        (
            "host_disk_available_bytes",
            "Space an unprivileged user may still write on the filesystem holding the node's state, in bytes "
            "(reserved blocks excluded; df's Use% is used / (used + available)).",
            system.disk_available,
        ),
    ):
        out.gauge(name, doc, value)
    if system.uptime_s is not None:
        # whole seconds: the snapshot's clock and the uptime are read a moment apart, and a boot time that
        # wobbled by milliseconds from scrape to scrape would look like a reboot to changes()
        out.gauge(
            "host_boot_timestamp_seconds",
            "When the host booted, in seconds since the Unix epoch.",
            round(snap.observed_at - system.uptime_s),
        )


def _gpus(out: _Text, snap: NodeSnapshot) -> None:
    out.enum(
        "gpu_driver_status",
        "Whether the node could read its GPUs: one series per status, 1 for the current one, 0 for others.",
        "status",
        GPU_STATUSES,
        snap.gpu_status.status,
    )
    labels = [
        f'{{gpu="{gpu.index}",uuid="{_label(gpu.uuid or "")}",name="{_label(gpu.name or "")}"}}'
        for gpu in snap.gpus
    ]
    gpus = snap.gpus
    for name, doc, values in (
        (
            "gpu_utilization_ratio",
            "Share of time the GPU was busy over the driver's last interval, 0 to 1.",
            [_ratio(g.util_percent) for g in gpus],
        ),
        ("gpu_memory_total_bytes", "GPU memory, in bytes.", [g.mem_total for g in gpus]),
        ("gpu_memory_used_bytes", "GPU memory in use, in bytes.", [g.mem_used for g in gpus]),
        (
            "gpu_temperature_celsius",
            "GPU core temperature, in degrees Celsius.",
            [g.temperature_c for g in gpus],
        ),
        ("gpu_power_watts", "GPU power draw, in watts.", [g.power_w for g in gpus]),
        ("gpu_power_limit_watts", "GPU power limit, in watts.", [g.power_limit_w for g in gpus]),
        (
            "gpu_fan_speed_ratio",
            "GPU fan speed as a share of its maximum, 0 to 1.",
            [_ratio(g.fan_percent) for g in gpus],
        ),
    ):
        out.family(
            name,
            "gauge",
            doc,
            [
                f"{_P}{name}{label} {_number(value)}\n"
                for label, value in zip(labels, values, strict=True)
                if value is not None
            ],
        )


def _agents(out: _Text, snap: NodeSnapshot) -> None:
    agents = snap.agents
    ids = [_label(agent.id) for agent in agents]
    out.family(
        "agent_info",
        "gauge",
        "An agent of the node, always 1: its name, kind and phase (empty when none) in the labels.",
        [
            f'{_P}agent_info{{agent="{aid}",name="{_label(a.name)}",kind="{a.kind}",'
            f'phase="{_label(a.phase_id or "")}"}} 1\n'
            for aid, a in zip(ids, agents, strict=True)
        ],
    )
    out.family(
        "agent_state",
        "gauge",
        "The agent's state: one series per possible state, 1 for the current one and 0 for the others.",
        [aid.join(_AGENT_STATE_BLOCKS[a.state]) for aid, a in zip(ids, agents, strict=True)],
    )
    out.family(
        "agent_health",
        "gauge",
        "The agent's health: one series per possible health, 1 for the current one and 0 for the others.",
        [aid.join(_AGENT_HEALTH_BLOCKS[a.health]) for aid, a in zip(ids, agents, strict=True)],
    )

    def per_agent(name: str, kind: str, doc: str, values: Iterable[float | None]) -> None:
        out.family(
            name,
            kind,
            doc,
            [
                f'{_P}{name}{{agent="{aid}"}} {_number(value)}\n'
                for aid, value in zip(ids, values, strict=True)
                if value is not None
            ],
        )

    per_agent(
        "agent_cpu_usage_ratio",
        "gauge",
        "CPU the agent's processes use, in cores: 1 is one core busy, above 1 on several.",
        (_ratio(a.cpu_percent) for a in agents),
    )
    per_agent(
        "agent_resident_memory_bytes",
        "gauge",
        "Resident memory of the agent's processes, in bytes.",
        (a.rss_bytes for a in agents),
    )
    per_agent(
        "agent_gpu_memory_used_bytes",
        "gauge",
        "GPU memory the agent's processes use, in bytes.",
        (a.gpu_mem_bytes for a in agents),
    )
    out.family(
        "agent_restarts_total",
        "counter",
        "Times the agent was restarted.",
        [
            f'{_P}agent_restarts_total{{agent="{aid}"}} {a.restarts}\n'
            for aid, a in zip(ids, agents, strict=True)
        ],
    )
    per_agent(
        "agent_progress_ratio",
        "gauge",
        "The agent's progress on its current work, 0 to 1.",
        (a.progress for a in agents),
    )
    per_agent(
        "agent_heartbeat_timestamp_seconds",
        "gauge",
        "When the agent last reported it was alive, in seconds since the Unix epoch.",
        (a.last_heartbeat for a in agents),
    )
    per_agent(
        "agent_start_timestamp_seconds",
        "gauge",
        "When the agent started, in seconds since the Unix epoch.",
        (a.started_at for a in agents),
    )
    by_state = dict.fromkeys(AGENT_STATES, 0)
    by_health = dict.fromkeys(HEALTHS, 0)
    for agent in agents:
        by_state[agent.state] += 1
        by_health[agent.health] += 1
    out.family(
        "agents_by_state",
        "gauge",
        "Agents in each state, zeros included.",
        (f'{_P}agents_by_state{{state="{s}"}} {n}\n' for s, n in by_state.items()),
    )
    out.family(
        "agents_by_health",
        "gauge",
        "Agents in each health, zeros included.",
        (f'{_P}agents_by_health{{health="{h}"}} {n}\n' for h, n in by_health.items()),
    )


def _kpis(out: _Text, snap: NodeSnapshot, thresholds: Sequence[KpiThreshold]) -> None:
    # Escaped like every label: a Kpi built in code (the demo fleet, the Ray backend) has no pattern check,
    # and on the wire only a name's length is checked, so a quote or newline there must not break the text.
    with_kpis = [(_label(a.id), a.kpis) for a in snap.agents if a.kpis]
    out.family(
        "agent_kpi",
        "gauge",
        "The latest figure of a KPI the agent reports, in the unit the unit label names (a counter's "
        "running total).",
        [
            f'{_P}agent_kpi{{agent="{aid}",kpi="{_label(k.name)}",unit="{_label(k.unit)}"}} '
            f"{_number(k.value)}\n"
            for aid, kpis in with_kpis
            for k in kpis
        ],
    )
    out.family(
        "agent_kpi_rate_per_second",
        "gauge",
        "A counter KPI's recent increase per second (a reset counted as a new start), in its unit per "
        "second.",
        [
            f'{_P}agent_kpi_rate_per_second{{agent="{aid}",kpi="{_label(k.name)}",unit="{_label(k.unit)}"}} '
            f"{_number(k.rate_per_s)}\n"
            for aid, kpis in with_kpis
            for k in kpis
            if k.rate_per_s is not None
        ],
    )
    lines, waits = [], []
    for rule in thresholds:
        unit = f',unit="{_label(rule.unit)}"' if rule.unit else ""
        for level, value in (("warning", rule.warn), ("critical", rule.crit)):
            lines.append(
                f'{_P}kpi_threshold{{kpi="{_label(rule.kpi)}",level="{level}",'
                f'direction="{rule.direction}"{unit}}} {_number(value)}\n'
            )
        waits.append(f'{_P}kpi_threshold_for_seconds{{kpi="{_label(rule.kpi)}"}} {_number(rule.for_s)}\n')
    out.family(
        "kpi_threshold",
        "gauge",
        "A KPI rule's warning or critical line for this node, in the unit the unit label names (none: "
        "each agent's own); direction says which side is bad, reaching the line counts as crossing it.",
        lines,
    )
    out.family(
        "kpi_threshold_for_seconds",
        "gauge",
        "How long a KPI's figure must stay past a line before the console alerts, in seconds.",
        waits,
    )


def _work(out: _Text, snap: NodeSnapshot) -> None:
    phases = snap.phases
    ids = [_label(phase.id) for phase in phases]
    out.family(
        "phase_info",
        "gauge",
        "A phase of the node's plan, always 1: its name and its place in the plan in the labels.",
        [
            f'{_P}phase_info{{phase="{pid}",name="{_label(p.name)}",order="{p.order}"}} 1\n'
            for pid, p in zip(ids, phases, strict=True)
        ],
    )
    out.family(
        "phase_status",
        "gauge",
        "The phase's status: one series per possible status, 1 for the current one and 0 for the others.",
        [
            f'{_P}phase_status{{phase="{pid}",status="{s}"}} {1 if s == p.status else 0}\n'
            for pid, p in zip(ids, phases, strict=True)
            for s in PHASE_STATUSES
        ],
    )
    out.family(
        "phase_progress_ratio",
        "gauge",
        "The phase's progress, 0 to 1.",
        [
            f'{_P}phase_progress_ratio{{phase="{pid}"}} {_number(p.progress)}\n'
            for pid, p in zip(ids, phases, strict=True)
            if p.progress is not None
        ],
    )
    by_task = dict.fromkeys(TASK_STATUSES, 0)
    for task in snap.tasks:
        by_task[task.status] += 1
    out.family(
        "tasks_by_status",
        "gauge",
        "Dispatched tasks in each status, of those the snapshot lists (the most recent), zeros included.",
        (f'{_P}tasks_by_status{{status="{s}"}} {n}\n' for s, n in by_task.items()),
    )
    out.gauge("checkpoints", "Checkpoints the snapshot lists.", len(snap.checkpoints))


class MetricsExporter:
    """What the app renders ``/metrics`` with: :meth:`render` is a pure function of the snapshot (and of
    the KPI rules the exporter was made with)."""

    def __init__(self, kpi_thresholds: Sequence[KpiThreshold] = ()) -> None:
        self.kpi_thresholds = tuple(kpi_thresholds)

    def render(self, snap: NodeSnapshot) -> bytes:
        return exposition(snap, self.kpi_thresholds)
