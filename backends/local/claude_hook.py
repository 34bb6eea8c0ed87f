"""One Claude Code hook event, read from its JSON, reported as the session's agent in the local store.

Claude Code runs a command hook with the event's JSON on stdin (https://code.claude.com/docs/en/hooks):
common fields ``session_id``, ``transcript_path``, ``cwd``, ``permission_mode``, ``hook_event_name``, and per
event ``source``/``model`` (SessionStart), ``prompt`` (UserPromptSubmit), ``tool_name``/``tool_input``
(PreToolUse, PermissionRequest, PostToolUse), ``message``/``notification_type`` (Notification),
``reason`` (SessionEnd).

The session becomes agent ``claude-<first 8 of session_id>``, kind "reporting", its cwd the workspace (so
checkpoint and rollback cover its git tree), the cwd's basename its ``project`` label. Every text taken
from the payload is untrusted: it is bounded here and made terminal-safe where it is shown, as any agent's
text is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from backends.errors import NotFound

from .store import Store

MAX_STDIN_BYTES = 1 << 20  # a PostToolUse carries the tool's whole response; more than this is not read
MESSAGE_CHARS = 120
_SHORT_ID = re.compile(r"[^A-Za-z0-9]")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

WAITING_STATE = "waiting"  # needs a human: an approval, or the next prompt after an idle reminder


class HookInputError(ValueError):
    """The payload is not a Claude Code hook event this command can report."""


@dataclass(frozen=True)
class HookReport:
    agent_id: str
    state: str
    message: str
    event: str
    workspace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    level: str = "info"
    starts_session: bool = False
    # a permission notification names the tool only: the call it asks for is the one PreToolUse reported
    permission_tool: str | None = None


def bounded(text: object, limit: int = MESSAGE_CHARS) -> str:
    """One line of at most ``limit`` characters (whitespace runs folded, an ellipsis where cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_STDIN_BYTES:
        raise HookInputError(f"hook input is larger than {MAX_STDIN_BYTES} bytes; not read")
    if not raw.strip():
        raise HookInputError("no hook input on stdin")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookInputError(f"hook input is not JSON ({bounded(exc, 80)})") from None
    if not isinstance(payload, dict):
        raise HookInputError("hook input is not a JSON object")
    return payload


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def _tool_call(payload: dict[str, Any]) -> str:
    """'Bash(rm -rf build)', 'Edit(src/app.py)' or the tool's name alone."""
    tool = bounded(_text(payload, "tool_name") or "a tool", 40)
    tool_input = payload.get("tool_input")
    if isinstance(tool_input, dict):
        for key in ("command", "file_path", "path", "url", "pattern", "query", "description"):
            value = tool_input.get(key)
            if isinstance(value, str) and value:
                return f"{tool}({bounded(value, MESSAGE_CHARS - len(tool) - 12)})"
    return tool


def agent_id_of(session_id: str) -> str:
    short = _SHORT_ID.sub("", session_id)[:8]
    if not short:
        raise HookInputError("session_id has no letters or digits")
    return f"claude-{short}"


def interpret(payload: dict[str, Any]) -> HookReport:
    """The state, message and labels one event reports (HookInputError if it is not one we know)."""
    session_id = _text(payload, "session_id")
    if session_id is None:
        raise HookInputError("hook input has no session_id")
    event = _text(payload, "hook_event_name")
    agent_id = agent_id_of(session_id)
    cwd = _text(payload, "cwd")
    labels = {"source": "claude-code", "session_id": bounded(session_id, 64)}
    if cwd:
        # the agent's name in the store is its id; the project it works in rides along as a label
        project = _NAME_CHARS.sub("-", PurePath(cwd).name).strip("-.")
        if project:
            labels["project"] = project[:64]
    for key in ("model", "permission_mode"):
        value = _text(payload, key)
        if value:
            labels[key] = bounded(value, 64)

    def made(
        state: str, message: str, *, level: str = "info", permission_tool: str | None = None
    ) -> HookReport:
        return HookReport(
            agent_id=agent_id,
            state=state,
            message=message,
            event=str(event),
            workspace=cwd,
            labels=labels,
            level=level,
            starts_session=event == "SessionStart",
            permission_tool=permission_tool,
        )

    if event == "SessionStart":
        source = _text(payload, "source")
        message = "session started" + (f" ({bounded(source, 20)})" if source else "")
        return made("running", message)
    if event == "UserPromptSubmit":
        prompt = _text(payload, "prompt")
        return made("running", bounded(prompt) if prompt else "prompt submitted")
    if event == "PreToolUse":
        return made("running", bounded(f"running {_tool_call(payload)}"))
    if event == "PostToolUse":
        return made("running", bounded(f"ran {_tool_call(payload)}"))
    if event == "PermissionRequest":
        message = bounded(f"permission to run {_tool_call(payload)}")
        return made(WAITING_STATE, message, level="warning")
    if event == "Notification":
        message, tool = _notification(payload)
        return made(WAITING_STATE, message, level="warning", permission_tool=tool)
    if event == "Stop":
        return made("idle", "waiting for your next prompt")
    if event == "SessionEnd":
        reason = _text(payload, "reason")
        message = "session ended" + (f" ({bounded(reason, 40)})" if reason else "")
        return made("stopped", message)
    raise HookInputError(f"hook event {bounded(event, 40)!r} is not one fleetdeck reports")


def _notification(payload: dict[str, Any]) -> tuple[str, str | None]:
    """What the session waits for (the permission asked, or the operator's next input), and the tool a
    permission prompt names."""
    kind = _text(payload, "notification_type")
    message = _text(payload, "message") or ""
    if kind == "permission_prompt" or (kind is None and "permission" in message.lower()):
        # the payload names the tool ("Claude needs your permission to use Bash"), not its input
        named = _PERMISSION_FOR.search(message)
        tool = bounded(named.group(1), 40) if named else None
        return (f"permission to run {tool}" if tool else "permission asked"), tool
    if kind == "idle_prompt" or not message:
        return "waiting for your input", None
    return bounded(message), None


_PERMISSION_FOR = re.compile(r"permission to use ([A-Za-z0-9_.:-]+)")


def report(store: Store, hook: HookReport) -> None:
    """Register the session (on its start, or the first event seen from it), heartbeat, log one line."""
    register = hook.starts_session
    if not register:
        try:
            store.agent_record(hook.agent_id)
        except NotFound:
            register = True
    message = hook.message
    if hook.permission_tool and not register:
        # "running Bash(rm -rf build)" from the PreToolUse just before: the call this permission is for
        last = store.agent_record(hook.agent_id).message or ""
        if last.startswith(f"running {hook.permission_tool}("):
            message = "permission to run " + last.removeprefix("running ")
    if register:
        store.register_agent(
            hook.agent_id, kind="reporting", state=hook.state, labels=hook.labels, workspace=hook.workspace
        )
    store.heartbeat(hook.agent_id, state=hook.state, message=message)
    store.log(hook.agent_id, hook.level, message, event=hook.event)
