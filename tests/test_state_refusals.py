"""Actions on an agent in a state that cannot take them are refused and change nothing; a damaged store
gives its one line and is left as it was."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import sys
from pathlib import Path

import pytest

from backends.errors import Conflict
from backends.local.actions import Actions
from backends.local.store import Store
from backends.model import Target

from .agents.local_node import LocalNode
from .conftest import one_line_error

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals")


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("stopped", "pause"),
        ("failed", "pause"),
        ("stopped", "resume"),
        ("failed", "resume"),
        ("running", "resume"),
        ("failed", "stop"),
        ("stopping", "pause"),
    ],
)
def test_an_action_the_state_cannot_take_is_refused_and_changes_nothing(
    tmp_path: Path, state: str, action: str
) -> None:
    with Store(tmp_path / "node") as store:
        store.register_agent("a1", kind="reporting", state="running")
        store.set_agent_state("a1", state, message="as it was")
        actions = Actions(store, tmp_path / "node", node="local", read_only=False, python=sys.executable)
        with pytest.raises(Conflict, match=f"agent a1 is (already )?{state}"):
            actions.control(action, Target(kind="agent", id="a1"), "tester", None)
        record = store.agent_record("a1")
        assert (record.state, record.message) == (state, "as it was")
        assert not store.take_commands("a1"), "a refused action must not queue a command"
        assert store.audit_since(0)[-1].outcome == "failed"


def test_pausing_a_failed_supervised_agent_keeps_the_failure_visible(node: LocalNode) -> None:
    node.start("c2", sys.executable, "-c", "raise SystemExit(3)")
    node.wait_agent("c2", lambda a: a["state"] == "failed", "failed")
    assert node.cli("status").returncode == 2
    result = node.cli("pause", "c2", "--yes")
    assert result.returncode == 1
    assert "c2 is failed" in one_line_error(result)
    agent = node.agent("c2")
    assert agent is not None and agent["state"] == "failed"
    assert agent["health_reason"] == "exited with code 3"
    assert node.cli("status").returncode == 2, "the refused pause must not hide the failure"


def test_a_paused_agent_whose_supervisor_died_cannot_be_resumed_into_nothing(node: LocalNode) -> None:
    """A row left 'running' by a supervisor killed with its agent: nothing to pause, said so."""
    with Store(node.state_dir) as store:
        store.register_agent(
            "ghost", kind="process", state="running", pid=2**22 - 3, supervisor_pid=2**22 - 5
        )
    result = node.cli("pause", "ghost", "--yes")
    assert result.returncode == 1
    assert "no process left" in one_line_error(result)


# --- a damaged store -------------------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damaged_store(node: LocalNode, damage: str, seed: int = 0) -> Path:
    """A store with a few agents and log lines, checkpointed into the main file, then damaged."""
    with Store(node.state_dir) as store:
        for i in range(30):
            store.register_agent(f"a{i}", kind="reporting", state="running", labels={"role": f"r{i}"})
            store.heartbeat(f"a{i}", message=f"message number {i}")
            store.log(f"a{i}", "info", f"line number {i}")
    path = node.state_dir / "fleetdeck.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    if damage == "text":  # bytes that are not UTF-8 inside a text column
        at = data.find(b"message number 17")
        data[at : at + 7] = b"\xff\xfe\xfd\xfc\xfb\xfa\xf9"
    elif damage == "json":  # a JSON column that no longer parses
        at = data.find(b'{"role":"r12"}')
        data[at : at + 8] = b'{"role"\x01'
    else:  # random bytes somewhere past the header
        rng = random.Random(seed)
        for _ in range(4):
            at = rng.randrange(100, len(data) - 64)
            data[at : at + 64] = bytes(rng.randrange(256) for _ in range(64))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", ["text", "json", "random-1", "random-2", "random-3"])
def test_a_damaged_store_gives_one_line_and_is_left_untouched(node: LocalNode, damage: str) -> None:
    path = damaged_store(node, damage, seed=int(damage.split("-")[-1]) if "-" in damage else 0)
    before = digest(path)
    for command in (["agents"], ["logs"], ["status"], ["audit"], ["checkpoints"], ["agents", "--json"]):
        result = node.cli(*command)
        text = result.stdout + result.stderr
        assert "internal error" not in text and "Traceback" not in text, (command, text)
        if result.returncode != 0:
            line = one_line_error(result) if "status" not in command else result.stdout
            assert "is not a readable fleetdeck database" in line and "left untouched" in line, (
                command,
                line,
            )
    assert digest(path) == before, "reading a damaged store must not change it"


# --- what a dispatcher starts, it reaps ---------------------------------------------------------------------


def test_dispatched_supervisors_are_reaped_by_the_process_that_started_them(node: LocalNode) -> None:
    """The console and the node server are long-lived: each ended supervisor must not stay a zombie."""
    from backends.model import DispatchRequest

    from .agents.local_node import proc_state, wait_for

    with Store(node.state_dir) as store:
        actions = Actions(store, node.state_dir, node="local", read_only=False, python=sys.executable)
        pids = []
        for i in range(5):
            request = DispatchRequest(command=(sys.executable, "-c", "pass"), name=f"short-{i}")
            task = actions.dispatch(request, "tester", None)
            pids.append(task.result["supervisor_pid"])
        for i in range(5):
            wait_for(lambda i=i: store.agent_record(f"short-{i}").state == "stopped", f"short-{i} to end")
        wait_for(lambda: all(proc_state(pid) is None for pid in pids), "every supervisor to be reaped", 10)


def test_a_read_only_node_refuses_every_action_and_audits_it_as_denied(tmp_path: Path) -> None:
    from backends.errors import Forbidden

    with Store(tmp_path / "node") as store:
        store.register_agent("a1", kind="reporting", state="running")
        actions = Actions(store, tmp_path / "node", node="local", read_only=True, python=sys.executable)
        attempts = [
            lambda: actions.control("pause", Target(kind="agent", id="a1"), "tester", None),
            lambda: actions.checkpoint("label", "tester", None),
            lambda: actions.rollback("ck-none", "tester", None),
        ]
        for attempt in attempts:
            with pytest.raises(Forbidden, match="node local is read-only"):
                attempt()
        assert [(e.action, e.outcome) for e in store.audit_since(0)] == [
            ("pause", "denied"),
            ("checkpoint", "denied"),
            ("rollback", "denied"),
        ]
        assert store.agent_record("a1").state == "running"
        assert store.checkpoints() == []
