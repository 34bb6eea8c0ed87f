"""Add fleetdeck's hooks to a Claude Code settings file, or take them out, leaving everything else as it was.

Claude Code reads hooks from ~/.claude/settings.json (user) and DIR/.claude/settings.json (project):
``{"hooks": {EVENT: [{"matcher": ..., "hooks": [{"type": "command", "command": ..., "timeout": ...}]}]}}``
(https://code.claude.com/docs/en/hooks). Our entries are known by their command; installing twice adds
nothing, key order and unknown keys are kept, and the file is replaced atomically. A file that is not a JSON
object is refused and left untouched.
"""

from __future__ import annotations

from pathlib import Path

from .session_hook import HooksFileError, install_hooks, is_fleetdeck_command, uninstall_hooks

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


SettingsError = HooksFileError  # the settings file cannot be read as Claude Code settings; nothing written


def settings_path(*, project: Path | None = None, user_home: Path | None = None) -> Path:
    if project is not None:
        return project / ".claude" / "settings.json"
    return (user_home or Path.home()) / ".claude" / "settings.json"


def is_fleetdeck_hook(command: object) -> bool:
    """A hook command that runs ``fleetdeck hook claude``, however fleetdeck was reached (its entry
    point's path, or ``python -m console``): an install from another path neither duplicates nor stays."""
    return is_fleetdeck_command(command, "claude")


def install(path: Path, command: str) -> list[str]:
    """Add ``command`` to every event that lacks it; returns the events it was added to."""
    return install_hooks(
        path,
        command,
        events=HOOK_EVENTS,
        matched=_MATCHED,
        ours=is_fleetdeck_hook,
        entry={"timeout": HOOK_TIMEOUT_S},
    )


def uninstall(path: Path, command: str) -> list[str]:
    """Take out every hook running ``command`` (and a group it leaves empty); returns the events."""
    return uninstall_hooks(path, command, ours=is_fleetdeck_hook)
