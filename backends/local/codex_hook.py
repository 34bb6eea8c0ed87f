"""One Codex CLI event, read from its JSON, reported as the session's agent in the local store.

Codex gives two interfaces (tests/data/codex_hooks/README.md names the source of each):

- ``notify = [PROGRAM, ARGS...]`` in config.toml: Codex runs PROGRAM with one JSON argument appended (argv,
  stdin is /dev/null) when a turn ends: ``{"type": "agent-turn-complete", "thread-id", "turn-id", "cwd",
  "client" (optional), "input-messages", "last-assistant-message" (may be null)}``. That is the only event:
  no turn start, no tool call, no approval prompt, no session end.
- lifecycle hooks in hooks.json (or ``[hooks]`` in config.toml): a command hook gets the event's JSON on
  stdin with ``session_id``, ``turn_id`` (turn-scoped events), ``transcript_path``, ``cwd``,
  ``hook_event_name``, ``model``, ``permission_mode``, and per event ``source`` (SessionStart), ``prompt``
  (UserPromptSubmit), ``tool_name``/``tool_input`` (PreToolUse, PermissionRequest, PostToolUse, which also
  has ``tool_response``), ``last_assistant_message`` (Stop, StopFailure), ``error``/``error_details``
  (StopFailure). Codex has no SessionEnd or Notification event.

The session becomes agent ``codex-<first 8 letters or digits of the session (thread) id>``, kind
"reporting", its cwd the workspace, the cwd's basename its ``project`` label. Every text taken from the
payload is untrusted: it is bounded here and made terminal-safe where it is shown.
"""

from __future__ import annotations

from typing import Any

from .session_hook import (
    MAX_STDIN_BYTES,
    WAITING_STATE,
    HookInputError,
    HookReport,
    agent_id_of,
    bounded,
    parse,
    report,
    session_labels,
    text,
    tool_call,
)

__all__ = ["MAX_STDIN_BYTES", "HookInputError", "HookReport", "interpret", "parse", "report"]

SOURCE = "codex"
TURN_COMPLETE = "agent-turn-complete"
IDLE_MESSAGE = "waiting for your next prompt"
REPLY_CHARS = 200


def _reply(last: object) -> str | None:
    """The log line that says what the assistant ended its turn with, if it said anything."""
    if not isinstance(last, str) or not last.strip():
        return None
    return bounded(f"last reply: {last}", REPLY_CHARS)


def interpret(payload: dict[str, Any]) -> HookReport:
    """The state, message and labels one event reports (HookInputError if it is not one we know)."""
    if "hook_event_name" not in payload and "type" in payload:
        return _notify(payload)
    return _lifecycle(payload)


def _notify(payload: dict[str, Any]) -> HookReport:
    kind = text(payload, "type")
    if kind != TURN_COMPLETE:
        raise HookInputError(f"notify type {bounded(kind, 40)!r} is not one fleetdeck reports")
    thread_id = text(payload, "thread-id")
    if thread_id is None:
        raise HookInputError("notify input has no thread-id")
    cwd = text(payload, "cwd")
    return HookReport(
        agent_id=agent_id_of(SOURCE, thread_id, "thread-id"),
        state="idle",
        message=IDLE_MESSAGE,
        event=TURN_COMPLETE,
        workspace=cwd,
        labels=session_labels(SOURCE, thread_id, cwd, client=text(payload, "client")),
        detail=_reply(payload.get("last-assistant-message")),
    )


def _lifecycle(payload: dict[str, Any]) -> HookReport:
    session_id = text(payload, "session_id")
    if session_id is None:
        raise HookInputError("hook input has no session_id")
    event = text(payload, "hook_event_name")
    agent_id = agent_id_of(SOURCE, session_id)
    cwd = text(payload, "cwd")
    labels = session_labels(
        SOURCE,
        session_id,
        cwd,
        model=text(payload, "model"),
        permission_mode=text(payload, "permission_mode"),
    )

    def made(state: str, message: str, *, level: str = "info", detail: str | None = None) -> HookReport:
        return HookReport(
            agent_id=agent_id,
            state=state,
            message=message,
            event=str(event),
            workspace=cwd,
            labels=labels,
            level=level,
            starts_session=event == "SessionStart",
            detail=detail,
        )

    if event == "SessionStart":
        source = text(payload, "source")
        return made("running", "session started" + (f" ({bounded(source, 20)})" if source else ""))
    if event == "UserPromptSubmit":
        prompt = text(payload, "prompt")
        return made("running", bounded(prompt) if prompt else "prompt submitted")
    if event == "PreToolUse":
        return made("running", bounded(f"running {tool_call(payload)}"))
    if event == "PostToolUse":
        return made("running", bounded(f"ran {tool_call(payload)}"))
    if event == "PermissionRequest":
        message = bounded(f"permission to run {tool_call(payload)}")
        return made(WAITING_STATE, message, level="warning")
    if event == "Stop":
        return made("idle", IDLE_MESSAGE, detail=_reply(payload.get("last_assistant_message")))
    if event == "StopFailure":
        # the turn ended on an error (rate_limit, overloaded, ...): the session itself waits for a prompt
        error = text(payload, "error") or "unknown"
        details = text(payload, "error_details")
        message = bounded(f"turn failed ({error})" + (f": {details}" if details else ""))
        return made("idle", message, level="error", detail=_reply(payload.get("last_assistant_message")))
    raise HookInputError(f"hook event {bounded(event, 40)!r} is not one fleetdeck reports")
