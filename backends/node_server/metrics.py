"""``GET /metrics``: the node snapshot as Prometheus gauges.

A custom Collector on a registry of this app's own (not prometheus-client's global one, which would mix
in this process's Python metrics and clash between two apps in one test process). It turns one snapshot
into families; the route takes that snapshot from the shared cache, so a scrape costs no backend call
of its own and the text is built once per snapshot.

Unknown values (None) are left out rather than exported as 0: "no reading" and "zero" differ (a GPU at
0 °C would be an alarm). Enumerations (agent state and health, phase status, GPU driver status) are
exported as one series per thing with the value in a label and the value 1, so a query can both select
and count them; the ``*_by_state``/``*_by_health`` families give ready counts, including zeros, since a
count of zero agents is a known value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import get_args

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector, CollectorRegistry

from backends.model import AgentState, Health, NodeSnapshot, TaskStatus

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_P = "fleetdeck_"


class _Families:
    """Builds gauge families by name, adding only the samples whose value is known."""

    def __init__(self) -> None:
        self._families: dict[str, GaugeMetricFamily] = {}

    def add(
        self, name: str, doc: str, labels: Sequence[str], values: Sequence[str], value: float | None
    ) -> None:
        if value is None:
            return
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = GaugeMetricFamily(_P + name, doc, labels=list(labels))
        family.add_metric(list(values), float(value))

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._families.values())


def snapshot_families(snap: NodeSnapshot) -> Iterator[Metric]:
    f = _Families()
    node = snap.node
    f.add(
        "node_info",
        "The node served here (value 1); its identity is in the labels.",
        ("node", "backend", "version", "hostname", "environment", "read_only"),
        (
            node.name,
            node.backend,
            node.version or "",
            node.hostname or "",
            node.environment,
            str(node.read_only).lower(),
        ),
        1,
    )
    f.add(
        "node_observed_timestamp_seconds",
        "When the snapshot was taken (UTC epoch).",
        (),
        (),
        snap.observed_at,
    )

    system = snap.system
    for name, doc, value in (
        ("host_cpu_percent", "Host CPU use, percent of all cores.", system.cpu_percent),
        ("host_cpu_count", "Logical CPUs.", system.cpu_count),
        ("host_memory_total_bytes", "Host memory.", system.mem_total),
        ("host_memory_used_bytes", "Host memory in use.", system.mem_used),
        ("host_memory_available_bytes", "Host memory available to new work.", system.mem_available),
        ("host_swap_total_bytes", "Swap space.", system.swap_total),
        ("host_swap_used_bytes", "Swap in use.", system.swap_used),
        ("host_disk_total_bytes", "Size of the node's state disk.", system.disk_total),
        ("host_disk_used_bytes", "Space used on the node's state disk.", system.disk_used),
        ("host_uptime_seconds", "Host uptime.", system.uptime_s),
    ):
        f.add(name, doc, (), (), value)
    if system.load_avg is not None:
        for period, load in (
            ("1m", system.load_avg.m1),
            ("5m", system.load_avg.m5),
            ("15m", system.load_avg.m15),
        ):
            f.add("host_load_average", "Host load average over the period.", ("period",), (period,), load)

    f.add("gpu_driver_status", "GPU driver status (value 1).", ("status",), (snap.gpu_status.status,), 1)
    for gpu in snap.gpus:
        gpu_labels, gpu_values = ("gpu", "uuid", "name"), (str(gpu.index), gpu.uuid or "", gpu.name or "")
        for name, doc, value in (
            ("gpu_utilization_percent", "GPU utilisation, percent.", gpu.util_percent),
            ("gpu_memory_total_bytes", "GPU memory.", gpu.mem_total),
            ("gpu_memory_used_bytes", "GPU memory in use.", gpu.mem_used),
            ("gpu_temperature_celsius", "GPU temperature.", gpu.temperature_c),
            ("gpu_power_watts", "GPU power draw.", gpu.power_w),
            ("gpu_power_limit_watts", "GPU power limit.", gpu.power_limit_w),
            ("gpu_fan_percent", "GPU fan speed, percent.", gpu.fan_percent),
        ):
            f.add(name, doc, gpu_labels, gpu_values, value)

    by_state = dict.fromkeys(get_args(AgentState), 0)
    by_health = dict.fromkeys(get_args(Health), 0)
    for agent in snap.agents:
        by_state[agent.state] += 1
        by_health[agent.health] += 1
        labels, values = ("agent", "name"), (agent.id, agent.name)
        f.add("agent_state", "The agent's state (value 1).", (*labels, "state"), (*values, agent.state), 1)
        f.add(
            "agent_health", "The agent's health (value 1).", (*labels, "health"), (*values, agent.health), 1
        )
        age = None if agent.last_heartbeat is None else max(0.0, snap.observed_at - agent.last_heartbeat)
        for name, doc, value in (
            ("agent_cpu_percent", "Agent CPU use, percent of one core.", agent.cpu_percent),
            ("agent_rss_bytes", "Agent resident memory.", agent.rss_bytes),
            ("agent_gpu_memory_bytes", "GPU memory the agent's processes use.", agent.gpu_mem_bytes),
            ("agent_restarts", "Times the agent was restarted.", agent.restarts),
            ("agent_progress_ratio", "The agent's progress on its work, 0 to 1.", agent.progress),
            ("agent_heartbeat_age_seconds", "Seconds since the agent's last heartbeat.", age),
        ):
            f.add(name, doc, labels, values, value)
    for state, count in by_state.items():
        f.add("agents_by_state", "Agents in each state.", ("state",), (state,), count)
    for health, count in by_health.items():
        f.add("agents_by_health", "Agents in each health.", ("health",), (health,), count)

    for phase in snap.phases:
        labels, values = ("phase", "name"), (phase.id, phase.name)
        f.add(
            "phase_status", "The phase's status (value 1).", (*labels, "status"), (*values, phase.status), 1
        )
        f.add("phase_progress_ratio", "The phase's progress, 0 to 1.", labels, values, phase.progress)
    by_task = dict.fromkeys(get_args(TaskStatus), 0)
    for task in snap.tasks:
        by_task[task.status] += 1
    for status, count in by_task.items():
        f.add(
            "tasks_by_status",
            "Dispatched tasks in each status (of those the snapshot lists).",
            ("status",),
            (status,),
            count,
        )
    f.add("checkpoints", "Checkpoints the snapshot lists.", (), (), len(snap.checkpoints))
    return iter(f)


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: NodeSnapshot | None = None

    def describe(self) -> list[Metric]:
        return []  # names vary with the snapshot; nothing else is registered that they could clash with

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is not None:
            yield from snapshot_families(self.snapshot)


class MetricsExporter:
    """One app's registry; :meth:`render` is synchronous, so the collector's snapshot cannot be swapped
    by another request between being set and being read."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._collector = _SnapshotCollector()
        self.registry.register(self._collector)

    def render(self, snap: NodeSnapshot) -> bytes:
        self._collector.snapshot = snap
        try:
            return generate_latest(self.registry)
        finally:
            self._collector.snapshot = None
