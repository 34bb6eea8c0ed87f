"""`fleetdeck --read-only ACTION ...` acts on nothing: every action command, through the real command line,
on a real local node with a reporting agent, is refused in one line (exit 1) and leaves the node as it was;
the commands that only read still work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .agents.local_node import LocalNode
from .conftest import one_line_error

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local node reads /proc")

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.toml"

ACTIONS = [
    ("pause", "agent:x"),
    ("pause", "phase:p2-pilot", "--yes"),
    ("resume", "agent:x"),
    ("stop", "agent:x", "--yes"),
    ("checkpoint", "--label", "before"),
    ("rollback", "ck-none", "--yes"),
    ("rollback", "--recover"),
    ("dispatch", "--agent", "x", "--payload", '{"prompt": "go"}'),
    ("gate", "sign", "phase:p2-pilot", "--go", "--reason", "ship it"),
    ("plan", "apply", str(EXAMPLE_PLAN)),
]


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    local.ok("plan", "apply", str(EXAMPLE_PLAN))
    local.ok("report", "--agent", "x", "--state", "running", "--message", "working")
    yield local
    local.reap()


@pytest.mark.parametrize("args", ACTIONS, ids=lambda a: " ".join(a[:2]))
def test_the_global_read_only_flag_refuses_every_action(node: LocalNode, args: tuple[str, ...]) -> None:
    before = [(e["action"], e["outcome"]) for e in node.audit()]
    refused = node.cli("--read-only", *args)
    line = one_line_error(refused)
    assert refused.returncode == 1, (refused.returncode, line)
    assert "read-only" in line and "--read-only" in line, line
    assert node.state("x") == "running", "the agent was not touched"
    after = [(e["action"], e["outcome"]) for e in node.audit()]
    assert after == before, "nothing reached the node, so nothing is in its audit trail"
    assert not [c for c in node.json("checkpoints") if c.get("label") == "before"]
    (p2,) = [p for p in node.json("phases") if p["id"] == "p2-pilot"]
    assert p2["gate"]["signed"] is None and p2["status"] != "paused"


def test_reading_commands_still_work_read_only(node: LocalNode) -> None:
    assert "x" in node.ok("--read-only", "agents")
    assert node.cli("--read-only", "phases").returncode == 0
    assert node.cli("--read-only", "audit").returncode == 0
