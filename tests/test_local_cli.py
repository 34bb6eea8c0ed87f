"""The local node through the real command line: real supervised processes, real signals, real git.

Each test gets its own state dir (FLEETDECK_STATE_DIR) and XDG dirs; every process it starts is found by that
state dir afterwards and ended, so nothing outlives a test. Waits are polls with generous deadlines; no test
asserts how long anything took.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import stat
import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil
import pytest

from .agents.local_node import LocalNode, gone, proc_state, script, wait_for
from .conftest import one_line_error

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses signals")

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.toml"


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


@pytest.fixture(autouse=True)
def _leave_nothing_behind(node: LocalNode) -> None:
    """Every test here, whether it asks for the node or not, ends with the node's processes reaped."""


def own_messages(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The agent's own lines, without the supervisor's "[fleetdeck] ..." ones."""
    return [r for r in records if not (r["fields"] or {}).get("supervisor")]


# --- 1. supervised agents --------------------------------------------------------------------------------


def test_run_supervises_a_sleeper_and_shows_its_pid(node: LocalNode) -> None:
    run = node.start_python("sleeper", "sleeper.py")
    agent = node.wait_running("sleeper")
    assert agent["kind"] == "process"
    process = psutil.Process(agent["pid"])
    assert script("sleeper.py") in process.cmdline()
    assert process.ppid() == run.pid, "the `fleetdeck run` process is the agent's supervisor"
    agent = node.wait_agent(
        "sleeper", lambda a: a["last_heartbeat"] is not None and a["rss_bytes"], "heartbeating with its RSS"
    )
    assert agent["health"] == "healthy" and agent["pid"] == process.pid
    assert run.poll() is None, "the supervisor runs as long as its agent"


def test_log_lines_keep_their_level_order_and_fields(node: LocalNode) -> None:
    count = 200
    run = node.start_python("spammer", "spammer.py", str(count))
    assert run.wait(timeout=60) == 0  # `fleetdeck run` exits with the agent's code
    records = node.logs("--agent", "spammer")
    seqs = [r["seq"] for r in records]
    assert all(a < b for a, b in pairwise(seqs)), "seq must be strictly increasing"
    assert {r["source"] for r in records} == {"spammer"}

    own = own_messages(records)
    stdout = [r for r in own if (r["fields"] or {}).get("stream") != "stderr"]
    expected = []
    for i in range(count):
        expected.append(
            [
                ("info", f"json info {i}"),
                ("warning", f"json warning {i}"),
                ("error", f"ERROR: plain error {i}"),
                ("info", f"plain text {i}"),
            ][i % 4]
        )
    assert [(r["level"], r["message"]) for r in stdout] == expected, "every line, in order, at its level"
    assert [r["fields"]["i"] for r in stdout if r["message"].startswith("json")] == [
        i for i in range(count) if i % 4 < 2
    ], "a JSON line's other keys become fields"
    stderr = [(r["level"], r["message"]) for r in own if (r["fields"] or {}).get("stream") == "stderr"]
    assert stderr == [("warning", "WARNING: one line on stderr")]

    errors = node.logs("--agent", "spammer", "--level", "error")
    assert [r["message"] for r in errors] == [f"ERROR: plain error {i}" for i in range(count) if i % 4 == 2]
    assert node.state("spammer") == "stopped"


def test_a_crashing_agent_is_restarted_with_backoff(node: LocalNode) -> None:
    run = node.start_python("crasher", "crasher.py", "1.5", options=("--restart", "on-failure"))
    states: set[str] = set()
    restarts: list[int] = []

    def restarted_twice_seen_both_ways() -> bool:
        agent = node.agent("crasher")
        if agent is None:
            return False
        states.add(agent["state"])
        restarts.append(agent["restarts"])
        return agent["restarts"] >= 2 and {"starting", "running"} <= states

    wait_for(
        restarted_twice_seen_both_ways, "two restarts, seen starting and running", timeout=60, interval=0.05
    )
    assert restarts == sorted(restarts), "the restart counter only grows"
    assert states <= {"starting", "running"}, "a restarting agent is never shown stopped or failed"

    messages = [r["message"] for r in node.logs("--agent", "crasher")]
    assert sum("[fleetdeck] exited with code 1; restarting" in m for m in messages) >= 2
    assert messages.count("attempt starting") >= 2
    assert sum(m.startswith("[fleetdeck] started pid") for m in messages) >= 2

    node.ok("stop", "crasher", "--yes")
    node.wait_agent("crasher", lambda a: a["state"] == "stopped", "stopped")
    run.wait(timeout=30)


# --- 2. pause and resume -----------------------------------------------------------------------------------


def test_pause_stops_the_process_group_and_resume_continues_it(node: LocalNode) -> None:
    node.use_operator("alice")
    node.start_python("napper", "sleeper.py", "--child")
    pid = node.wait_running("napper")["pid"]
    ready = wait_for(
        lambda: [r["message"] for r in node.logs("--agent", "napper") if r["message"].startswith("ready")],
        "the agent's ready line",
    )
    child = int(ready[0].rpartition("child=")[2])
    assert psutil.Process(child).ppid() == pid

    assert node.ok("pause", "napper", "--reason", "look at it").strip() == "pause agent:napper: ok"
    # the whole group is stopped: the agent and the child it started
    wait_for(lambda: proc_state(pid) == "T" and proc_state(child) == "T", "both processes in state T")
    agent = node.agent("napper")
    assert agent is not None and (agent["state"], agent["pid"]) == ("paused", pid)

    assert node.ok("resume", "napper").strip() == "resume agent:napper: ok"
    wait_for(lambda: proc_state(pid) in ("S", "R") and proc_state(child) in ("S", "R"), "both running again")
    assert node.state("napper") == "running"

    trail = [
        (e["action"], e["target"], e["operator"], e["outcome"], e["reason"])
        for e in node.audit()
        if e["action"] in ("pause", "resume")
    ]
    assert trail == [
        ("pause", "agent:napper", "alice", "ok", "look at it"),
        ("resume", "agent:napper", "alice", "ok", None),
    ]


# --- 3. stop escalates ------------------------------------------------------------------------------------


def test_stop_escalates_to_sigkill_for_an_agent_that_ignores_sigterm(node: LocalNode) -> None:
    run = node.start_python("stubborn", "stubborn.py", options=("--grace", "1"))
    pid = node.wait_running("stubborn")["pid"]
    # only once it ignores SIGTERM does the test prove anything
    wait_for(
        lambda: any(r["message"] == "ignoring SIGTERM now" for r in node.logs("--agent", "stubborn")),
        "the agent to ignore SIGTERM",
    )
    result = node.cli("stop", "stubborn", "--yes")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: gone(pid), f"pid {pid} to be gone", timeout=20)
    agent = node.wait_agent("stubborn", lambda a: a["state"] == "stopped", "stopped")
    assert agent["pid"] is None
    messages = [r["message"] for r in node.logs("--agent", "stubborn")]
    assert any("did not exit within 1 s of SIGTERM; SIGKILL" in m for m in messages), messages
    run.wait(timeout=20)


# --- 4. dispatch starts a detached agent ----------------------------------------------------------------


def test_a_dispatched_command_outlives_its_dispatcher(node: LocalNode) -> None:
    command = shlex.join([sys.executable, "-c", "import time\nwhile True: time.sleep(0.2)"])
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "console", "dispatch", "--command", command, "--name", "worker", "--json"],
        env=node.env,
        cwd=node.tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = dispatcher.communicate(timeout=60)
    assert dispatcher.returncode == 0, err
    task = json.loads(out)
    assert (task["target"], task["status"], task["result"]["agent"]) == (
        "agent:worker",
        "succeeded",
        "worker",
    )
    supervisor_pid = task["result"]["supervisor_pid"]

    agent = node.wait_running("worker")  # the dispatcher has exited: the agent still comes up
    assert psutil.Process(agent["pid"]).ppid() == supervisor_pid
    supervisor = psutil.Process(supervisor_pid)
    assert supervisor.ppid() != dispatcher.pid, "reparented: the dispatching CLI is gone"
    assert os.getsid(supervisor_pid) == supervisor_pid, "the supervisor leads its own session"
    assert os.getsid(supervisor_pid) != os.getsid(0)
    assert supervisor_pid not in {p.pid for p in psutil.Process().children(recursive=True)}
    assert [t["id"] for t in node.json("tasks")] == [task["id"]]
    assert [(e["action"], e["outcome"]) for e in node.audit()] == [("dispatch", "ok")]

    node.ok("stop", "worker", "--yes")
    wait_for(lambda: gone(agent["pid"]) and gone(supervisor_pid), "the worker and its supervisor to end")
    assert node.state("worker") == "stopped"


# --- 5. git workspace checkpoint and rollback --------------------------------------------------------------


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=check
    )


def tree(root: Path) -> dict[str, Any]:
    """path -> (bytes, executable) for files, "dir" for directories; .git left out."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_dir():
            found[rel] = "dir"
        else:
            found[rel] = (path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return found


def make_repo(repo: Path) -> None:
    (repo / "src").mkdir(parents=True)
    (repo / "data").mkdir()
    (repo / "README.md").write_text("hello\n")
    (repo / "src" / "app.py").write_text("print('v1')\n")
    (repo / "data" / "blob.bin").write_bytes(bytes(range(256)) * 8 + b"\r\n\x00end")
    (repo / "doomed.txt").write_text("delete me\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (repo / "run.sh").chmod(0o755)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    # uncommitted work at checkpoint time belongs to the checkpoint too: unstaged, staged and untracked
    (repo / "README.md").write_text("hello, edited but not committed\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "notes.txt").write_text("untracked notes\n")


def test_rollback_restores_a_git_workspace_byte_for_byte(node: LocalNode, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    node.start_python("coder", "sleeper.py", options=("--workspace", str(repo)))
    node.wait_running("coder")

    checkpoint = node.json("checkpoint", "--label", "x")
    assert checkpoint["label"] == "x" and f"workspace:{repo}" in checkpoint["covers"]
    before = tree(repo)

    (repo / "README.md").write_text("rewritten\n")
    (repo / "src" / "app.py").write_text("print('v2')\n")
    (repo / "data" / "blob.bin").write_bytes(b"\x00" * 10)
    (repo / "doomed.txt").unlink()
    (repo / "notes.txt").unlink()
    (repo / "run.sh").chmod(0o644)
    (repo / "new.txt").write_text("new file\n")
    (repo / "newdir" / "deep").mkdir(parents=True)
    (repo / "newdir" / "deep" / "x.bin").write_bytes(b"\x01\x02")
    later = tree(repo)
    assert later != before

    result = node.cli("rollback", checkpoint["id"], "--yes")
    assert result.returncode == 0, result.stderr
    undo = re.search(r"undo with: fleetdeck rollback (\S+)", result.stdout)
    assert undo, result.stdout
    assert tree(repo) == before, "the working tree is byte-identical to the checkpoint"
    assert not (repo / "new.txt").exists() and not (repo / "newdir").exists()
    node.wait_running("coder")  # held during the rollback, running again after it

    result = node.cli("rollback", undo[1], "--yes")
    assert result.returncode == 0, result.stderr
    assert tree(repo) == later, "the safety checkpoint undoes the rollback exactly"

    # a merge stopped on a conflict: a rollback now would wreck it, so it is refused and nothing changes
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "later work")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "README.md").write_text("side\n")
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main")
    assert git(repo, "merge", "side", check=False).returncode != 0
    assert (repo / ".git" / "MERGE_HEAD").exists()
    conflicted = tree(repo)
    head = git(repo, "rev-parse", "HEAD").stdout
    checkpoints = node.json("checkpoints")

    refused = node.cli("rollback", checkpoint["id"], "--yes")
    assert refused.returncode == 1
    assert "merge in progress" in one_line_error(refused)
    assert tree(repo) == conflicted
    assert (repo / ".git" / "MERGE_HEAD").exists() and git(repo, "rev-parse", "HEAD").stdout == head
    assert node.json("checkpoints") == checkpoints, "no safety checkpoint for a refused rollback"
    assert node.state("coder") == "running"

    trail = [
        (e["action"], e["target"], e["outcome"])
        for e in node.audit()
        if e["action"] in ("checkpoint", "rollback")
    ]
    assert trail == [
        ("checkpoint", None, "ok"),
        ("rollback", f"checkpoint:{checkpoint['id']}", "ok"),
        ("rollback", f"checkpoint:{undo[1]}", "ok"),
        ("rollback", f"checkpoint:{checkpoint['id']}", "failed"),
    ]
    assert "merge in progress" in node.audit()[-1]["detail"]


# --- 11. bad input ---------------------------------------------------------------------------------------


UNKNOWN_NAMES = (
    (("pause", "nobody"), "nobody"),
    (("resume", "agent:nobody"), "nobody"),
    (("stop", "agent:nobody", "--yes"), "nobody"),
    (("pause", "task:t-nope"), "t-nope"),
    (("stop", "phase:nope", "--yes"), "nope"),
    (("rollback", "cp-nope", "--yes"), "cp-nope"),
    (("dispatch", "--agent", "nobody", "--payload", "{}"), "nobody"),
)


def test_unknown_agent_task_or_checkpoint_is_one_line_and_exit_1(node: LocalNode) -> None:
    node.start_python("somebody", "sleeper.py")
    node.wait_running("somebody")
    node.ok("checkpoint", "--label", "known")
    for args, named in UNKNOWN_NAMES:
        result = node.cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        line = one_line_error(result)
        assert named in line, (args, line)
    assert node.state("somebody") == "running"
    assert node.json("tasks") == [], "no task was queued for a typo"
    outcomes = [(e["action"], e["outcome"]) for e in node.audit()]
    assert outcomes[0] == ("checkpoint", "ok")
    assert len(outcomes) == 1 + len(UNKNOWN_NAMES), "every refused action is in the audit trail"
    assert set(outcomes[1:]) <= {
        (action, "failed") for action in ("pause", "resume", "stop", "rollback", "dispatch")
    }


def test_a_malformed_plan_names_file_line_and_key_and_applies_nothing(
    node: LocalNode, tmp_path: Path
) -> None:
    node.ok("plan", "apply", str(EXAMPLE_PLAN))
    before = node.json("phases")
    text = EXAMPLE_PLAN.read_text()
    bad_line = 'op = "about"'
    bad = tmp_path / "bad-plan.toml"
    # the first criterion with an operator gets one no one knows
    bad.write_text(text.replace('op = "<"', bad_line, 1))
    line_no = bad.read_text().splitlines().index("    " + bad_line) + 1

    result = node.cli("plan", "apply", str(bad))
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"{bad}:{line_no}" in line, line
    assert "phases[0].milestones[0].criteria[1].op" in line, line
    assert node.json("phases") == before, "nothing of the bad plan was applied"
    assert [e["action"] for e in node.audit()] == ["plan.apply"]


def test_applying_a_plan_twice_is_idempotent_and_keeps_milestone_status(node: LocalNode) -> None:
    first = json.loads(node.ok("plan", "apply", str(EXAMPLE_PLAN), "--json"))
    assert len(first) == 5
    node.ok(
        "report", "--agent", "planner-01", "--milestone", "w1-store", "--passed",
        "--criterion", "Store write latency=7", "--criterion", "Schema round trip=100% exact",
    )  # fmt: skip
    marked = node.json("phases")
    w1 = marked[0]["milestones"][0]
    assert w1["status"] == "passed"
    latency = next(c for c in w1["criteria"] if c["name"] == "Store write latency")
    assert latency["actual"].startswith("7") and latency["passed"] is True

    again = node.cli("plan", "apply", str(EXAMPLE_PLAN))
    assert again.returncode == 0, again.stderr
    assert node.json("phases") == marked


def test_usage_errors_exit_2_with_one_line(node: LocalNode) -> None:
    verdict = node.cli("report", "--agent", "x", "--passed")
    assert verdict.returncode == 2
    assert "--milestone" in one_line_error(verdict)
    for args in (("run", "--name", "x"), ("run", "--name", "x", "--")):
        result = node.cli(*args)
        assert result.returncode == 2
        assert "no command" in one_line_error(result)
    assert node.json("agents") == [], "nothing was registered by a refused command"


def _store_file(node: LocalNode) -> Path:
    node.ok("agents")  # creates the store
    return node.state_dir / "fleetdeck.db"


def _refused_everywhere(node: LocalNode, db: Path, words: str) -> None:
    content = db.read_bytes()
    for args in (
        ("agents",),
        ("logs",),
        ("report", "--agent", "x", "--state", "running"),
        ("plan", "apply", str(EXAMPLE_PLAN)),
        ("run", "--name", "x", "--", "true"),
    ):
        result = node.cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        line = one_line_error(result)
        assert words in line and str(db) in line, line
    assert db.read_bytes() == content, "the store file was left untouched"


def test_a_store_from_a_newer_fleetdeck_is_refused_untouched(node: LocalNode) -> None:
    db = _store_file(node)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    _refused_everywhere(node, db, "newer fleetdeck")


def test_a_corrupt_store_is_refused_untouched(node: LocalNode) -> None:
    db = _store_file(node)
    db.write_bytes(b"this is not a database\n" * 200)
    _refused_everywhere(node, db, "not a readable fleetdeck database")


# --- 12. the console on this machine ----------------------------------------------------------------------


def test_snapshot_renders_the_local_node_without_a_config(node: LocalNode, tmp_path: Path) -> None:
    out = tmp_path / "x.txt"
    result = node.cli("snapshot", "--screen", "node", "--size", "80x24", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert len(text.splitlines()) == 24
    assert "local" in text
    assert "No agents on this node yet" in text and "fleetdeck run --name NAME" in text

    node.start_python("sleeper", "sleeper.py")
    node.wait_running("sleeper")
    result = node.cli("snapshot", "--screen", "node", "--size", "80x24", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "sleeper" in text and "No agents on this node yet" not in text
