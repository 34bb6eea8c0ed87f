"""KPIs in ``GET /metrics``: each agent's figures (and a counter's rate) and the rules the serving process
judges them by, checked by the real promtool and prometheus-client's parser, on a hand-made snapshot and
on a local node served by ``fleetdeck node serve`` with a config of its own."""

from __future__ import annotations

from pathlib import Path

import httpx

from backends.local.store import Store
from backends.model import Agent, Kpi, NodeInfo, NodeSnapshot
from backends.node_server.metrics import KpiThreshold, MetricsExporter
from tests.agents.local_node import wait_for
from tests.conftest import T0
from tests.serving import ServedNode
from tests.test_metrics_exposition import ODD, assert_promtool_silent, needs_promtool, series

RULES = (
    KpiThreshold("latency_p95_ms", 120.0, 150.0, "above", "ms", 60.0),
    KpiThreshold("success_ratio", 0.999, 0.99, "below", "ratio", 30.0),
    KpiThreshold("queue_depth", 100.0, 500.0, "above"),  # in each agent's own unit
)


def kpi_snapshot() -> NodeSnapshot:
    odd = Agent(
        id=f"agent {ODD}",
        name="odd",
        kpis=(
            Kpi(name="latency_p95_ms", value=162.5, unit="ms", at=T0 - 2),
            Kpi(name="success_ratio", value=0.9993, unit="ratio", at=T0 - 2),
            Kpi(
                name="tokens_out_total",
                value=1.5e6,
                unit="tokens",
                at=T0 - 2,
                kind="counter",
                rate_per_s=42.0,
            ),
        ),
    )
    fresh_counter = Agent(  # one point so far: no rate yet, and none is made up
        id="fresh",
        name="fresh",
        kpis=(Kpi(name="cost_usd_total", value=3.41, unit="usd", at=T0 - 1, kind="counter"),),
    )
    return NodeSnapshot(
        node=NodeInfo(id="n1", name="n1", backend="test"),
        observed_at=T0,
        agents=(odd, fresh_counter, Agent(id="quiet", name="quiet")),
    )


@needs_promtool
def test_every_figure_is_a_sample_in_its_unit_and_promtool_is_silent() -> None:
    text = MetricsExporter(RULES).render(kpi_snapshot()).decode()
    assert_promtool_silent(text)
    odd = f"agent {ODD}"
    assert series(text, "fleetdeck_agent_kpi") == {
        (("agent", odd), ("kpi", "latency_p95_ms"), ("unit", "ms")): 162.5,
        (("agent", odd), ("kpi", "success_ratio"), ("unit", "ratio")): 0.9993,
        (("agent", odd), ("kpi", "tokens_out_total"), ("unit", "tokens")): 1.5e6,
        (("agent", "fresh"), ("kpi", "cost_usd_total"), ("unit", "usd")): 3.41,
    }
    assert series(text, "fleetdeck_agent_kpi_rate_per_second") == {
        (("agent", odd), ("kpi", "tokens_out_total"), ("unit", "tokens")): 42.0
    }
    assert series(text, "fleetdeck_kpi_threshold") == {
        (("direction", "above"), ("kpi", "latency_p95_ms"), ("level", "warning"), ("unit", "ms")): 120.0,
        (("direction", "above"), ("kpi", "latency_p95_ms"), ("level", "critical"), ("unit", "ms")): 150.0,
        (("direction", "below"), ("kpi", "success_ratio"), ("level", "warning"), ("unit", "ratio")): 0.999,
        (("direction", "below"), ("kpi", "success_ratio"), ("level", "critical"), ("unit", "ratio")): 0.99,
        (("direction", "above"), ("kpi", "queue_depth"), ("level", "warning")): 100.0,
        (("direction", "above"), ("kpi", "queue_depth"), ("level", "critical")): 500.0,
    }
    assert series(text, "fleetdeck_kpi_threshold_for_seconds") == {
        (("kpi", "latency_p95_ms"),): 60.0,
        (("kpi", "success_ratio"),): 30.0,
        (("kpi", "queue_depth"),): 0.0,
    }


def test_a_kpi_built_in_code_with_odd_text_cannot_break_the_exposition() -> None:
    # a Kpi made in code (the demo fleet, the Ray backend) skips the name pattern; the wire checks length only
    odd = Kpi(name=f"n {ODD}", value=1.0, unit=f"u {ODD}", at=T0, kind="counter", rate_per_s=2.0)  # type: ignore[arg-type]
    snap = NodeSnapshot(
        node=NodeInfo(id="n1", name="n1", backend="test"),
        observed_at=T0,
        agents=(Agent(id="a", name="a", kpis=(odd,)),),
    )
    text = MetricsExporter().render(snap).decode()
    labels = (("agent", "a"), ("kpi", f"n {ODD}"), ("unit", f"u {ODD}"))
    assert series(text, "fleetdeck_agent_kpi") == {labels: 1.0}
    assert series(text, "fleetdeck_agent_kpi_rate_per_second") == {labels: 2.0}


def test_without_figures_or_rules_no_kpi_family_is_written() -> None:
    bare = NodeSnapshot(node=NodeInfo(id="n1", name="n1", backend="test"), observed_at=T0)
    text = MetricsExporter().render(bare).decode()
    assert "kpi" not in text  # not even a HELP line for a family without samples
    with_rules = MetricsExporter(RULES).render(bare).decode()
    assert "fleetdeck_agent_kpi" not in with_rules and "# TYPE fleetdeck_kpi_threshold gauge" in with_rules


CONFIG = """
[[kpis]]
name = "latency_p95_ms"
unit = "ms"
warn = 100
crit = 130
direction = "above"
for_s = 45

[[kpis.overrides]]
node = "local"  # what `fleetdeck node serve --state-dir` names the node
crit = 140

[[kpis.overrides]]
labels = { role = "retriever" }
crit = 999
"""


@needs_promtool
def test_a_served_node_exports_its_figures_and_the_configs_rules(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state_dir = tmp_path / "node"
    with Store(state_dir) as store:
        store.register_agent("retriever-01", kind="reporting", state="running", labels={"role": "retriever"})
        store.record_kpis("retriever-01", {"latency_p95_ms": 162.0, "success_ratio": 0.9991})
    config = tmp_path / "fleetdeck.toml"
    config.write_text(CONFIG)
    env = {**cli_env, "FLEETDECK_CONFIG": str(config)}
    with ServedNode(
        "--state-dir", str(state_dir), "--listen", "127.0.0.1:0", "--no-access-log", env=env
    ) as node:

        def scrape() -> str:
            answer = httpx.get(f"{node.url}/metrics", headers=node.auth(), timeout=30)
            assert answer.status_code == 200
            return answer.text

        text = scrape()
        assert_promtool_silent(text)
        assert series(text, "fleetdeck_agent_kpi") == {
            (("agent", "retriever-01"), ("kpi", "latency_p95_ms"), ("unit", "ms")): 162.0,
            (("agent", "retriever-01"), ("kpi", "success_ratio"), ("unit", "ratio")): 0.9991,
        }
        thresholds = {
            (dict(labels)["kpi"], dict(labels)["level"]): value
            for labels, value in series(text, "fleetdeck_kpi_threshold").items()
        }
        # the config's rule with this node's override (the per-label one varies by agent: not exported),
        # and the built-in rules the config does not replace
        assert thresholds[("latency_p95_ms", "warning")] == 100.0
        assert thresholds[("latency_p95_ms", "critical")] == 140.0
        assert thresholds[("success_ratio", "warning")] == 0.999
        assert series(text, "fleetdeck_kpi_threshold_for_seconds")[(("kpi", "latency_p95_ms"),)] == 45.0

        with Store(state_dir) as store:
            store.record_kpis("retriever-01", {"latency_p95_ms": 97.0})

        def recovered() -> str | None:
            later = scrape()
            return later if 'kpi="latency_p95_ms",unit="ms"} 97.0' in later else None

        wait_for(recovered, "the new figure to reach /metrics")
