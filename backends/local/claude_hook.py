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

import re
from typing import Any

from .session_hook import (
    MAX_STDIN_BYTES,
    WAITING_STATE,
    HookInputError,
    HookReport,
    bounded,
    parse,
    report,
    session_labels,
)
from .session_hook import agent_id_of as _agent_id_of
from .session_hook import text as _text
from .session_hook import tool_call as _tool_call

__all__ = [
    "MAX_STDIN_BYTES",
    "WAITING_STATE",
    "HookInputError",
    "HookReport",
    "agent_id_of",
    "bounded",
    "interpret",
    "parse",
    "report",
]


def agent_id_of(session_id: str) -> str:
    return _agent_id_of("claude", session_id)


def interpret(payload: dict[str, Any]) -> HookReport:
    """The state, message and labels one event reports (HookInputError if it is not one we know)."""
    session_id = _text(payload, "session_id")
    if session_id is None:
        raise HookInputError("hook input has no session_id")
    event = _text(payload, "hook_event_name")
    agent_id = agent_id_of(session_id)
    cwd = _text(payload, "cwd")
    labels = session_labels(
        "claude-code",
        session_id,
        cwd,
        model=_text(payload, "model"),
        permission_mode=_text(payload, "permission_mode"),
    )

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
