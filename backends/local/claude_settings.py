"""Add fleetdeck's hooks to a Claude Code settings file, or take them out, leaving everything else as it was.

Claude Code reads hooks from ~/.claude/settings.json (user) and DIR/.claude/settings.json (project):
``{"hooks": {EVENT: [{"matcher": ..., "hooks": [{"type": "command", "command": ..., "timeout": ...}]}]}}``
(https://code.claude.com/docs/en/hooks). Our entries are known by their command; installing twice adds
nothing, key order and unknown keys are kept, and the file is replaced atomically. A file that is not a JSON
object is refused and left untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Notification",
    "Stop",
    "SessionEnd",
)
# events that take a tool-name (or notification-type) matcher: "" matches every one
_MATCHED = frozenset(
    {"PreToolUse", "PermissionRequest", "PostToolUse", "Notification", "SessionStart", "SessionEnd"}
)
HOOK_TIMEOUT_S = 5


class SettingsError(ValueError):
    """The settings file cannot be read as Claude Code settings; nothing was written."""


def settings_path(*, project: Path | None = None, user_home: Path | None = None) -> Path:
    if project is not None:
        return project / ".claude" / "settings.json"
    return (user_home or Path.home()) / ".claude" / "settings.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot be read ({exc})") from None
    if not text.strip():
        return {}
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"{path} is not valid JSON ({exc}); left untouched") from None
    if not isinstance(settings, dict):
        raise SettingsError(f"{path} is not a JSON object; left untouched")
    hooks = settings.get("hooks")
    if hooks is not None and not isinstance(hooks, dict):
        raise SettingsError(f"{path}: 'hooks' is not an object; left untouched")
    return settings


def _write(path: Path, settings: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".settings.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(settings, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def is_fleetdeck_hook(command: object) -> bool:
    """A hook command that runs ``fleetdeck hook claude``, however fleetdeck was reached (its entry
    point's path, or ``python -m console``): an install from another path neither duplicates nor stays."""
    if not isinstance(command, str):
        return False
    words = command.split()
    if words[-2:] != ["hook", "claude"]:
        return False
    runner = words[:-2]
    return (len(runner) == 1 and Path(runner[0].strip("'\"")).name == "fleetdeck") or runner[-2:] == [
        "-m",
        "console",
    ]


def _ours(hook: object, command: str) -> bool:
    if not isinstance(hook, dict):
        return False
    found = hook.get("command")
    return found == command or is_fleetdeck_hook(found)


def _has(groups: list[Any], command: str) -> bool:
    return any(
        isinstance(group, dict)
        and isinstance(group.get("hooks"), list)
        and any(_ours(hook, command) for hook in group["hooks"])
        for group in groups
    )


def install(path: Path, command: str) -> list[str]:
    """Add ``command`` to every event that lacks it; returns the events it was added to."""
    settings = _read(path)
    hooks = settings.setdefault("hooks", {})
    added = []
    for event in HOOK_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise SettingsError(f"{path}: hooks.{event} is not a list; left untouched")
        if _has(groups, command):
            continue
        group: dict[str, Any] = {"matcher": ""} if event in _MATCHED else {}
        group["hooks"] = [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]
        groups.append(group)
        added.append(event)
    if added:
        _write(path, settings)
    return added


def uninstall(path: Path, command: str) -> list[str]:
    """Take out every hook running ``command`` (and a group it leaves empty); returns the events."""
    if not path.exists():
        return []
    settings = _read(path)
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    removed = []
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list) or not _has(groups, command):
            continue
        kept = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                rest = [hook for hook in group["hooks"] if not _ours(hook, command)]
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
        _write(path, settings)
    return removed
