"""The "waiting" state (an agent that needs a human) through the real command line and the reporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.local.reporter import AgentReporter
from backends.local.store import Store

from .agents.local_node import LocalNode

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
