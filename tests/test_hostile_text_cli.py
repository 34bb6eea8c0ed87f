"""Hostile text through the real command line: a real local store written by real `fleetdeck run`, `report`,
`checkpoint`, `dispatch` and `plan apply`, read back by every reading command as the bytes a terminal would
get, locally and over a real `fleetdeck node serve` with a viewer token (issue 12, §2).

Every reader's stdout and stderr must hold no raw ESC, BEL, 8-bit CSI or other control, show the visible
form (``␛]0;pwned␇``) instead, and show markup literally; ``--json`` must stay exact JSON of what was
stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents.local_node import LocalNode, wait_for
from tests.serving import ServedNode

from .hostile import ARGV_PAYLOAD, CORPUS, PAYLOAD, assert_no_raw_controls

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses signals")

# What the agent prints: the whole corpus on one line (NUL and CR included), then a line that is only a title.
AGENT_CODE = (
    "import sys\n"
    f"sys.stdout.write({PAYLOAD!r} + '\\n')\n"
    "sys.stdout.write('\\x1b]0;pwned\\x07\\x1b[2J evil\\n')\n"
    f"sys.stderr.write({PAYLOAD!r} + '\\n')\n"
    "sys.stdout.flush(); sys.stderr.flush()\n"
)
SHOWN_TITLE = CORPUS["osc 0 title"][1]
SHOWN_MARKUP = CORPUS["link markup"][1]


def toml_string(text: str) -> str:
    """A TOML basic string holding exactly ``text`` (every non-ASCII or control character escaped)."""
    out = []
    for char in text:
        if char in '"\\' or not (0x20 <= ord(char) < 0x7F):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def run_bytes(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI as a terminal would see it: raw bytes, no newline translation (a CR must stay a CR)."""
    return subprocess.run(
        [sys.executable, "-m", "console", *args], env=env, cwd=cwd, capture_output=True, timeout=120
    )


def read_safely(env: dict[str, str], cwd: Path, *args: str, expect_rc: int | None = 0) -> str:
    result = run_bytes(env, cwd, *args)
    where = f"fleetdeck {' '.join(args)}"
    if expect_rc is not None:
        assert result.returncode == expect_rc, f"{where} -> {result.returncode}: {result.stderr!r}"
    assert_no_raw_controls(result.stderr, f"{where} (stderr)")
    return assert_no_raw_controls(result.stdout, where)


@pytest.fixture(scope="module")
def hostile_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    """A local node whose agents, logs, plan, checkpoints, tasks and audit trail all carry the corpus.

    One for the module (each reader only reads it; writing it takes a dozen processes), with its own XDG
    dirs as the ``cli_env`` fixture makes them."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETDECK_", "XDG_"))}
    env.pop("NO_COLOR", None)
    env.pop("TEXTUAL_ANIMATIONS", None)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"))
    node = LocalNode(tmp_path, env)
    try:
        yield _fill(node, tmp_path)
    finally:
        node.reap()


def _fill(node: LocalNode, tmp_path: Path) -> LocalNode:
    run = node.start("evil", sys.executable, "-c", AGENT_CODE)
    assert run.wait(timeout=60) == 0
    node.ok(
        "report", "--agent", "rep", "--state", "running", "--message", ARGV_PAYLOAD, "--log", ARGV_PAYLOAD
    )
    node.ok("report", "--agent", "failing", "--state", "failed", "--message", ARGV_PAYLOAD)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'name = {toml_string(PAYLOAD)}\n[[phases]]\nid = "p1"\nname = {toml_string(PAYLOAD)}\n'
        f'[[phases.milestones]]\nid = "m1"\nname = {toml_string(PAYLOAD)}\n'
    )
    node.ok("plan", "apply", str(plan))
    node.ok("checkpoint", "--label", ARGV_PAYLOAD, "--reason", ARGV_PAYLOAD)
    node.ok(
        "dispatch", "--agent", "rep", "--payload", json.dumps({"prompt": PAYLOAD}), "--reason", ARGV_PAYLOAD
    )
    wait_for(lambda: len(node.logs("--agent", "evil")) >= 3, "the agent's lines in the store")
    return node


def test_logs_show_the_agents_escape_sequences_visibly(hostile_node: LocalNode) -> None:
    out = read_safely(hostile_node.env, hostile_node.tmp_path, "logs", "--agent", "evil")
    assert f"{SHOWN_TITLE}␛[2J evil" in out
    for name, (_, shown) in CORPUS.items():
        if name != "newline":
            assert shown in out, f"{name}: {shown!r} not shown in:\n{out}"
    out = read_safely(hostile_node.env, hostile_node.tmp_path, "logs", "--agent", "rep")
    assert SHOWN_TITLE in out and SHOWN_MARKUP in out


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("agents", [SHOWN_TITLE, SHOWN_MARKUP]),
        ("checkpoints", [SHOWN_TITLE, SHOWN_MARKUP]),
        ("audit", [SHOWN_TITLE, SHOWN_MARKUP]),
        ("phases", [SHOWN_TITLE, SHOWN_MARKUP]),
        ("tasks", []),
    ],
)
def test_every_table_shows_the_text_visibly(hostile_node: LocalNode, command: str, shown: list[str]) -> None:
    out = read_safely(hostile_node.env, hostile_node.tmp_path, command)
    for form in shown:
        assert form in out, f"{command}: {form!r} not in:\n{out}"


def test_status_lines_show_a_failed_agents_message_visibly(hostile_node: LocalNode) -> None:
    out = read_safely(hostile_node.env, hostile_node.tmp_path, "status", expect_rc=None)
    assert "agent:failing" in out and SHOWN_TITLE in out


@pytest.mark.parametrize("command", ["agents", "checkpoints", "audit", "tasks", "phases", "logs", "status"])
def test_json_is_exact_and_carries_no_raw_control(hostile_node: LocalNode, command: str) -> None:
    out = read_safely(hostile_node.env, hostile_node.tmp_path, command, "--json", expect_rc=None)
    lines = out.splitlines() if command == "logs" else [out]
    strings = set(_strings([json.loads(line) for line in lines if line.strip()]))
    # the exact text that was stored, every control in it, decoded back from the JSON
    assert {ARGV_PAYLOAD, PAYLOAD} & strings or any(ARGV_PAYLOAD in s for s in strings), command


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_logs_json_round_trips_the_exact_bytes_the_agent_printed(hostile_node: LocalNode) -> None:
    out = read_safely(hostile_node.env, hostile_node.tmp_path, "logs", "--json", "--agent", "evil")
    messages = [json.loads(line)["message"] for line in out.splitlines()]
    assert PAYLOAD in messages, messages


def test_audit_jsonl_is_exact_and_safe(hostile_node: LocalNode) -> None:
    out = read_safely(hostile_node.env, hostile_node.tmp_path, "audit", "--jsonl")
    reasons = [json.loads(line).get("reason") for line in out.splitlines()]
    assert ARGV_PAYLOAD in reasons


def test_the_checkpoint_command_echoes_its_label_visibly(hostile_node: LocalNode) -> None:
    node = hostile_node
    out = read_safely(node.env, node.tmp_path, "checkpoint", "--label", ARGV_PAYLOAD)
    assert SHOWN_TITLE in out and SHOWN_MARKUP in out
    stored = node.json("checkpoints")
    assert {c["label"] for c in stored} == {ARGV_PAYLOAD}  # kept as given; only its display is made safe


def test_an_error_line_shows_hostile_input_visibly(hostile_node: LocalNode) -> None:
    node = hostile_node
    err = run_bytes(node.env, node.tmp_path, "pause", f"agent:{ARGV_PAYLOAD}")
    assert err.returncode != 0
    text = assert_no_raw_controls(err.stderr, "pause error")
    assert text.startswith("fleetdeck: ") and len(text.strip().splitlines()) == 1


def test_snapshots_of_the_node_are_safe_as_text_and_svg(hostile_node: LocalNode) -> None:
    for screen in ("node", "agent", "logs", "audit"):
        for suffix in ("txt", "svg"):
            output = hostile_node.tmp_path / f"{screen}.{suffix}"
            read_safely(
                hostile_node.env, hostile_node.tmp_path, "snapshot", "--screen", screen, "-o", str(output)
            )
            text = assert_no_raw_controls(output.read_bytes(), f"snapshot {screen}.{suffix}")
            if suffix == "svg":
                ET.fromstring(text)  # a raw control would make it invalid XML
            elif screen in ("node", "logs"):
                assert SHOWN_TITLE in text, text


# --- over http: a real `fleetdeck node serve`, read with a viewer token ---------------------------------


def _remote_env(node: LocalNode, tmp_path: Path, served: ServedNode, token_file: Path) -> dict[str, str]:
    config_home = tmp_path / "remote-config"
    (config_home / "fleetdeck").mkdir(parents=True)
    (config_home / "fleetdeck" / "config.toml").write_text(
        f'[[nodes]]\nname = "remote"\nbackend = "http"\nurl = "{served.url}"\ntoken_file = "{token_file}"\n'
    )
    env: dict[str, Any] = {k: v for k, v in node.env.items() if k != "FLEETDECK_STATE_DIR"}
    env["XDG_CONFIG_HOME"] = str(config_home)
    return env


def test_over_http_the_same_text_is_shown_visibly(hostile_node: LocalNode, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    secret = hostile_node.ok("node", "token", "watcher", "--role", "viewer", "--tokens", str(tokens)).strip()
    token_file = tmp_path / "viewer.token"
    token_file.write_text(secret + "\n")
    token_file.chmod(0o600)
    served_env = {k: v for k, v in hostile_node.env.items() if k != "FLEETDECK_STATE_DIR"}
    with ServedNode(
        "--state-dir", str(hostile_node.state_dir), "--tokens", str(tokens), env=served_env
    ) as served:
        env = _remote_env(hostile_node, tmp_path, served, token_file)
        out = read_safely(env, tmp_path, "logs", "--node", "remote", "--agent", "evil")
        assert f"{SHOWN_TITLE}␛[2J evil" in out
        for command in ("agents", "checkpoints", "audit", "phases"):
            out = read_safely(env, tmp_path, command, "--node", "remote")
            assert SHOWN_TITLE in out and SHOWN_MARKUP in out, command
        out = read_safely(env, tmp_path, "logs", "--node", "remote", "--json", "--agent", "evil")
        assert PAYLOAD in [json.loads(line)["message"] for line in out.splitlines()]
        # a refusal from the node (a viewer may not act) is one safe line too
        read_safely(env, tmp_path, "checkpoint", "--node", "remote", "--label", ARGV_PAYLOAD, expect_rc=1)
