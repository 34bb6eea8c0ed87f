"""Add fleetdeck to Codex CLI's configuration, or take it out, leaving everything else as it was.

Two places, one per interface (tests/data/codex_hooks/README.md names the source of each):

- lifecycle hooks: ``CODEX_HOME/hooks.json`` (user; CODEX_HOME defaults to ~/.codex) or
  ``DIR/.codex/hooks.json`` (project), the same ``{"hooks": {EVENT: [{"hooks": [{"type": "command",
  "command": ..., "timeout": ...}]}]}}`` shape as Claude Code's settings; merged as those are (our entries
  known by their command, key order and unknown keys kept, the file replaced atomically).
- ``notify`` in ``config.toml``: one top-level key, an argv list. config.toml is a file the user edits by
  hand, with comments, so it is never rewritten from parsed TOML: our line is inserted (before the first
  table) or removed as text, and the result is parsed again and must equal the old settings plus (or
  minus) our notify, else nothing is written. A notify that is someone else's is refused: Codex runs only
  one notify program.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from .session_hook import (
    HooksFileError,
    install_hooks,
    is_fleetdeck_command,
    replace_file,
    uninstall_hooks,
)

HOOK_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "Stop",
    "StopFailure",  # newer Codex builds; an older one ignores an event key it does not know
)
HOOK_TIMEOUT_S = 5
TOOL = "codex"
_NOTIFY_LINE = re.compile(r"^[ \t]*notify[ \t]*=")

ConfigError = HooksFileError  # the file cannot be read as Codex configuration; nothing was written


def codex_home(project: Path | None = None) -> Path:
    if project is not None:
        return project / ".codex"
    env = os.environ.get("CODEX_HOME")
    return Path(env) if env else Path.home() / ".codex"


def is_fleetdeck_hook(command: object) -> bool:
    return is_fleetdeck_command(command, TOOL)


def is_fleetdeck_notify(argv: object) -> bool:
    """A notify argv that runs ``fleetdeck hook codex`` (by its entry point, or ``python -m console``)."""
    if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv) or not argv:
        return False
    return is_fleetdeck_command(" ".join(word.replace(" ", "_") for word in argv), TOOL)


# --- lifecycle hooks: hooks.json --------------------------------------------------------------------------


def install(path: Path, command: str) -> list[str]:
    """Add ``command`` to every event that lacks it; returns the events it was added to."""
    return install_hooks(
        path,
        command,
        events=HOOK_EVENTS,
        matched=frozenset(),  # no matcher: every tool, every session source
        ours=is_fleetdeck_hook,
        entry={"timeout": HOOK_TIMEOUT_S},
    )


def uninstall(path: Path, command: str) -> list[str]:
    return uninstall_hooks(path, command, ours=is_fleetdeck_hook)


# --- notify: config.toml ----------------------------------------------------------------------------------


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "", {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        content = raw.decode("utf-8")
        return content, tomllib.loads(content)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); left untouched") from None


def _parses_to(content: str, expected: dict[str, Any]) -> bool:
    try:
        return tomllib.loads(content) == expected
    except tomllib.TOMLDecodeError:
        return False


def notify_line(argv: list[str]) -> str:
    # a JSON string is a TOML basic string (its escapes are TOML's): the result is parsed again anyway
    return "notify = [" + ", ".join(json.dumps(word, ensure_ascii=False) for word in argv) + "]"


def install_notify(path: Path, argv: list[str]) -> bool:
    """Set ``notify`` to ``argv``; False if it already runs fleetdeck. A notify that is someone else's, or
    a file our line cannot be added to without changing anything else, is refused (ConfigError)."""
    content, settings = _read_toml(path)
    if "notify" in settings:
        if is_fleetdeck_notify(settings["notify"]):
            return False
        theirs = json.dumps(settings["notify"], ensure_ascii=False)[:120]
        raise ConfigError(
            f"{path}: notify is already set to {theirs}; Codex runs one notify program, so fleetdeck "
            "will not replace it (remove it, or install the lifecycle hooks without --notify); left untouched"
        )
    newline = "\r\n" if "\r\n" in content else "\n"
    line = notify_line(argv)
    expected = {**settings, "notify": argv}
    lines = content.splitlines(keepends=True)
    for at in _insertion_points(lines):
        if at == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            candidate = content + newline + line
        else:
            candidate = "".join(lines[:at]) + line + newline + "".join(lines[at:])
        if _parses_to(candidate, expected):
            replace_file(path, candidate, ".config.")
            return True
    raise ConfigError(f"{path}: notify cannot be added without changing other settings; left untouched")


def _insertion_points(lines: list[str]) -> list[int]:
    """Before each table header (moving above the comments that lead into it), first to last; then the end.
    Parsing the result decides which one is really at the top level."""
    points = []
    for index, line in enumerate(lines):
        if line.lstrip().startswith("["):
            at = index
            while at > 0 and lines[at - 1].lstrip().startswith("#"):
                at -= 1
            points.append(at)
    points.append(len(lines))
    return points


def uninstall_notify(path: Path) -> bool:
    """Take out a ``notify`` that runs fleetdeck; False if there is none (someone else's stays)."""
    if not path.exists():
        return False
    content, settings = _read_toml(path)
    if not is_fleetdeck_notify(settings.get("notify")):
        return False
    expected = {key: value for key, value in settings.items() if key != "notify"}
    lines = content.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if not _NOTIFY_LINE.match(line):
            continue
        before = lines[:index]
        if index == len(lines) - 1 and not line.endswith(("\n", "\r")) and before:
            before[-1] = before[-1].rstrip("\r\n")  # our line was the last, added after a newline of ours
        candidate = "".join(before + lines[index + 1 :])
        if _parses_to(candidate, expected):
            replace_file(path, candidate, ".config.")
            return True
    raise ConfigError(f"{path}: fleetdeck's notify spans more than one line; remove it by hand")
