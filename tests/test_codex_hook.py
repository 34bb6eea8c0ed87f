"""Codex CLI sessions as agents: the recorded payloads (tests/data/codex_hooks, built from Codex's source)
fed to a real ``python -m console hook codex`` (notify's JSON as the last argument, a lifecycle hook's on
stdin), and ``hook install|uninstall codex`` on a hand-written config.toml and a hooks.json that already
hold the user's own settings."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data" / "codex_hooks"
AGENT = "codex-019a8c1e"
SESSION = "019a8c1e-7d2f-7c3a-9b41-5e6f7a8b9c0d"


def payload(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    cli_env["FLEETDECK_STATE_DIR"] = str(tmp_path / "node")
    cli_env["HOME"] = str(tmp_path / "home")
    cli_env.pop("CODEX_HOME", None)
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
    """A lifecycle hook: the event on stdin."""
    done = cli("hook", "codex", stdin=event)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # Codex reads a hook's stdout (SessionStart's becomes model context)
    return done


def notify(cli, event: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
    """notify: the event as the last argument, stdin empty as Codex leaves it."""
    arg = json.dumps(event) if isinstance(event, dict) else event
    done = cli("hook", "codex", arg)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    return done


def agents(cli) -> dict[str, dict[str, Any]]:
    done = cli("agents", "--json")
    assert done.returncode == 0, done.stderr
    return {agent["id"]: agent for agent in json.loads(done.stdout)}


def session(cli) -> dict[str, Any]:
    return agents(cli)[AGENT]


def log_lines(cli) -> list[str]:
    done = cli("logs", "--agent", AGENT)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


# --- every recorded event ------------------------------------------------------------------------------


def test_notify_reports_the_turns_end_with_the_last_reply(cli, tmp_path: Path) -> None:
    notify(cli, payload("notify_agent_turn_complete"))
    agent = session(cli)
    assert (agent["kind"], agent["state"], agent["message"]) == (
        "reporting",
        "idle",
        "waiting for your next prompt",
    )
    assert agent["labels"] == {
        "source": "codex",
        "session_id": SESSION,
        "client": "codex-tui",
        "project": "shop",
    }
    lines = log_lines(cli)
    assert len(lines) == 2
    assert "waiting for your next prompt" in lines[0]
    assert "last reply: Rename complete and verified `cargo build` succeeds." in lines[1]

    # the next turn's end is recorded again (no lifecycle hook said it was running in between)
    notify(cli, payload("notify_agent_turn_complete", **{"last-assistant-message": None}))
    assert len(log_lines(cli)) == 3  # a turn that ended without a reply adds no reply line

    from backends.local.store import Store

    with Store(tmp_path / "node") as store:
        assert store.agent_record(AGENT).workspace == "/home/user/shop"


def test_lifecycle_hooks_take_a_session_from_start_to_its_turns_end(cli) -> None:
    hook(cli, payload("session_start"))
    agent = session(cli)
    assert (agent["state"], agent["message"]) == ("running", "session started (startup)")
    assert agent["labels"] == {
        "source": "codex",
        "session_id": SESSION,
        "model": "gpt-5.1-codex",
        "permission_mode": "default",
        "project": "shop",
    }
    steps = [
        ("user_prompt_submit", "running", "Rename foo to bar and update the callsites"),
        ("pre_tool_use", "running", "running Bash(cargo build)"),
        ("post_tool_use", "running", "ran Bash(cargo build)"),
        ("permission_request", "waiting", "permission to run Bash(rm -rf target)"),
        ("stop", "idle", "waiting for your next prompt"),
        ("stop_failure", "idle", "turn failed (rate_limit): Rate limit reached; try again in 20s"),
    ]
    for name, state, message in steps:
        hook(cli, payload(name))
        agent = session(cli)
        assert (agent["state"], agent["message"]) == (state, message), name
    lines = log_lines(cli)
    # one line per event, and Stop's last reply as one more
    assert len(lines) == 1 + len(steps) + 1
    assert "WARNING" in lines[4] and "permission to run Bash(rm -rf target)" in lines[4]
    assert "last reply: Rename complete" in lines[6]
    assert "ERROR" in lines[7] and "turn failed (rate_limit)" in lines[7]


def test_notify_and_hooks_of_one_session_are_one_agent(cli) -> None:
    """The thread-id notify gives is the session_id hooks give: both report the same agent."""
    hook(cli, payload("pre_tool_use"))
    notify(cli, payload("notify_agent_turn_complete"))
    assert list(agents(cli)) == [AGENT]
    assert session(cli)["state"] == "idle"


def test_a_long_reply_is_bounded_to_one_line(cli) -> None:
    notify(cli, payload("notify_agent_turn_complete", **{"last-assistant-message": "done\n\n" + "z" * 5000}))
    reply = log_lines(cli)[1]
    assert "last reply: done zzz" in reply and reply.endswith("…")
    assert len(reply) < 400


def test_the_hook_loads_neither_textual_nor_httpx(env: dict[str, str], tmp_path: Path) -> None:
    probe = (
        "import sys, json\n"
        "from console.cli.main import main\n"
        f"code = main(['hook', 'codex', {json.dumps(json.dumps(payload('notify_agent_turn_complete')))}])\n"
        "heavy = sorted(m for m in ('textual', 'httpx', 'rich', 'uvicorn') if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == ["0", "[]"]
    assert done.stderr == b""


# --- never block or fail Codex -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdin", "note"),
    [
        (b"", "no hook input"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (json.dumps({"hook_event_name": "Stop"}).encode(), "no session_id"),
        (json.dumps({"session_id": "s1", "hook_event_name": "PreCompact"}).encode(), "not one fleetdeck"),
        (json.dumps({"session_id": "---", "hook_event_name": "Stop"}).encode(), "no letters or digits"),
        (b'{"session_id": "s1", "prompt": "' + b"y" * (2 << 20) + b'"}', "larger than"),
    ],
    ids=["empty", "garbage", "binary", "array", "no-session", "unknown-event", "bad-id", "huge"],
)
def test_bad_stdin_exits_0_with_one_note(cli, stdin: bytes, note: str) -> None:
    done = hook(cli, stdin)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetdeck hook: "), done.stderr
    assert note in lines[0]
    assert agents(cli) == {}


@pytest.mark.parametrize(
    ("arg", "note"),
    [
        ("", "no hook input"),
        ("not json", "not JSON"),
        (json.dumps({"type": "approval-requested", "thread-id": "t1"}), "not one fleetdeck reports"),
        (json.dumps({"type": "agent-turn-complete", "cwd": "/x"}), "no thread-id"),
        (json.dumps({"type": "agent-turn-complete", "thread-id": "-"}), "thread-id has no letters"),
    ],
    ids=["empty", "garbage", "unknown-type", "no-thread", "bad-thread"],
)
def test_bad_notify_argument_exits_0_with_one_note(cli, arg: str, note: str) -> None:
    done = notify(cli, arg)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetdeck hook: "), done.stderr
    assert note in lines[0]
    assert "Traceback" not in done.stderr
    assert agents(cli) == {}


def test_a_store_it_cannot_open_is_a_note_not_a_failure(cli, env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be", encoding="utf-8")
    env["FLEETDECK_STATE_DIR"] = str(blocker)
    done = notify(cli, payload("notify_agent_turn_complete"))
    assert done.stderr.startswith("fleetdeck hook: not recorded:"), done.stderr
    assert len(done.stderr.splitlines()) == 1


# --- install / uninstall: notify in config.toml --------------------------------------------------------

USER_CONFIG = """\
# my Codex settings, by hand
model = "gpt-5.1-codex"   # the default
approval_policy = "on-request"

# sandbox for this laptop
[sandbox_workspace_write]
network_access = false

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
"""


def config_at(tmp_path: Path, text: str = USER_CONFIG) -> tuple[Path, Path]:
    project = tmp_path / "proj"
    path = project / ".codex" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_bytes(text.encode())
    return project, path


@pytest.mark.parametrize(
    "text",
    [USER_CONFIG, USER_CONFIG.replace("\n", "\r\n"), 'model = "o3"', ""],
    ids=["tables", "crlf", "no-newline", "empty"],
)
def test_notify_install_keeps_every_byte_and_uninstall_restores_the_file(
    cli, env: dict[str, str], tmp_path: Path, text: str
) -> None:
    project, path = config_at(tmp_path, text)
    done = cli("hook", "install", "codex", "--notify", "--project", str(project))
    assert done.returncode == 0, done.stderr
    after = path.read_bytes()
    settings = tomllib.loads(after.decode())
    assert settings == {**tomllib.loads(text), "notify": settings["notify"]}
    assert settings["notify"][-2:] == ["hook", "codex"]
    ours = [line for line in after.decode().splitlines() if line.startswith("notify = ")]
    assert len(ours) == 1
    # outside our line, every byte (comments, blank lines, line endings) is as it was
    nl = "\r\n" if "\r\n" in text else "\n"
    written = after.decode()
    assert text in (written.replace(ours[0] + nl, "", 1), written.replace(nl + ours[0], "", 1))

    again = cli("hook", "install", "codex", "--notify", "--project", str(project))
    assert again.returncode == 0 and "already installed" in again.stdout
    assert path.read_bytes() == after

    # the notify Codex would run really reports: argv plus the JSON as its last argument
    run = subprocess.run(
        [*settings["notify"], json.dumps(payload("notify_agent_turn_complete"))],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stderr == b"", run.stderr
    assert session(cli)["state"] == "idle"

    gone = cli("hook", "uninstall", "codex", "--project", str(project))
    assert gone.returncode == 0, gone.stderr
    assert "notify removed" in gone.stdout
    assert path.read_bytes() == text.encode()
    none = cli("hook", "uninstall", "codex", "--project", str(project))
    assert none.returncode == 0 and "notify none installed" in none.stdout


def test_notify_goes_above_the_first_table(cli, tmp_path: Path) -> None:
    project, path = config_at(tmp_path)
    assert cli("hook", "install", "codex", "--notify", "--project", str(project)).returncode == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("notify = "))
    assert lines[at + 1] == "# sandbox for this laptop"  # the comment stays with its table
    assert lines[:at] == USER_CONFIG.splitlines()[:at]


@pytest.mark.parametrize(
    "theirs",
    ['notify = ["notify-send", "Codex"]\n', 'notify = [\n  "python3",\n  "/home/me/notify.py",\n]\n'],
    ids=["one-line", "multi-line"],
)
def test_someone_elses_notify_is_refused_untouched(cli, tmp_path: Path, theirs: str) -> None:
    text = theirs + USER_CONFIG
    project, path = config_at(tmp_path, text)
    done = cli("hook", "install", "codex", "--notify", "--project", str(project))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "notify is already set" in lines[0] and "left untouched" in lines[0]
    assert path.read_bytes() == text.encode()
    gone = cli("hook", "uninstall", "codex", "--project", str(project))  # not ours: it stays
    assert gone.returncode == 0 and "notify none installed" in gone.stdout
    assert path.read_bytes() == text.encode()
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left behind


def test_a_config_that_is_not_toml_is_refused_untouched(cli, tmp_path: Path) -> None:
    text = "model = \n[broken\n"
    project, path = config_at(tmp_path, text)
    for args in (("install", "codex", "--notify"), ("uninstall", "codex")):
        done = cli("hook", *args, "--project", str(project))
        assert done.returncode == 2
        assert "not valid TOML" in done.stderr and "left untouched" in done.stderr
        assert path.read_bytes() == text.encode()


def test_notify_is_for_codex_only(cli, tmp_path: Path) -> None:
    done = cli("hook", "install", "claude", "--notify", "--project", str(tmp_path))
    assert done.returncode == 2 and "--notify" in done.stderr
    assert not (tmp_path / ".claude").exists()


# --- install / uninstall: lifecycle hooks in hooks.json ------------------------------------------------

USER_HOOKS: dict[str, Any] = {
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit.sh", "timeout": 3}]}
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
    "Stop",
    "StopFailure",
)


def ours(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event, groups in settings.get("hooks", {}).items():
        for group in groups:
            for entry in group["hooks"]:
                if entry["command"].endswith(" hook codex"):
                    found.setdefault(event, []).append(entry)
    return found


def test_hooks_install_merges_and_is_idempotent_and_uninstall_leaves_the_users_own(
    cli, env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    path = project / ".codex" / "hooks.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(USER_HOOKS, indent=2), encoding="utf-8")
    config = path.parent / "config.toml"
    config.write_text(USER_CONFIG, encoding="utf-8")

    done = cli("hook", "install", "codex", "--project", str(project))
    assert done.returncode == 0, done.stderr
    assert "/hooks" in done.stdout  # Codex runs a new hook only once it is trusted
    installed = json.loads(path.read_text(encoding="utf-8"))
    found = ours(installed)
    assert sorted(found) == sorted(EVENTS)
    assert all(len(entries) == 1 for entries in found.values())
    assert installed["zzz_unknown"] == {"kept": True}
    assert installed["hooks"]["PreToolUse"][0] == USER_HOOKS["hooks"]["PreToolUse"][0]
    assert installed["hooks"]["PreCompact"] == USER_HOOKS["hooks"]["PreCompact"]
    assert config.read_text(encoding="utf-8") == USER_CONFIG  # the lifecycle hooks leave notify alone

    again = cli("hook", "install", "codex", "--project", str(project))
    assert again.returncode == 0 and "already installed" in again.stdout
    assert json.loads(path.read_text(encoding="utf-8")) == installed

    command = found["Stop"][0]["command"]
    run = subprocess.run(
        ["sh", "-c", command],
        input=json.dumps(payload("stop")).encode(),
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stderr == b"" and run.stdout == b"", run.stderr
    assert session(cli)["state"] == "idle"

    gone = cli("hook", "uninstall", "codex", "--project", str(project))
    assert gone.returncode == 0, gone.stderr
    assert json.loads(path.read_text(encoding="utf-8")) == USER_HOOKS
    assert config.read_text(encoding="utf-8") == USER_CONFIG


def test_user_install_writes_codex_home(cli, env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    env["CODEX_HOME"] = str(home)
    done = cli("hook", "install", "codex", "--user")
    assert done.returncode == 0, done.stderr
    assert sorted(ours(json.loads((home / "hooks.json").read_text(encoding="utf-8")))) == sorted(EVENTS)
    assert not (Path(env["HOME"]) / ".codex").exists()
    assert cli("hook", "uninstall", "codex", "--user").returncode == 0
    assert json.loads((home / "hooks.json").read_text(encoding="utf-8")) == {}
