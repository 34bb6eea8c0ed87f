"""A failed agent cannot be paused or resumed, on every path (CLI, a phase, the node's HTTP API, the console's
`p`), and no such attempt hides the failure: the agent stays failed, its reason (the exit code) stays, and
`fleetdeck status` stays CRITICAL. A crash-looping agent, between two restarts, is a failure too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.node_api import ACTION_PATHS
from console.app import FleetDeckApp
from console.core.config import Config
from console.core.fleet_setup import local_link
from console.screens.node import NodeScreen
from widgets.agents_table import AgentsTable

from .agents.local_node import LocalNode
from .conftest import one_line_error
from .serving import ServedNode, owner_auth, same_state_home

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals")

EXIT_3 = "raise SystemExit(3)"
FAILED_LINE = "agent c2 is failed (exited with code 3)"


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def failed_c2(node: LocalNode) -> None:
    """`fleetdeck run --name c2 -- python -c 'raise SystemExit(3)'`: an agent that fails at once."""
    run = node.start("c2", sys.executable, "-c", EXIT_3)
    assert run.wait(timeout=60) == 3
    agent = node.wait_agent("c2", lambda a: a["state"] == "failed", "failed")
    assert agent["health_reason"] == "exited with code 3", "the exit code quoted is the agent's own"


def assert_still_failed(node: LocalNode) -> None:
    agent = node.agent("c2")
    assert agent is not None
    assert (agent["state"], agent["health"], agent["health_reason"]) == (
        "failed",
        "unhealthy",
        "exited with code 3",
    )
    status = node.cli("status")
    assert status.returncode == 2, status.stdout
    assert "critical local agent:c2: exited with code 3" in status.stdout


# --- the command line ------------------------------------------------------------------------------------


def test_pause_and_resume_of_a_failed_agent_are_refused_and_keep_the_failure(node: LocalNode) -> None:
    failed_c2(node)
    assert_still_failed(node)
    for action in ("pause", "resume", "pause"):
        result = node.cli(action, "c2")
        assert result.returncode == 1, (action, result.stdout)
        line = one_line_error(result)
        assert FAILED_LINE in line and "nothing was changed" in line, line
        assert_still_failed(node)
    trail = [(e["action"], e["outcome"]) for e in node.audit()]
    assert trail == [("pause", "failed"), ("resume", "failed"), ("pause", "failed")]
    assert FAILED_LINE in node.audit()[0]["detail"]


def test_a_crash_looping_agent_is_critical_and_cannot_be_paused_between_restarts(node: LocalNode) -> None:
    run = node.start("looper", sys.executable, "-c", EXIT_3, options=("--restart", "on-failure"))
    # the fourth backoff is 8 s: room for the commands below while no process runs
    node.wait_agent(
        "looper", lambda a: a["state"] == "starting" and a["restarts"] >= 4, "in its 4th backoff", timeout=90
    )
    status = node.cli("status")
    assert status.returncode == 2, status.stdout
    assert "critical local agent:looper: exited with code 3; restarting" in status.stdout
    paused = node.cli("pause", "looper")
    assert paused.returncode == 1
    assert "agent looper is restarting (exited with code 3): no process runs to pause" in one_line_error(
        paused
    )
    resumed = node.cli("resume", "looper")
    assert resumed.returncode == 1
    assert "not paused: there is nothing to resume" in one_line_error(resumed)
    agent = node.agent("looper")
    assert agent is not None
    assert (agent["state"], agent["health"], agent["pid"]) == ("starting", "unhealthy", None)
    assert agent["health_reason"] == "exited with code 3; restarting"
    node.ok("stop", "looper", "--yes")
    assert run.wait(timeout=60) == 3, "stopped while waiting to restart: the code of the run that failed"


def test_a_phase_pause_pauses_the_live_agents_and_leaves_the_failed_one_failed(
    node: LocalNode, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "t"\n[[phases]]\nid = "build"\nname = "Build"\nagents = ["c2", "w1"]\n')
    node.ok("plan", "apply", str(plan))
    failed_c2(node)
    node.start_python("w1", "sleeper.py")
    node.wait_running("w1")
    node.ok("pause", "phase:build", "--yes")
    assert node.state("w1") == "paused"
    assert_still_failed(node)
    phase_entry = next(e for e in node.audit() if e["target"] == "phase:build")
    assert FAILED_LINE in phase_entry["detail"], phase_entry
    node.ok("resume", "phase:build")
    assert node.state("w1") == "running"
    assert_still_failed(node)


# --- the node's HTTP API ---------------------------------------------------------------------------------


def test_the_http_api_refuses_it_too_and_a_remote_cli_exits_1(node: LocalNode, tmp_path: Path) -> None:
    failed_c2(node)
    env = same_state_home(node.env)
    with ServedNode("--listen", "127.0.0.1:0", env=env, cwd=node.tmp_path) as served:
        for action in ("pause", "resume"):
            answer = httpx.post(
                f"{served.url}{ACTION_PATHS[action]}", json={"target": "agent:c2"}, headers=owner_auth()
            )
            assert answer.status_code == 409, answer.text
            assert FAILED_LINE in answer.json()["detail"]
        snapshot = httpx.get(f"{served.url}/v1/snapshot", headers=owner_auth()).json()
        c2 = next(a for a in snapshot["agents"] if a["id"] == "c2")
        assert (c2["state"], c2["health_reason"]) == ("failed", "exited with code 3")

        config = tmp_path / "remote.toml"
        config.write_text(f'[[nodes]]\nname = "remote"\nbackend = "http"\nurl = "{served.url}"\n')
        result = subprocess.run(
            [sys.executable, "-m", "console", "--config", str(config), "pause", "c2", "--node", "remote"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        assert FAILED_LINE in one_line_error(result)
    assert_still_failed(node)


# --- the console's `p` -----------------------------------------------------------------------------------


async def until(pilot: Any, check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


async def cursor_to(pilot: Any, table: AgentsTable, agent_id: str) -> None:
    for _ in range(table.row_count):
        await pilot.press("up")
    for _ in range(table.row_count + 1):
        agent = table.agent_at_cursor()
        if agent is not None and agent.id == agent_id:
            return
        await pilot.press("down")
    raise AssertionError(f"no row for {agent_id}")


def messages(app: FleetDeckApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_p_on_a_failed_row_is_off_and_says_why(node: LocalNode) -> None:
    failed_c2(node)
    node.start_python("w1", "sleeper.py")
    node.wait_running("w1")
    link = local_link(time.time, state_dir=str(node.state_dir))
    app = FleetDeckApp([link], config=Config(operator="alice", refresh_s=0.3), clock=time.time)
    calls: list[Any] = []
    pause = link.backend.pause

    async def counted_pause(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        await pause(*args, **kwargs)

    link.backend.pause = counted_pause  # type: ignore[method-assign]
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, NodeScreen) and link.snapshot, "the node screen")
        table = app.screen.query_one(AgentsTable)
        await until(pilot, lambda: table.row_count == 2, "both agents listed")
        await table_focus(pilot, table)
        await cursor_to(pilot, table, "c2")
        screen = app.screen
        assert screen.check_action("pause_resume", ()) is None, "p is shown off on a failed row"
        app.clear_notifications()
        await pilot.press("p")
        await pilot.pause()
        assert messages(app) == [f"pause is disabled: {FAILED_LINE}; only a live agent can be paused"], (
            messages(app)
        )
        assert calls == [], "nothing was sent to the node"

        # marked with a live agent: the live one is paused, the failed one left out and named
        await cursor_to(pilot, table, "w1")
        assert screen.check_action("pause_resume", ()) is True
        await pilot.press("space")
        await cursor_to(pilot, table, "c2")
        await pilot.press("space")
        app.clear_notifications()
        await pilot.press("p")

        def w1_paused() -> bool:
            agents = link.snapshot.agents if link.snapshot else ()
            return any(a.id == "w1" and a.state == "paused" for a in agents)

        await until(pilot, w1_paused, "w1 paused on screen")
        assert [target.id for target, *_ in calls] == ["w1"]
        assert any("left out" in m and FAILED_LINE in m for m in messages(app)), messages(app)
    assert node.state("w1") == "paused"
    assert_still_failed(node)
    assert [(e["action"], e["target"]) for e in node.audit()] == [("pause", "agent:w1")]


async def table_focus(pilot: Any, table: AgentsTable) -> None:
    table.focus()
    await pilot.pause()


def test_the_failure_reason_is_the_agent_s_own_exit_code(node: LocalNode) -> None:
    for code in (3, 1, 77):
        run = node.start(f"exit-{code}", sys.executable, "-c", f"raise SystemExit({code})")
        assert run.wait(timeout=60) == code
        agent = node.wait_agent(f"exit-{code}", lambda a: a["state"] == "failed", "failed")
        assert agent["health_reason"] == f"exited with code {code}"
    status = node.cli("status", "--json")
    assert status.returncode == 2
    shown = json.loads(status.stdout)
    reasons = {a["reason"] for n in shown["nodes"] for a in n["alerts"]}
    assert {"exited with code 3", "exited with code 1", "exited with code 77"} <= reasons
