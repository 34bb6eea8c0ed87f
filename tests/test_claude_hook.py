"""Claude Code sessions as agents: the recorded hook payloads (tests/data/claude_hooks, as Claude Code's
hooks reference shows them) fed to a real ``python -m console hook claude``, and ``hook install|uninstall
claude`` on settings files that already hold the user's own hooks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data" / "claude_hooks"
AGENT = "claude-abc12345"
SESSION = "abc12345-6789-4def-8123-456789abcdef"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    cli_env["FLEETDECK_STATE_DIR"] = str(tmp_path / "node")
    cli_env["HOME"] = str(tmp_path / "home")
    return cli_env


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path):
    def run(*args: str, stdin: bytes | str | dict[str, Any] = b"") -> subprocess.CompletedProcess[str]:
        data = json.dumps(stdin) if isinstance(stdin, dict) else stdin
        raw = data.encode() if isinstance(data, str) else data
        done = subprocess.run(
            [sys.executable, "-m", "console", *args],
            env=env,
            cwd=tmp_path,
            input=raw,
            capture_output=True,
            timeout=60,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode(errors="replace")
        )

    return run


def hook(cli, event: dict[str, Any] | bytes | str) -> subprocess.CompletedProcess[str]:
    done = cli("hook", "claude", stdin=event)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # stdout would be read by Claude Code as the hook's answer
    return done


def agents(cli) -> dict[str, dict[str, Any]]:
    done = cli("agents", "--json")
    assert done.returncode == 0, done.stderr
    return {agent["id"]: agent for agent in json.loads(done.stdout)}


def session(cli) -> dict[str, Any]:
    return agents(cli)[AGENT]


# --- every recorded event ------------------------------------------------------------------------------


def test_a_session_from_start_to_end(cli) -> None:
    hook(cli, payload("session_start"))
    agent = session(cli)
    assert (agent["kind"], agent["state"], agent["message"]) == (
        "reporting",
        "running",
        "session started (startup)",
    )
    assert agent["labels"] == {
        "source": "claude-code",
        "session_id": SESSION,
        "model": "claude-sonnet-4-6",
        "permission_mode": "default",
        "project": "shop",
    }

    steps = [
        ("user_prompt_submit", "running", "Write a function to calculate the factorial of a number"),
        ("pre_tool_use", "running", "running Bash(npm test)"),
        ("post_tool_use", "running", "ran Write(/home/user/shop/src/factorial.py)"),
        ("notification_idle", "waiting", "waiting for your input"),
        ("stop", "idle", "waiting for your next prompt"),
        ("permission_request", "waiting", "permission to run Bash(rm -rf build)"),
        ("session_end", "stopped", "session ended (prompt_input_exit)"),
    ]
    for name, state, message in steps:
        hook(cli, payload(name))
        agent = session(cli)
        assert (agent["state"], agent["message"]) == (state, message), name
    assert agent["labels"]["model"] == "claude-sonnet-4-6"  # later events do not drop what the start said

    logs = cli("logs", "--agent", AGENT)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert len(lines) == 1 + len(steps)  # one line per event
    assert "WARNING" in lines[6] and "permission to run Bash(rm -rf build)" in lines[6]


def test_a_permission_prompt_names_the_call_it_asks_for(cli) -> None:
    """The Notification names the tool only; the call is the one PreToolUse just reported."""
    hook(cli, payload("session_start"))
    hook(cli, payload("pre_tool_use", tool_input={"command": "rm -rf build"}))
    hook(cli, payload("notification_permission"))
    agent = session(cli)
    assert (agent["state"], agent["message"]) == ("waiting", "permission to run Bash(rm -rf build)")
    hook(cli, payload("post_tool_use"))  # the next hook: back to running
    assert session(cli)["state"] == "running"

    other = payload("notification_permission", message="Claude needs your permission to use Edit")
    hook(cli, other)  # a tool other than the last call's: the tool alone
    assert session(cli)["message"] == "permission to run Edit"


def test_first_event_seen_registers_the_session_with_its_workspace(cli, tmp_path: Path) -> None:
    """A session already running when the hooks were installed shows up at its next event."""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    hook(cli, payload("pre_tool_use", cwd=str(workspace)))
    agent = session(cli)
    assert agent["state"] == "running"
    assert agent["labels"]["project"] == "repo"
    from backends.local.store import Store

    with Store(tmp_path / "node") as store:
        assert store.agent_record(AGENT).workspace == str(workspace)


def test_a_checkpoint_covers_the_sessions_git_tree(cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "app.py").write_text("print('hi')\n", encoding="utf-8")
    hook(cli, payload("session_start", cwd=str(repo)))
    done = cli("checkpoint", "--label", "before-claude", "--json")
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["covers"]) >= {f"agent:{AGENT}", f"workspace:{repo}"}


def test_the_hook_loads_neither_textual_nor_httpx(env: dict[str, str], tmp_path: Path) -> None:
    """It runs on every tool call of every session: only the store is imported."""
    probe = (
        "import sys\n"
        "from console.cli.main import main\n"
        "code = main(['hook', 'claude'])\n"
        "heavy = sorted(m for m in ('textual', 'httpx', 'rich', 'uvicorn') if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(payload("stop")).encode(),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["0", "[]"]


def test_a_long_prompt_is_bounded_to_one_short_line(cli) -> None:
    hook(cli, payload("user_prompt_submit", prompt="fix\n\tthis " + "x" * 5000))
    message = session(cli)["message"]
    assert len(message) == 120
    assert message.startswith("fix this xxx") and message.endswith("…")


# --- never block or fail Claude Code -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdin", "note"),
    [
        (b"", "no hook input"),
        (b"   \n", "no hook input"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (json.dumps({"hook_event_name": "Stop"}).encode(), "no session_id"),
        (
            json.dumps({"session_id": "s1", "hook_event_name": "PreCompact"}).encode(),
            "not one fleetdeck reports",
        ),
        (json.dumps({"session_id": "---", "hook_event_name": "Stop"}).encode(), "no letters or digits"),
        (b'{"session_id": "s1", "prompt": "' + b"y" * (2 << 20) + b'"}', "larger than"),
    ],
    ids=["empty", "blank", "garbage", "binary", "array", "no-session", "unknown-event", "bad-id", "huge"],
)
def test_bad_input_exits_0_with_one_note(cli, stdin: bytes, note: str) -> None:
    done = hook(cli, stdin)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetdeck hook: "), done.stderr
    assert note in lines[0]
    assert "Traceback" not in done.stderr
    assert agents(cli) == {}  # nothing recorded, the store still reads


def test_a_store_it_cannot_open_is_a_note_not_a_failure(cli, env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be", encoding="utf-8")
    env["FLEETDECK_STATE_DIR"] = str(blocker)
    done = hook(cli, payload("session_start"))
    assert done.stderr.startswith("fleetdeck hook: not recorded:"), done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_bad_input_leaves_a_recorded_session_as_it_was(cli) -> None:
    hook(cli, payload("pre_tool_use"))
    before = session(cli)
    hook(cli, b"{garbage")
    after = session(cli)
    assert (after["state"], after["message"]) == (before["state"], before["message"])


# --- install / uninstall -------------------------------------------------------------------------------

USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test)"], "deny": []},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit.sh", "timeout": 3}]}
        ],
        "Notification": [
            {"matcher": "idle_prompt", "hooks": [{"type": "command", "command": "notify-send hi"}]}
        ],
        "PreCompact": [{"hooks": [{"type": "command", "command": "echo compacting"}]}],
    },
    "zzz_unknown": {"kept": True},
}
EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Notification",
    "Stop",
    "SessionEnd",
)


def ours(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event, groups in settings.get("hooks", {}).items():
        for group in groups:
            for entry in group["hooks"]:
                if entry["command"].endswith(" hook claude"):
                    found.setdefault(event, []).append(entry)
    return found


def test_install_merges_and_is_idempotent_and_uninstall_leaves_the_users_own(
    cli, env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    path = project / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(USER_SETTINGS, indent=2), encoding="utf-8")

    done = cli("hook", "install", "claude", "--project", str(project))
    assert done.returncode == 0, done.stderr
    installed = json.loads(path.read_text(encoding="utf-8"))
    assert list(installed) == list(USER_SETTINGS)  # key order kept, unknown keys kept
    for key in ("model", "permissions", "zzz_unknown"):
        assert installed[key] == USER_SETTINGS[key]
    found = ours(installed)
    assert sorted(found) == sorted(EVENTS)
    assert all(len(entries) == 1 for entries in found.values())
    command = found["Stop"][0]["command"]
    assert found["Stop"][0]["type"] == "command" and found["Stop"][0]["timeout"] > 0
    # the user's hooks are still there, first, unchanged
    assert installed["hooks"]["PreToolUse"][0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert installed["hooks"]["Notification"][0] == USER_SETTINGS["hooks"]["Notification"][0]
    assert installed["hooks"]["PreCompact"] == USER_SETTINGS["hooks"]["PreCompact"]

    again = cli("hook", "install", "claude", "--project", str(project))
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stdout
    assert json.loads(path.read_text(encoding="utf-8")) == installed

    # the installed command is one that really runs this hook, through a shell as Claude Code runs it
    run = subprocess.run(
        ["sh", "-c", command],
        input=json.dumps(payload("stop")).encode(),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stderr == b"", run.stderr
    assert session(cli)["state"] == "idle"

    gone = cli("hook", "uninstall", "claude", "--project", str(project))
    assert gone.returncode == 0, gone.stderr
    assert json.loads(path.read_text(encoding="utf-8")) == USER_SETTINGS
    none = cli("hook", "uninstall", "claude", "--project", str(project))
    assert none.returncode == 0 and "none installed" in none.stdout


def test_install_for_the_user_writes_home_claude_settings(cli, env: dict[str, str]) -> None:
    done = cli("hook", "install", "claude", "--user")
    assert done.returncode == 0, done.stderr
    path = Path(env["HOME"]) / ".claude" / "settings.json"
    assert sorted(ours(json.loads(path.read_text(encoding="utf-8")))) == sorted(EVENTS)
    assert cli("hook", "uninstall", "claude", "--user").returncode == 0
    assert json.loads(path.read_text(encoding="utf-8")) == {}


@pytest.mark.parametrize(
    "text", ['{"hooks": {', "[1, 2]", '{"hooks": []}'], ids=["broken", "array", "hooks-list"]
)
def test_settings_that_are_not_claude_settings_are_refused_untouched(cli, tmp_path: Path, text: str) -> None:
    path = tmp_path / "proj" / ".claude" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    for action in ("install", "uninstall"):
        done = cli("hook", action, "claude", "--project", str(tmp_path / "proj"))
        assert done.returncode == 2
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and "left untouched" in lines[0], done.stderr
        assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp file left behind
