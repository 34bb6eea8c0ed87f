"""A criterion without an actual is "not measured": never passed, and never behind an open gate.

Through the real command line on a real local node (SQLite store): ``report --passed`` is refused while a
criterion has no actual, and a milestone that holds an unmeasured criterion anyway (the plan grew one after
the sign-off) reads the same in ``phases``, ``phases --json`` and the console's phase board.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .agents.local_node import LocalNode
from .conftest import one_line_error
from .serving import ServedNode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local node reads /proc")

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.toml"

CRITERION = """
    [[phases.milestones.criteria]]
    name = "{name}"
    op = "<"
    value = {value}
    unit = "ms"
"""


def plan_file(path: Path, criteria: dict[str, int]) -> Path:
    text = 'name = "Load"\n\n[[phases]]\nid = "p1"\nname = "Load"\n\n'
    text += '  [[phases.milestones]]\n  id = "m1"\n  name = "Load test"\n'
    text += "".join(CRITERION.format(name=name, value=value) for name, value in criteria.items())
    path.write_text(text)
    return path


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def milestone(node: LocalNode, phase_id: str, milestone_id: str) -> dict:
    phase = next(p for p in node.json("phases") if p["id"] == phase_id)
    return next(m for m in phase["milestones"] if m["id"] == milestone_id)


def test_passing_a_milestone_with_unmeasured_criteria_is_refused_and_records_nothing(node: LocalNode) -> None:
    node.ok("plan", "apply", str(EXAMPLE_PLAN))
    refused = node.cli(
        "report", "--agent", "nightly-eval", "--milestone", "w7-load-test", "--passed",
        "--criterion", "P95 latency=97 ms",
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line = one_line_error(refused)
    assert "cannot pass" in line and "2 of its 3 criteria are not measured" in line, line
    assert "Error rate, Throughput" in line, line

    w7 = milestone(node, "p3-scale-out", "w7-load-test")
    assert w7["status"] == "pending", "a refused report records neither the verdict nor its actuals"
    assert [(c["actual"], c["passed"]) for c in w7["criteria"]] == [(None, None)] * 3

    node.ok(
        "report", "--agent", "nightly-eval", "--milestone", "w7-load-test", "--passed",
        "--criterion", "P95 latency=97 ms", "--criterion", "Error rate=0.1%",
        "--criterion", "Throughput=1300 rps",
    )  # fmt: skip
    w7 = milestone(node, "p3-scale-out", "w7-load-test")
    assert w7["status"] == "passed"
    assert [c["passed"] for c in w7["criteria"]] == [True, True, True]


def test_a_milestone_holding_an_unmeasured_criterion_never_reads_as_passed(
    node: LocalNode, tmp_path: Path
) -> None:
    two = {"P95 latency": 120, "P99 latency": 300}
    node.ok("plan", "apply", str(plan_file(tmp_path / "plan.toml", two)))
    node.ok(
        "report", "--agent", "load-1", "--milestone", "m1", "--passed",
        "--criterion", "P95 latency=97 ms", "--criterion", "P99 latency=210 ms",
    )  # fmt: skip
    (phase,) = node.json("phases")
    assert (phase["status"], phase["gate"]["decision"]) == ("done", "go")

    # The plan now asks for one more number, which nobody has reported.
    node.ok("plan", "apply", str(plan_file(tmp_path / "plan.toml", {**two, "P99.9 latency": 900})))
    (phase,) = node.json("phases")
    (m1,) = phase["milestones"]
    assert m1["status"] == "active", "never passed while a criterion is not measured"
    assert [(c["name"], c["passed"]) for c in m1["criteria"]] == [
        ("P95 latency", True),
        ("P99 latency", True),
        ("P99.9 latency", None),
    ]
    assert phase["status"] == "active" and phase["progress"] == 0 and phase["finished_at"] is None
    gate = phase["gate"]
    assert (gate["decision"], gate["reasons"]) == ("pending", ["waiting for Load test (1 not measured)"])
    assert gate["since"] is not None, "the decision changed from GO: the node knows since when"

    table = node.ok("phases")
    (row,) = [line for line in table.splitlines() if line.startswith("p1 ")]
    assert "0/1" in row and "PENDING: waiting for Load test (1 not measured)" in row, row

    screen = tmp_path / "node.txt"
    node.ok("snapshot", "--size", "200x50", "-o", str(screen))
    board = screen.read_text()
    assert "[ACTV] Load test 2/3 passed · 1 not measured" in board, board
    assert "---- P99.9 latency: not measured" in board, board
    assert "gate PENDING" in board and "gate GO" not in board, board

    # The same node served over HTTP reads the same: the verdict travels in the wire model.
    here = node.json("phases")
    with ServedNode("--listen", "127.0.0.1:0", env=node.env, cwd=tmp_path) as served:
        config = Path(node.env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'[[nodes]]\nname = "remote"\nbackend = "http"\nurl = "{served.url}"\n')
        assert node.json("phases", "--node", "remote") == here
        node.ok("snapshot", "--node", "remote", "--size", "200x50", "-o", str(screen))
        assert "[ACTV] Load test 2/3 passed · 1 not measured" in screen.read_text()
    config.unlink()

    node.ok(
        "report", "--agent", "load-1", "--milestone", "m1", "--passed", "--criterion", "P99.9 latency=640 ms"
    )
    (phase,) = node.json("phases")
    assert (phase["milestones"][0]["status"], phase["gate"]["decision"]) == ("passed", "go")
