"""`fleetdeck gate sign` through the real command line on a real local node: audited, shown beside the
decision the figures make, refused on a read-only node, and usage errors in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .agents.local_node import LocalNode
from .conftest import one_line_error

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local node reads /proc")

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.toml"


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def test_a_sign_off_is_audited_and_shown_beside_the_computed_decision(node: LocalNode) -> None:
    node.ok("plan", "apply", str(EXAMPLE_PLAN))
    out = node.ok("gate", "sign", "phase:p2-pilot", "--go", "--reason", "pilot accepted")
    assert "signed GO; the figures say PENDING" in out, out
    p2 = next(p for p in node.json("phases") if p["id"] == "p2-pilot")
    assert p2["gate"]["decision"] == "pending", "a sign-off never decides the gate"
    assert (p2["gate"]["signed"]["decision"], p2["gate"]["signed"]["reason"]) == ("go", "pilot accepted")
    (entry,) = [e for e in node.audit() if e["action"] == "gate.sign"]
    assert (entry["target"], entry["outcome"], entry["params"]) == (
        "phase:p2-pilot",
        "ok",
        {"decision": "go"},
    )

    missing = node.cli("gate", "sign", "p9", "--no-go")
    assert missing.returncode == 1 and "p9" in one_line_error(missing)
    assert [e["outcome"] for e in node.audit() if e["action"] == "gate.sign"] == ["ok", "failed"]

    usage = node.cli("gate", "sign", "p2-pilot")
    assert usage.returncode == 2 and "--go" in usage.stderr


def test_a_read_only_node_refuses_a_sign_off(node: LocalNode) -> None:
    node.ok("plan", "apply", str(EXAMPLE_PLAN))
    config = Path(node.env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[[nodes]]\nname = "watch"\nbackend = "local"\nread_only = true\nstate_dir = "{node.state_dir}"\n'
    )
    refused = node.cli("gate", "sign", "p2-pilot", "--no-go", "--node", "watch")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "read-only" in one_line_error(refused)
    assert [(e["action"], e["outcome"]) for e in node.audit() if e["action"] == "gate.sign"] == [
        ("gate.sign", "denied")
    ]
