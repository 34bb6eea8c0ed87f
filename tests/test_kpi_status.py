"""`fleetdeck status` judges KPIs: a real local store where an agent's latency stayed over the critical
line longer than for_s exits 2 naming it; one slow figure, or a short spike, raises nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from backends.local.store import Store
from console.core.alerts import HOLD_UNKNOWN


def _status(env: dict[str, str], state_dir: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "console", "status", "--json"],
        env={**env, "FLEETDECK_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _kpi_alerts(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["label"]: a for node in report["nodes"] for a in node["alerts"] if a["rule"].startswith("kpi:")}


def _agent(store: Store, name: str) -> str:
    # The test process stands in for the agent's process: alive, so only its KPIs can be wrong.
    agent = store.register_agent(name, kind="process", state="running", pid=os.getpid())
    store.heartbeat(agent.id, state="running")
    return agent.id


def test_latency_held_over_the_critical_line_exits_2_and_a_short_spike_does_not(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state_dir = tmp_path / "node"
    now = time.time()
    with Store(state_dir) as store:
        slow = _agent(store, "slow")
        spiky = _agent(store, "spiky")
        steady = _agent(store, "steady")
        for step in range(0, 91, 10):  # 90 s of figures, 10 s apart, up to now
            at = now - 90 + step
            store.record_kpis(slow, {"latency_p95_ms": 162.0 + step / 10}, at=at)
            # over the line for the last 20 s only: short of the built-in rule's for_s (60 s)
            store.record_kpis(spiky, {"latency_p95_ms": 400.0 if step >= 70 else 90.0}, at=at)
            store.record_kpis(steady, {"latency_p95_ms": 97.0, "success_ratio": 0.9995}, at=at)
        store.heartbeat(slow, state="running")
        store.heartbeat(spiky, state="running")
        store.heartbeat(steady, state="running")

    code, report = _status(cli_env, state_dir)
    alerts = _kpi_alerts(report)
    assert code == 2, report
    assert set(alerts) == {"agent:slow"}, alerts
    slow_alert = alerts["agent:slow"]
    assert slow_alert["severity"] == "critical"
    assert slow_alert["rule"] == "kpi:latency_p95_ms"
    assert slow_alert["reason"] == "latency_p95_ms 171 ms ≥ 150 ms critical threshold (warning 120 ms)"
    assert abs(slow_alert["since"] - (now - 90)) < 1e-3  # the breach's first figure
    assert report["nodes"][0]["kpi_hold"] == "judged from the node's KPI history"
    other = [a for a in report["nodes"][0]["alerts"] if not a["rule"].startswith("kpi:")]
    assert other == [], other  # the exit code is the KPI's alone

    # The figure comes back under the line: the next status is clean.
    with Store(state_dir) as store:
        store.record_kpis(slow, {"latency_p95_ms": 95.0}, at=time.time())
        store.record_kpis(spiky, {"latency_p95_ms": 95.0}, at=time.time())
    code, report = _status(cli_env, state_dir)
    assert _kpi_alerts(report) == {}
    assert code == 0, report


def test_a_config_rule_overrides_the_built_in_one_in_status(tmp_path: Path, cli_env: dict[str, str]) -> None:
    state_dir = tmp_path / "node"
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    # tighter for retrievers: warn at 50 ms after 5 s; for the rest the built-in 120/150 ms for 60 s
    config.write_text(
        '[[kpis]]\nname = "latency_p95_ms"\nunit = "s"\nwarn = 0.12\ncrit = 0.15\nfor_s = 60\n'
        '[[kpis.overrides]]\nlabels = { role = "retriever" }\nwarn = 0.05\nfor_s = 5\n'
    )
    now = time.time()
    with Store(state_dir) as store:
        retriever = store.register_agent(
            "retriever", kind="process", state="running", pid=os.getpid(), labels={"role": "retriever"}
        ).id
        planner = _agent(store, "planner")
        for step in range(0, 11, 5):
            store.record_kpis(retriever, {"latency_p95_ms": 80.0}, at=now - 10 + step)
            store.record_kpis(planner, {"latency_p95_ms": 80.0}, at=now - 10 + step)
        store.heartbeat(retriever, state="running")
        store.heartbeat(planner, state="running")
    code, report = _status(cli_env, state_dir)
    alerts = _kpi_alerts(report)
    assert set(alerts) == {"agent:retriever"}, alerts
    assert alerts["agent:retriever"]["severity"] == "warning"
    assert alerts["agent:retriever"]["reason"] == (
        "latency_p95_ms 80 ms ≥ 50 ms warning threshold (critical 150 ms)"
    )
    assert code == 1


def test_a_breach_held_longer_than_the_points_the_console_keeps_exits_2(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # 600 s of 1 Hz figures over the critical line, a rule that asks 300 s of it: the console keeps 120
    # points a series, so the breach must be dated from the node's whole history, not the points kept
    # (dated from the 120th-last point it would have held 120 s: nothing raised, exit 0).
    state_dir = tmp_path / "node"
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[[kpis]]\nname = "latency_p95_ms"\nwarn = 120\ncrit = 150\nfor_s = 300\n')
    now = time.time()
    recorded = [now - 599.5 + step for step in range(600)]
    with Store(state_dir) as store:
        slow = _agent(store, "slow")
        for at in recorded:
            store.record_kpis(slow, {"latency_p95_ms": 200.0}, at=at)
        store.heartbeat(slow, state="running")

    code, report = _status(cli_env, state_dir)
    alerts = _kpi_alerts(report)
    assert code == 2, report
    assert set(alerts) == {"agent:slow"}, alerts
    alert = alerts["agent:slow"]
    assert alert["severity"] == "critical"
    # the first figure inside the 600 s the console asks for, well before the last 120 points
    assert any(abs(alert["since"] - at) < 1e-3 for at in recorded), alert
    assert alert["since"] < recorded[-1] - 300, alert
    assert report["nodes"][0]["kpi_hold"] == "judged from the node's KPI history"


def test_a_node_whose_kpi_history_cannot_be_read_is_judged_with_the_hold_unknown(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    # The node's latest figures read, its history does not: the points' table is replaced by a view that
    # answers what a snapshot asks of it (which series have new points) but holds no figure or time, so
    # reading the history fails as over a damaged store. Status must not claim the hold was judged from a
    # history it never got, nor page anyone as critical on one snapshot.
    state_dir = tmp_path / "node"
    now = time.time()
    with Store(state_dir) as store:
        slow = _agent(store, "slow")
        for step in range(0, 91, 10):
            store.record_kpis(slow, {"latency_p95_ms": 200.0}, at=now - 90 + step)
        store.heartbeat(slow, state="running")
        db = store.path
    conn = sqlite3.connect(db)
    try:
        conn.execute("ALTER TABLE kpi_points RENAME TO kpi_points_lost")
        conn.execute("CREATE VIEW kpi_points AS SELECT id, agent_id, name FROM kpi_points_lost")
        conn.commit()
    finally:
        conn.close()

    code, report = _status(cli_env, state_dir)
    alerts = _kpi_alerts(report)
    assert report["nodes"][0]["kpi_hold"] == "unknown", report
    assert set(alerts) == {"agent:slow"}, alerts
    assert alerts["agent:slow"]["severity"] == "warning"
    assert alerts["agent:slow"]["reason"].endswith(f"({HOLD_UNKNOWN})")
    assert code == 1, report
