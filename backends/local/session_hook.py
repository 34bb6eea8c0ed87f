"""What every coding-session hook (Claude Code, Codex) shares: reading one event's JSON, bounding the text it
carries, naming the session's agent, and reporting it in the local store; and merging a command hook into a
``hooks.json``-shaped settings file (``{"hooks": {EVENT: [{"matcher": ..., "hooks": [{"type": "command",
"command": ...}]}]}}``), which Claude Code and Codex both read.

Every text taken from a payload is untrusted: it is bounded here and made terminal-safe where it is shown, as
any agent's text is.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from backends.errors import NotFound

from .store import Store

MAX_STDIN_BYTES = 1 << 20  # a PostToolUse carries the tool's whole response; more than this is not read
MESSAGE_CHARS = 120
_SHORT_ID = re.compile(r"[^A-Za-z0-9]")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

WAITING_STATE = "waiting"  # needs a human: an approval, or the next prompt after an idle reminder


class HookInputError(ValueError):
    """The payload is not a hook event this command can report."""


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
    # a second log line after the message (what the assistant said at the end of its turn)
    detail: str | None = None


def bounded(text: object, limit: int = MESSAGE_CHARS) -> str:
    """One line of at most ``limit`` characters (whitespace runs folded, an ellipsis where cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse(raw: bytes, where: str = "stdin") -> dict[str, Any]:
    if len(raw) > MAX_STDIN_BYTES:
        raise HookInputError(f"hook input is larger than {MAX_STDIN_BYTES} bytes; not read")
    if not raw.strip():
        raise HookInputError(f"no hook input on {where}")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookInputError(f"hook input is not JSON ({bounded(exc, 80)})") from None
    if not isinstance(payload, dict):
        raise HookInputError("hook input is not a JSON object")
    return payload


def text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def tool_call(payload: dict[str, Any]) -> str:
    """'Bash(rm -rf build)', 'Edit(src/app.py)' or the tool's name alone."""
    tool = bounded(text(payload, "tool_name") or "a tool", 40)
    tool_input = payload.get("tool_input")
    if isinstance(tool_input, dict):
        for key in ("command", "file_path", "path", "url", "pattern", "query", "description"):
            value = tool_input.get(key)
            if isinstance(value, str) and value:
                return f"{tool}({bounded(value, MESSAGE_CHARS - len(tool) - 12)})"
    return tool


def agent_id_of(prefix: str, session_id: str, what: str = "session_id") -> str:
    short = _SHORT_ID.sub("", session_id)[:8]
    if not short:
        raise HookInputError(f"{what} has no letters or digits")
    return f"{prefix}-{short}"


def session_labels(source: str, session_id: str, cwd: str | None, **values: str | None) -> dict[str, str]:
    """``source``, ``session_id``, the cwd's basename as ``project`` (the agent's name in the store is its
    id; the project it works in rides along as a label), and whichever of ``values`` are given."""
    labels = {"source": source, "session_id": bounded(session_id, 64)}
    if cwd:
        project = _NAME_CHARS.sub("-", PurePath(cwd).name).strip("-.")
        if project:
            labels["project"] = project[:64]
    for key, value in values.items():
        if value:
            labels[key] = bounded(value, 64)
    return labels


def report(store: Store, hook: HookReport) -> None:
    """Register the session (on its start, or the first event seen from it), heartbeat, log one line (two
    where the event carries a ``detail``)."""
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
    if hook.detail:
        store.log(hook.agent_id, "info", hook.detail, event=hook.event)


# --- hooks.json-shaped settings files ------------------------------------------------------------------


class HooksFileError(ValueError):
    """The file cannot be read as hook settings; nothing was written."""


def read_hooks_file(path: Path) -> dict[str, Any]:
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise HooksFileError(f"{path}: cannot be read ({exc})") from None
    if not content.strip():
        return {}
    try:
        settings = json.loads(content)
    except ValueError as exc:
        raise HooksFileError(f"{path} is not valid JSON ({exc}); left untouched") from None
    if not isinstance(settings, dict):
        raise HooksFileError(f"{path} is not a JSON object; left untouched")
    hooks = settings.get("hooks")
    if hooks is not None and not isinstance(hooks, dict):
        raise HooksFileError(f"{path}: 'hooks' is not an object; left untouched")
    return settings


def replace_file(path: Path, content: str, prefix: str) -> None:
    """Write ``content`` to a temporary file beside ``path`` and rename it over ``path`` (its mode kept):
    a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_hooks_file(path: Path, settings: dict[str, Any]) -> None:
    replace_file(path, json.dumps(settings, indent=2, ensure_ascii=False) + "\n", ".settings.")


def is_fleetdeck_command(command: object, tool: str) -> bool:
    """A hook command that runs ``fleetdeck hook TOOL``, however fleetdeck was reached (its entry point's
    path, or ``python -m console``): an install from another path neither duplicates nor stays."""
    if not isinstance(command, str):
        return False
    words = command.split()
    if words[-2:] != ["hook", tool]:
        return False
    runner = words[:-2]
    return (len(runner) == 1 and Path(runner[0].strip("'\"")).name == "fleetdeck") or runner[-2:] == [
        "-m",
        "console",
    ]


OursFn = Callable[[object], bool]


def _ours(hook: object, command: str, ours: OursFn) -> bool:
    if not isinstance(hook, dict):
        return False
    found = hook.get("command")
    return found == command or ours(found)


def _has(groups: list[Any], command: str, ours: OursFn) -> bool:
    return any(
        isinstance(group, dict)
        and isinstance(group.get("hooks"), list)
        and any(_ours(hook, command, ours) for hook in group["hooks"])
        for group in groups
    )


def install_hooks(
    path: Path,
    command: str,
    *,
    events: Iterable[str],
    matched: frozenset[str],
    ours: OursFn,
    entry: dict[str, Any],
) -> list[str]:
    """Add ``command`` (with the keys of ``entry``) to every event that lacks it; returns the events it was
    added to. Key order and unknown keys are kept; the file is replaced atomically."""
    settings = read_hooks_file(path)
    hooks = settings.setdefault("hooks", {})
    added = []
    for event in events:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise HooksFileError(f"{path}: hooks.{event} is not a list; left untouched")
        if _has(groups, command, ours):
            continue
        group: dict[str, Any] = {"matcher": ""} if event in matched else {}
        group["hooks"] = [{"type": "command", "command": command, **entry}]
        groups.append(group)
        added.append(event)
    if added:
        write_hooks_file(path, settings)
    return added


def uninstall_hooks(path: Path, command: str, *, ours: OursFn) -> list[str]:
    """Take out every hook running ``command`` or one ``ours`` knows (and a group it leaves empty);
    returns the events."""
    if not path.exists():
        return []
    settings = read_hooks_file(path)
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    removed = []
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list) or not _has(groups, command, ours):
            continue
        kept = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                rest = [hook for hook in group["hooks"] if not _ours(hook, command, ours)]
                if not rest and len(rest) != len(group["hooks"]):
                    continue  # the group held only our hook
                group = {**group, "hooks": rest}
            kept.append(group)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
        removed.append(event)
    if not hooks:
        del settings["hooks"]
    if removed:
        write_hooks_file(path, settings)
    return removed
