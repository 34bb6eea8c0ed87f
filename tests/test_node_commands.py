"""The scriptable per-node commands, run as real subprocesses against the demo node."""

from __future__ import annotations

import json

from .conftest import one_line_error


def test_agents_json_lists_the_wire_model(fleetdeck) -> None:
    result = fleetdeck("agents", "--demo", "--json")
    assert result.returncode == 0, result.stderr
    agents = json.loads(result.stdout)
    assert len(agents) == 34
    assert {"id", "state", "health", "pid", "last_heartbeat"} <= set(agents[0])


def test_agents_table_for_people(fleetdeck) -> None:
    result = fleetdeck("agents", "--demo")
    assert result.returncode == 0
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["AGENT", "STATE", "HEALTH"]
    assert len(rows) == 34


def test_phases_show_the_gate(fleetdeck) -> None:
    result = fleetdeck("phases", "--demo")
    assert result.returncode == 0
    assert "NO-GO" in result.stdout and "GO: all" in result.stdout


def test_stop_without_a_terminal_needs_yes(fleetdeck) -> None:
    result = fleetdeck("stop", "--demo", "coder-01")
    assert result.returncode == 2
    assert "--yes" in one_line_error(result)


def test_unknown_agent_is_one_line_and_exit_1(fleetdeck) -> None:
    result = fleetdeck("pause", "--demo", "agent:nobody")
    assert result.returncode == 1
    assert "nobody" in one_line_error(result)


def test_bad_target_kind_is_a_usage_error(fleetdeck) -> None:
    result = fleetdeck("pause", "--demo", "node:x")
    assert result.returncode == 2
    assert "agent:ID" in one_line_error(result)


def test_dispatch_validates_before_sending(fleetdeck) -> None:
    result = fleetdeck("dispatch", "--demo", "--agent", "coder-01", "--payload", "{not json")
    assert result.returncode == 2
    assert "JSON" in one_line_error(result)
    neither = fleetdeck("dispatch", "--demo")
    assert neither.returncode == 2
    ok = fleetdeck("dispatch", "--demo", "--agent", "coder-01", "--payload", '{"prompt": "fix it"}', "--json")
    assert ok.returncode == 0, ok.stderr
    task = json.loads(ok.stdout)
    assert task["target"] == "agent:coder-01" and task["payload"] == {"prompt": "fix it"}


def test_logs_filter_by_level_and_agent(fleetdeck) -> None:
    result = fleetdeck("logs", "--demo", "--level", "warning", "--json")
    assert result.returncode == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records and {r["level"] for r in records} <= {"warning", "error", "critical"}
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs)
    one = fleetdeck("logs", "--demo", "--agent", "coder-01", "--json")
    assert {json.loads(line)["source"] for line in one.stdout.splitlines()} == {"coder-01"}


def test_audit_and_checkpoint(fleetdeck) -> None:
    taken = fleetdeck("checkpoint", "--demo", "--label", "before upgrade", "--json")
    assert taken.returncode == 0, taken.stderr
    assert json.loads(taken.stdout)["label"] == "before upgrade"
    audit = fleetdeck("audit", "--demo", "--json")
    assert audit.returncode == 0
    assert all({"operator", "action", "outcome"} <= set(e) for e in json.loads(audit.stdout))


def test_several_configured_nodes_need_a_choice(fleetdeck, tmp_path) -> None:
    config = tmp_path / "config" / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[[nodes]]\nname = "a"\nbackend = "demo"\n\n[[nodes]]\nname = "b"\nbackend = "demo"\n',
        encoding="utf-8",
    )
    result = fleetdeck("agents")
    assert result.returncode == 2
    assert "--node" in one_line_error(result)
    picked = fleetdeck("agents", "--node", "b", "--json")
    assert picked.returncode == 0, picked.stderr
    missing = fleetdeck("agents", "--node", "zzz")
    assert missing.returncode == 2 and "zzz" in one_line_error(missing)
