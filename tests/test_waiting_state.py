"""The "waiting" state (an agent that needs a human): the store, the command line, the reporter, alerts and
the Attention inbox, on a real local node."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.text import Text

from backends.local.reporter import AgentReporter
from backends.local.store import Store
from backends.model import Agent, NodeInfo, NodeSnapshot
from console.app import FleetDeckApp
from console.core.alert_book import AlertBook
from console.core.alerts import node_alerts, sort_alerts
from console.core.clock import FrozenClock
from console.core.config import Config, Thresholds
from console.core.fleet_setup import local_link
from widgets.attention import AttentionList
from widgets.fleet_table import COLUMNS, FleetRow, row_cells

from .agents.local_node import LocalNode
from .conftest import T0

ASKED = "permission to run Bash(rm -rf build)"


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def test_report_waiting_shows_in_agents_json_and_ends_with_the_next_state(node: LocalNode) -> None:
    node.ok("report", "--agent", "coder", "--state", "running", "--message", "editing")
    node.ok("report", "--agent", "coder", "--state", "waiting", "--message", ASKED)
    agent = node.agents()["coder"]
    assert (agent["state"], agent["message"]) == ("waiting", ASKED)
    assert agent["health"] != "unhealthy"
    since = agent["state_since"]
    assert isinstance(since, float) and since >= agent["started_at"]
    node.ok("report", "--agent", "coder", "--state", "running", "--message", "deleting build/")
    back = node.agents()["coder"]
    assert (back["state"], back["message"]) == ("running", "deleting build/")
    assert back["state_since"] >= since


def test_report_refuses_an_unknown_state_naming_the_choices(node: LocalNode) -> None:
    result = node.cli("report", "--agent", "coder", "--state", "blocked")
    assert result.returncode == 2
    assert "waiting" in result.stderr and "blocked" in result.stderr
    assert node.json("agents") == []


def test_the_reporter_reports_waiting_and_what_for(tmp_path: Path) -> None:
    reporter = AgentReporter("bot", state_dir=tmp_path)
    reporter.heartbeat(state="running")
    reporter.heartbeat(state="waiting", message="your review of PR 12")
    reporter.store.close()  # not close(): that ends the agent, and this one is still waiting
    with Store(tmp_path) as store:
        agent = store.agents()[0]
    assert (agent.state, agent.message) == ("waiting", "your review of PR 12")
    assert agent.state_since is not None and agent.last_heartbeat is not None
    later = agent.last_heartbeat + 3600.0  # an hour unanswered: still waiting, not stale
    with Store(tmp_path, clock=lambda: later) as store:
        assert store.agents()[0].health == "healthy"


# --- alerts: "needs you" first, a warning for status -----------------------------------------------------


def _snapshot(*agents: Agent) -> NodeSnapshot:
    return NodeSnapshot(node=NodeInfo(id="n1", name="n1", backend="demo"), observed_at=T0, agents=agents)


def test_a_waiting_agent_raises_needs_you_from_when_it_began_waiting() -> None:
    waiting = Agent(
        id="coder", name="coder", state="waiting", health="healthy", message=ASKED, state_since=T0 - 90,
        last_heartbeat=T0 - 3600,  # silent for an hour while it waits: no heartbeat alert
    )  # fmt: skip
    [alert] = node_alerts(_snapshot(waiting), Thresholds(), T0)
    assert (alert.rule, alert.severity, alert.reason, alert.since) == (
        "waiting",
        "warning",
        f"needs you: {ASKED}",
        T0 - 90,
    )
    assert alert.needs_you and alert.line().startswith("⏸ waiting")
    running = msgspec.structs.replace(waiting, state="running")
    assert [a.rule for a in node_alerts(_snapshot(running), Thresholds(), T0)] == ["heartbeat"]


def test_needs_you_comes_before_critical_in_the_alerts_and_the_inbox() -> None:
    failed = Agent(id="a-failed", name="a-failed", state="failed", health="unhealthy", message="boom")
    hot = Agent(id="a-hot", name="a-hot", state="running", health="degraded", health_reason="slow")
    waiting = Agent(id="z-waits", name="z-waits", state="waiting", health="healthy", message="input")
    alerts = node_alerts(_snapshot(failed, hot, waiting), Thresholds(), T0)
    assert [(a.subject, a.severity) for a in alerts] == [
        ("agent:z-waits", "warning"),
        ("agent:a-failed", "critical"),
        ("agent:a-hot", "warning"),
    ]
    assert sort_alerts(reversed(alerts)) == alerts
    book = AlertBook(None, FrozenClock(T0))
    book.update("n1", alerts, T0)
    assert [e.subject for e in book.active()] == ["agent:z-waits", "agent:a-failed", "agent:a-hot"]
    assert book.counts() == (1, 2), "waiting counts as a warning, never as critical"


def test_status_json_shows_the_waiting_agent_and_exits_warning(node: LocalNode) -> None:
    node.ok("report", "--agent", "coder", "--state", "waiting", "--message", ASKED)
    result = node.cli("status", "--json")
    assert result.returncode == 1, result.stderr  # warning: someone is needed, nothing is broken
    [status] = json.loads(result.stdout)["nodes"]
    [alert] = [a for a in status["alerts"] if a["rule"] == "waiting"]
    assert alert["subject"] == "agent:coder" and alert["reason"] == f"needs you: {ASKED}"
    assert alert["severity"] == "warning"


# --- the console ---------------------------------------------------------------------------------------


async def _until(pilot: Any, check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


async def test_the_attention_inbox_shows_needs_you_first_and_clears_it(node: LocalNode) -> None:
    node.ok("report", "--agent", "broken", "--state", "failed", "--message", "exit 3")
    node.ok("report", "--agent", "coder", "--state", "waiting", "--message", ASKED)
    link = local_link(time.time, state_dir=str(node.state_dir))
    app = FleetDeckApp([link], config=Config(refresh_s=0.3), clock=time.time)
    async with app.run_test(size=(160, 48)) as pilot:
        await _until(pilot, lambda: app.screen.query(AttentionList), "the node screen's alerts panel")
        inbox = app.screen.query_one(AttentionList)
        await _until(pilot, lambda: inbox.row_count >= 2, "both alerts listed")
        first = [cell.plain for cell in inbox.get_row_at(0)]
        assert first[0] == "⏸ YOU" and "agent:coder" in first and f"needs you: {ASKED}" in first[-1]
        assert inbox.get_row_at(1)[0].plain == "✖ CRIT"
        node.ok("report", "--agent", "coder", "--state", "running", "--message", "deleting build/")

        def answered() -> bool:
            return not any(
                "needs you" in cell.plain for r in range(inbox.row_count) for cell in inbox.get_row_at(r)
            )

        await _until(pilot, answered, "the waiting alert gone once the agent runs again")


def test_the_fleet_table_counts_the_waiting_agents_of_a_node() -> None:
    agents = (
        Agent(id="a", name="a", state="waiting", health="healthy", message="input"),
        Agent(id="b", name="b", state="waiting", health="healthy"),
        Agent(id="c", name="c", state="running", health="healthy"),
    )
    row = FleetRow(
        name="n1", environment="dev", freshness="live", freshness_text="live", snapshot=_snapshot(*agents)
    )
    healthy = row_cells(row)[COLUMNS.index("Healthy")]
    assert isinstance(healthy, Text) and healthy.plain == "3/3 · 2 waiting"
    none_waiting = FleetRow(
        name="n1", environment="dev", freshness="live", freshness_text="live", snapshot=_snapshot(agents[2])
    )
    assert "waiting" not in str(row_cells(none_waiting)[COLUMNS.index("Healthy")])
