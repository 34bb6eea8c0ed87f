"""``GET /metrics`` by the book: the real promtool on real scrapes of real servers (``fleetdeck node serve``
for the demo and the local node, uvicorn on 127.0.0.1 for apps built here), prometheus-client's own parser
for types and values, and the README's alert rules through ``promtool test rules``."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import get_args

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from backends.base import Backend
from backends.demo import demo_fleet
from backends.demo.backend import DemoBackend
from backends.local.store import Store
from backends.model import (
    Agent,
    AgentState,
    Gpu,
    GpuStatus,
    Health,
    Kpi,
    LoadAvg,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    Phase,
    PhaseStatus,
    SystemMetrics,
    from_json,
)
from backends.node_api import ACTION_PATHS
from backends.node_server.app import create_app
from backends.node_server.metrics import KpiThreshold, MetricsExporter
from console.core.clock import FrozenClock
from tests.agents.local_node import wait_for
from tests.conftest import T0
from tests.serving import ServedNode, as_owner, serve_asgi

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's `prometheus` package; .ci/run installs it)"
)
README = Path(__file__).resolve().parent.parent / "README.md"
STATES: tuple[str, ...] = get_args(AgentState)
HEALTHS: tuple[str, ...] = get_args(Health)


def promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def assert_promtool_silent(text: str) -> None:
    done = promtool("check", "metrics", stdin=text)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample named ``name``: its sorted labels -> its value."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def by_agent(text: str, name: str) -> dict[str, float]:
    return {dict(labels)["agent"]: value for labels, value in series(text, name).items()}


def current(text: str, name: str, label: str) -> dict[str, str]:
    """For an enumeration family: each agent's one value whose series is 1."""
    ones: dict[str, list[str]] = {}
    for labels, value in series(text, name).items():
        if value == 1:
            ones.setdefault(dict(labels)["agent"], []).append(dict(labels)[label])
    assert all(len(values) == 1 for values in ones.values()), ones
    return {agent: values[0] for agent, values in ones.items()}


def agents_in(text: str) -> set[str]:
    return {
        sample.labels["agent"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "agent" in sample.labels
    }


# --- promtool on real servers ------------------------------------------------------------------------------


@needs_promtool
def test_promtool_is_silent_on_a_served_demo_node_with_many_agents(cli_env: dict[str, str]) -> None:
    with ServedNode(
        "--demo", "--agents", "600", "--listen", "127.0.0.1:0", "--no-access-log", env=cli_env
    ) as node:
        response = httpx.get(f"{node.url}/metrics", headers=node.auth(), timeout=30)
        snapshot = from_json(httpx.get(f"{node.url}/v1/snapshot", headers=node.auth()).content, NodeSnapshot)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert_promtool_silent(response.text)
    assert len(agents_in(response.text)) == len(snapshot.agents) == 600
    assert len(series(response.text, "fleetdeck_agent_state")) == 600 * len(STATES)


@needs_promtool
def test_promtool_is_silent_on_the_local_node_and_a_removed_agent_leaves_no_series(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state_dir = tmp_path / "node"
    names = ["trainer-01", "trainer-02", "eval-01"]
    with Store(state_dir) as store:
        for name in names:
            store.register_agent(name, kind="reporting", state="running", labels={"role": "test"})
            store.heartbeat(name, progress=0.25, message="step 1")
    with ServedNode("--state-dir", str(state_dir), "--listen", "127.0.0.1:0", env=cli_env) as node:

        def scrape() -> str:
            response = httpx.get(f"{node.url}/metrics", headers=node.auth(), timeout=30)
            assert response.status_code == 200
            return response.text

        first = scrape()
        assert_promtool_silent(first)
        assert agents_in(first) == set(names)
        assert current(first, "fleetdeck_agent_state", "state") == dict.fromkeys(names, "running")
        assert "fleetdeck_host_boot_timestamp_seconds" in families(first)

        with Store(state_dir) as store:
            store.remove_agent("trainer-02")
            store.heartbeat("eval-01", state="paused")

        def without_removed() -> str | None:
            text = scrape()
            return text if "trainer-02" not in agents_in(text) else None

        later = wait_for(without_removed, "the removed agent to leave /metrics")
    assert_promtool_silent(later)
    assert agents_in(later) == {"trainer-01", "eval-01"}
    assert 'agent="trainer-02"' not in later
    assert current(later, "fleetdeck_agent_state", "state") == {"trainer-01": "running", "eval-01": "paused"}
    # the agents still there keep exactly the series they had
    kept = {
        k: v for k, v in series(first, "fleetdeck_agent_state").items() if dict(k)["agent"] != "trainer-02"
    }
    assert series(later, "fleetdeck_agent_state").keys() == kept.keys()


# --- a stable series set -----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0 + 120)


@pytest.fixture
def demo(clock: FrozenClock) -> DemoBackend:
    return demo_fleet(seed=7, nodes=1, clock=clock)[0]


@pytest.fixture
def demo_url(demo: DemoBackend) -> Iterator[str]:
    with serve_asgi(create_app(demo, snapshot_ttl_s=0.0)) as url:
        yield url


def scrape(url: str) -> str:
    response = as_owner.get(f"{url}/metrics")
    assert response.status_code == 200
    return response.text


def test_a_scraper_that_accepts_gzip_gets_the_same_text_compressed(demo_url: str) -> None:
    import gzip

    plain = as_owner.get(f"{demo_url}/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    with as_owner.stream("GET", f"{demo_url}/metrics", headers={"Accept-Encoding": "gzip"}) as zipped:
        raw = b"".join(zipped.iter_raw())
        assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == plain.content
    assert len(raw) * 5 < len(plain.content)  # the repeated state series compress well
    refused = as_owner.get(f"{demo_url}/metrics", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_state_and_health_series_stay_the_same_while_agents_change_state(
    demo_url: str, clock: FrozenClock
) -> None:
    before = scrape(demo_url)
    states_before = current(before, "fleetdeck_agent_state", "state")
    health_before = current(before, "fleetdeck_agent_health", "health")
    target = next(agent for agent, state in states_before.items() if state == "running")
    paused = as_owner.post(f"{demo_url}{ACTION_PATHS['pause']}", json={"target": target})
    assert paused.status_code in (200, 201, 202), paused.text
    clock.advance(1800)  # half an hour of the demo's own life: agents start, finish, fail and recover
    after = scrape(demo_url)
    states_after = current(after, "fleetdeck_agent_state", "state")
    assert states_after[target] == "paused" != states_before[target]
    changed = {agent for agent in states_before if states_before[agent] != states_after[agent]}
    assert changed - {target}, "the demo fleet should move on its own in half an hour"
    for name, label, values in (
        ("fleetdeck_agent_state", "state", STATES),
        ("fleetdeck_agent_health", "health", HEALTHS),
    ):
        assert series(after, name).keys() == series(before, name).keys()
        per_agent: dict[str, set[str]] = {}
        for labels in series(after, name):
            per_agent.setdefault(dict(labels)["agent"], set()).add(dict(labels)[label])
        assert all(found == set(values) for found in per_agent.values())
    # one 1 per agent and per enumeration (current() checks there is never a second)
    assert set(states_after) == set(states_before) == set(current(after, "fleetdeck_agent_health", "health"))
    assert set(health_before) == set(states_before)


# --- types and values --------------------------------------------------------------------------------------


def test_types_and_values_match_the_snapshot(demo_url: str) -> None:
    text = scrape(demo_url)
    found = families(text)
    snapshot = from_json(as_owner.get(f"{demo_url}/v1/snapshot").content, NodeSnapshot)
    # the demo's clock is frozen: both reads see the same snapshot
    assert found["fleetdeck_node_observed_timestamp_seconds"].samples[0].value == snapshot.observed_at

    restarts = found["fleetdeck_agent_restarts"]
    assert restarts.type == "counter"
    assert {s.name for s in restarts.samples} == {"fleetdeck_agent_restarts_total"}
    assert by_agent(text, "fleetdeck_agent_restarts_total") == {a.id: a.restarts for a in snapshot.agents}
    for name, family in found.items():
        assert family.type == ("counter" if name == "fleetdeck_agent_restarts" else "gauge"), name
        assert family.documentation, name
        assert not name.endswith(("_percent", "_count", "_age_seconds", "_uptime_seconds")), name

    assert by_agent(text, "fleetdeck_agent_heartbeat_timestamp_seconds") == {
        a.id: a.last_heartbeat for a in snapshot.agents if a.last_heartbeat is not None
    }
    assert by_agent(text, "fleetdeck_agent_start_timestamp_seconds") == {
        a.id: a.started_at for a in snapshot.agents if a.started_at is not None
    }
    cpu = by_agent(text, "fleetdeck_agent_cpu_usage_ratio")
    expected_cpu = {a.id: a.cpu_percent / 100 for a in snapshot.agents if a.cpu_percent is not None}
    assert cpu.keys() == expected_cpu.keys() and all(math.isclose(cpu[k], v) for k, v in expected_cpu.items())
    assert by_agent(text, "fleetdeck_agent_resident_memory_bytes") == {
        a.id: a.rss_bytes for a in snapshot.agents if a.rss_bytes is not None
    }
    assert current(text, "fleetdeck_agent_state", "state") == {a.id: a.state for a in snapshot.agents}
    assert current(text, "fleetdeck_agent_health", "health") == {a.id: a.health for a in snapshot.agents}
    info = {dict(k)["agent"]: dict(k) for k, v in series(text, "fleetdeck_agent_info").items() if v == 1}
    assert {a: (i["name"], i["kind"], i["phase"]) for a, i in info.items()} == {
        a.id: (a.name, a.kind, a.phase_id or "") for a in snapshot.agents
    }
    by_state = {dict(k)["state"]: v for k, v in series(text, "fleetdeck_agents_by_state").items()}
    assert set(by_state) == set(STATES) and sum(by_state.values()) == len(snapshot.agents)

    system = snapshot.system
    assert system.cpu_percent is not None and system.uptime_s is not None
    host = {
        name: family.samples[0].value for name, family in found.items() if name.startswith("fleetdeck_host_")
    }
    assert math.isclose(host["fleetdeck_host_cpu_usage_ratio"], system.cpu_percent / 100)
    assert 0 <= host["fleetdeck_host_cpu_usage_ratio"] <= 1
    assert host["fleetdeck_host_cpus"] == system.cpu_count
    assert host["fleetdeck_host_memory_used_bytes"] == system.mem_used
    assert host["fleetdeck_host_boot_timestamp_seconds"] == round(snapshot.observed_at - system.uptime_s)
    if system.disk_available is not None:
        assert host["fleetdeck_host_disk_available_bytes"] == system.disk_available

    temps = {dict(k)["gpu"]: v for k, v in series(text, "fleetdeck_gpu_temperature_celsius").items()}
    assert temps == {str(g.index): g.temperature_c for g in snapshot.gpus if g.temperature_c is not None}
    status = {dict(k)["status"]: v for k, v in series(text, "fleetdeck_gpu_driver_status").items()}
    assert status == {s: float(s == snapshot.gpu_status.status) for s in ("ok", "no_driver", "error")}
    phases = {}
    for labels, value in series(text, "fleetdeck_phase_status").items():
        phases.setdefault(dict(labels)["phase"], {})[dict(labels)["status"]] = value
    assert phases == {p.id: {s: float(s == p.status) for s in get_args(PhaseStatus)} for p in snapshot.phases}


# --- hand-made snapshots: escaping, unknowns, disk ---------------------------------------------------------

ODD = 'quote " backslash \\ newline \n escape \x1b]0;t\x07 bidi \u202e end'


def full_snapshot(**system: float | int | None) -> NodeSnapshot:
    """A snapshot with every field the exporter reads filled in, strange strings included."""
    fields = {
        "cpu_percent": 40.4,
        "cpu_count": 16,
        "load_avg": LoadAvg(m1=1.5, m5=1.25, m15=1.0),
        "mem_total": 64 << 30,
        "mem_used": 40 << 30,
        "mem_available": 20 << 30,
        "swap_total": 8 << 30,
        "swap_used": 1 << 30,
        "disk_total": 1000 << 30,
        "disk_used": 240 << 30,
        "disk_available": 710 << 30,
        "uptime_s": 86400.4,
        **system,
    }
    return NodeSnapshot(
        node=NodeInfo(id="n1", name=f"node {ODD}", backend="test", version="1.0", hostname=ODD),
        observed_at=T0,
        system=SystemMetrics(**fields),  # type: ignore[arg-type]
        gpus=(
            Gpu(
                index=0,
                uuid="GPU-1",
                name=f"gpu {ODD}",
                util_percent=87.0,
                mem_total=80 << 30,
                mem_used=61 << 30,
                temperature_c=71.0,
                power_w=612.3,
                power_limit_w=700.0,
                fan_percent=55.0,
            ),
        ),
        gpu_status=GpuStatus(status="ok"),
        agents=(
            Agent(
                id=f"agent {ODD}",
                name=f"name {ODD}",
                state="running",
                health="degraded",
                last_heartbeat=T0 - 3.5,
                started_at=T0 - 600,
                cpu_percent=250.0,
                rss_bytes=1 << 30,
                gpu_mem_bytes=30 << 30,
                phase_id=f"phase {ODD}",
                progress=0.5,
                restarts=4,
                kpis=(
                    Kpi(name="latency_p95_ms", value=97.5, unit="ms", at=T0 - 4),
                    Kpi(
                        name="tokens_out_total",
                        value=5000,
                        unit="tokens",
                        at=T0 - 4,
                        kind="counter",
                        rate_per_s=2.5,
                    ),
                ),
            ),
            Agent(id="bare", name="bare"),
        ),
        phases=(Phase(id=f"phase {ODD}", name=f"Phase {ODD}", order=1, status="active", progress=0.25),),
    )


KPI_THRESHOLDS = (KpiThreshold("latency_p95_ms", 120.0, 150.0, "above", "ms", 60.0),)


class SnapshotBackend(Backend):
    """A node that answers whatever snapshot the test gives it."""

    name = "test"
    capabilities = frozenset()

    def __init__(self, snapshot: NodeSnapshot) -> None:
        self.current = snapshot

    @property
    def info(self) -> NodeInfo:
        return self.current.node

    async def snapshot(self) -> NodeSnapshot:
        return self.current

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        for record in ():
            yield record


@needs_promtool
def test_strange_strings_are_escaped_and_read_back_exactly() -> None:
    snapshot = full_snapshot()
    with serve_asgi(create_app(SnapshotBackend(snapshot))) as url:
        text = scrape(url)
    assert_promtool_silent(text)
    found = families(text)
    assert found["fleetdeck_node_info"].samples[0].labels["hostname"] == ODD
    assert found["fleetdeck_gpu_power_watts"].samples[0].labels["name"] == f"gpu {ODD}"
    info = {s.labels["agent"]: s.labels for s in found["fleetdeck_agent_info"].samples}
    assert info[f"agent {ODD}"]["name"] == f"name {ODD}" and info[f"agent {ODD}"]["phase"] == f"phase {ODD}"
    assert info["bare"]["phase"] == ""
    assert current(text, "fleetdeck_agent_state", "state") == {f"agent {ODD}": "running", "bare": "unknown"}
    assert by_agent(text, "fleetdeck_agent_cpu_usage_ratio") == {f"agent {ODD}": 2.5}
    assert by_agent(text, "fleetdeck_agent_restarts_total") == {f"agent {ODD}": 4, "bare": 0}
    assert series(text, "fleetdeck_phase_info") == {
        (("name", f"Phase {ODD}"), ("order", "1"), ("phase", f"phase {ODD}")): 1.0
    }


def test_unknown_values_are_left_out_and_disk_available_only_when_known() -> None:
    text = MetricsExporter().render(full_snapshot()).decode()
    host = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert host["fleetdeck_host_disk_available_bytes"] == 710 << 30
    assert host["fleetdeck_host_boot_timestamp_seconds"] == round(T0 - 86400.4)
    assert host["fleetdeck_gpu_utilization_ratio"] == 0.87 and host["fleetdeck_gpu_fan_speed_ratio"] == 0.55

    unknown = dict.fromkeys(
        ("cpu_percent", "cpu_count", "load_avg", "mem_used", "disk_available", "uptime_s"), None
    )
    text = MetricsExporter().render(full_snapshot(**unknown)).decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    for gone in (
        "fleetdeck_host_cpu_usage_ratio",
        "fleetdeck_host_cpus",
        "fleetdeck_host_load_average",
        "fleetdeck_host_memory_used_bytes",
        "fleetdeck_host_disk_available_bytes",
        "fleetdeck_host_boot_timestamp_seconds",
    ):
        assert gone not in names
        assert f"# HELP {gone} " not in text  # no family without samples either
    assert "fleetdeck_host_memory_total_bytes" in names and "fleetdeck_host_disk_used_bytes" in names
    # the agent "bare" has no readings: none is made up as 0
    for name in ("fleetdeck_agent_cpu_usage_ratio", "fleetdeck_agent_heartbeat_timestamp_seconds"):
        assert "bare" not in by_agent(text, name)


# --- the README --------------------------------------------------------------------------------------------


def readme_section() -> str:
    text = README.read_text()
    start = text.index("## Prometheus metrics\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_documents_every_exported_family_and_no_other() -> None:
    section = readme_section()
    table = [line for line in section.splitlines() if line.startswith("| `fleetdeck_")]
    documented: dict[str, str] = {}
    for row in table:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for name in re.findall(r"`(fleetdeck_[a-z_]+)`", cells[0]):
            documented[name] = cells[1]
    text = MetricsExporter(KPI_THRESHOLDS).render(full_snapshot()).decode()
    exported = {
        sample.name: family.type
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert documented == exported


@needs_promtool
def test_the_readme_alert_rules_fire_as_documented(tmp_path: Path) -> None:
    rules = re.search(r"```yaml\n(groups:\n.*?)```", readme_section(), re.S)
    assert rules is not None
    (tmp_path / "rules.yml").write_text(rules.group(1))
    checked = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    instance = '{job="fleetdeck",instance="gpu-01:8765"}'
    agent = 'job="fleetdeck",instance="gpu-01:8765"'
    (tmp_path / "tests.yml").write_text(
        f"""
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {{series: 'fleetdeck_host_memory_total_bytes{instance}', values: '100x10'}}
      - {{series: 'fleetdeck_host_memory_used_bytes{instance}', values: '90x10'}}
      - {{series: 'fleetdeck_agent_heartbeat_timestamp_seconds{{{agent},agent="a1"}}', values: '0x10'}}
      - {{series: 'fleetdeck_agent_state{{{agent},agent="a1",state="running"}}', values: '1x10'}}
      - {{series: 'fleetdeck_agent_heartbeat_timestamp_seconds{{{agent},agent="a2"}}', values: '0x10'}}
      - {{series: 'fleetdeck_agent_state{{{agent},agent="a2",state="running"}}', values: '0x10'}}
      - {{series: 'fleetdeck_agent_state{{{agent},agent="a2",state="stopped"}}', values: '1x10'}}
      - {{series: 'http_request_duration_seconds_bucket{{job="api",le="0.1"}}', values: '0+0x20'}}
      - {{series: 'http_request_duration_seconds_bucket{{job="api",le="0.2"}}', values: '0+100x20'}}
      - {{series: 'http_request_duration_seconds_bucket{{job="api",le="+Inf"}}', values: '0+100x20'}}
      - {{series: 'http_request_duration_seconds_bucket{{job="fast",le="0.1"}}', values: '0+100x20'}}
      - {{series: 'http_request_duration_seconds_bucket{{job="fast",le="+Inf"}}', values: '0+100x20'}}
    alert_rule_test:
      - eval_time: 5m
        alertname: HostMemoryHigh
        exp_alerts:
          - exp_labels: {{severity: warning, job: fleetdeck, instance: "gpu-01:8765"}}
            exp_annotations: {{summary: "gpu-01:8765: memory 90% used"}}
      - eval_time: 5m
        alertname: HostMemoryCritical
        exp_alerts: []
      - eval_time: 2m
        alertname: AgentHeartbeatStale
        exp_alerts:
          - exp_labels: {{severity: warning, job: fleetdeck, instance: "gpu-01:8765", agent: a1}}
            exp_annotations: {{summary: "a1: no heartbeat for 2m 0s"}}
      - eval_time: 15m
        alertname: P95LatencyHigh
        exp_alerts:
          - exp_labels: {{severity: warning, job: api}}
            exp_annotations: {{summary: "api: P95 latency 195ms > 120 ms"}}
      - eval_time: 15m
        alertname: P95LatencyCritical
        exp_alerts:
          - exp_labels: {{severity: critical, job: api}}
            exp_annotations: {{summary: "api: P95 latency 195ms > 150 ms"}}
"""
    )
    tested = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
