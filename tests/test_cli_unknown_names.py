"""Every command fails the same way for a name that is not there, through the real command line: an unknown
node, an unknown agent, a program that does not exist, a state directory that does not exist, an invalid
agent name; and `fleetdeck run` leaves with an exit status a script can act on."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from .agents.local_node import LocalNode, wait_for
from .conftest import one_line_error

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals")


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


# --- an unknown node -------------------------------------------------------------------------------------


def test_an_unknown_node_is_refused_alike_by_every_command(node: LocalNode, tmp_path: Path) -> None:
    node.ok("report", "--agent", "somebody", "--state", "running")
    expected = one_line_error(node.cli("agents", "--node", "nosuch"))
    assert "nosuch" in expected
    out = tmp_path / "screen.txt"
    for args in (
        ("status", "--node", "nosuch"),
        ("status", "--node", "nosuch", "--json"),
        ("snapshot", "--node", "nosuch", "--size", "80x24", "-o", str(out)),
        ("logs", "--node", "nosuch"),
        ("tasks", "--node", "nosuch"),
        ("pause", "somebody", "--node", "nosuch"),
        ("checkpoint", "--node", "nosuch"),
    ):
        result = node.cli(*args)
        assert result.returncode == 2, (args, result.returncode, result.stdout)
        assert one_line_error(result) == expected, args
        assert result.stdout == "", f"{args}: nothing may be reported for a node that is not there"
    assert not out.exists(), "no screen was rendered"
    assert node.state("somebody") == "running", "the local node was not acted on instead"


def test_the_local_node_answers_to_its_name_without_a_config(node: LocalNode) -> None:
    node.ok("report", "--agent", "somebody", "--state", "running")
    assert "somebody" in node.ok("agents", "--node", "local")
    status = node.cli("status", "--node", "local")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("local (dev): OK")


# --- an unknown agent ------------------------------------------------------------------------------------


def test_logs_of_an_unknown_agent_fail_as_pause_does(node: LocalNode) -> None:
    node.ok("report", "--agent", "somebody", "--state", "running", "--log", "hello")
    paused = node.cli("pause", "nobody")
    assert paused.returncode == 1
    expected = one_line_error(paused)
    assert "'nobody'" in expected and "somebody" in expected  # it names who is there
    for args in (("logs", "--agent", "nobody"), ("logs", "--agent", "nobody", "--json")):
        result = node.cli(*args)
        assert result.returncode == 1, (args, result.returncode)
        assert one_line_error(result) == expected, args
        assert result.stdout == ""
    assert [r["message"] for r in node.logs("--agent", "somebody")] == ["hello"]


# --- a program that does not exist -----------------------------------------------------------------------


def test_run_of_a_missing_program_says_why_and_exits_127(node: LocalNode) -> None:
    result = node.cli("run", "--name", "ghost", "--", "/no/such/binary")
    assert result.returncode == 127, (result.returncode, result.stderr)
    line = one_line_error(result)
    assert line == "fleetdeck: cannot start '/no/such/binary': No such file or directory"
    agent = node.agent("ghost")
    assert agent is not None and agent["state"] == "failed"
    assert agent["health_reason"] == "cannot start '/no/such/binary': No such file or directory"
    errors = node.logs("--agent", "ghost", "--level", "error")
    assert [r["message"] for r in errors] == [
        "[fleetdeck] cannot start '/no/such/binary': No such file or directory"
    ]


def test_run_of_a_program_that_cannot_execute_exits_126(node: LocalNode, tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    result = node.cli("run", "--name", "noexec", "--", str(script))
    assert result.returncode == 126
    assert one_line_error(result) == f"fleetdeck: cannot start '{script}': Permission denied"
    assert node.state("noexec") == "failed"


# --- a state directory that does not exist ---------------------------------------------------------------


def test_a_missing_state_dir_is_refused_by_commands_that_read_or_act(node: LocalNode, tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    for args in (
        ("agents",),
        ("agents", "--json"),
        ("logs",),
        ("audit",),
        ("pause", "somebody"),
        ("checkpoint",),
    ):
        result = node.cli(*args, "--state-dir", str(typo))
        assert result.returncode == 2, (args, result.returncode, result.stderr)
        line = one_line_error(result)
        assert f"--state-dir {typo} does not exist" in line, line
        assert not typo.exists(), f"{args} created the state directory"
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    result = node.cli("agents", "--state-dir", str(not_a_dir))
    assert result.returncode == 2 and "is not a directory" in one_line_error(result)


def test_run_and_report_create_the_state_dir_they_are_given(node: LocalNode, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-node"
    run = node.cli("run", "--name", "once", "--state-dir", str(fresh), "--", sys.executable, "-c", "pass")
    assert run.returncode == 0, run.stderr
    assert "once" in node.ok("agents", "--state-dir", str(fresh))
    other = tmp_path / "reported-node"
    node.ok("report", "--agent", "r1", "--state", "running", "--state-dir", str(other))
    assert "r1" in node.ok("agents", "--state-dir", str(other))


# --- an invalid or taken agent name ----------------------------------------------------------------------


def test_an_invalid_agent_name_is_a_usage_error_and_runs_nothing(node: LocalNode, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = node.cli("run", "--name", "bad name!", "--", "touch", str(marker))
    assert result.returncode == 2
    assert "'bad name!' is not valid" in one_line_error(result)
    assert not marker.exists(), "the command must not run under a name that is refused"
    assert node.json("agents") == []


def test_a_name_live_under_another_supervisor_is_refused_before_the_command_runs(
    node: LocalNode, tmp_path: Path
) -> None:
    first = node.start_python("worker", "sleeper.py")
    pid = node.wait_running("worker")["pid"]
    marker = tmp_path / "second-copy-ran"
    result = node.cli("run", "--name", "worker", "--", "touch", str(marker))
    assert result.returncode == 1
    assert "already running under supervisor pid" in one_line_error(result)
    assert not marker.exists(), "a second copy of the agent must not start"
    agent = node.agent("worker")
    assert agent is not None and (agent["state"], agent["pid"]) == ("running", pid)
    assert first.poll() is None, "the first supervisor is untouched"


# --- what `fleetdeck run` exits with ---------------------------------------------------------------------


def test_run_exits_143_after_an_operator_stop_and_says_so_in_its_help(node: LocalNode) -> None:
    run = node.start_python("napper", "sleeper.py")
    node.wait_running("napper")
    node.ok("stop", "napper", "--yes")
    assert run.wait(timeout=60) == 128 + signal.SIGTERM == 143
    agent = node.agent("napper")
    assert agent is not None and agent["state"] == "stopped"
    help_text = node.ok("run", "--help")
    assert "exit status:" in help_text and "143 after `fleetdeck stop`" in help_text
    assert "127 there is no such command" in help_text


def test_run_exits_137_when_the_agent_had_to_be_killed(node: LocalNode) -> None:
    run = node.start_python("stubborn", "stubborn.py", options=("--grace", "0.5"))
    node.wait_running("stubborn")
    node.ok("stop", "stubborn", "--yes")
    assert run.wait(timeout=60) == 128 + signal.SIGKILL


def test_run_passes_on_the_agent_s_own_code_when_it_handles_the_stop(node: LocalNode) -> None:
    graceful = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    graceful += "print('ready', flush=True)\nwhile True: time.sleep(0.1)\n"
    run = node.start("graceful", sys.executable, "-c", graceful)
    node.wait_running("graceful")
    wait_for(lambda: any(r["message"] == "ready" for r in node.logs("--agent", "graceful")), "ready")
    node.ok("stop", "graceful", "--yes")
    assert run.wait(timeout=60) == 0, "an agent that ends cleanly on SIGTERM gives its own code"
