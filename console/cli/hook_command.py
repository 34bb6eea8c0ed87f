"""``fleetdeck hook claude``: report a Claude Code session from its hook events; ``hook install|uninstall
claude``: add those hooks to Claude Code's settings, or take them out.

The hook itself must never block or fail Claude Code: whatever goes wrong (no input, garbage, an unknown
event, a store it cannot open) ends with exit 0 and one note on stderr. It imports only the store.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError


def add_hook_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hook = sub.add_parser("hook", help="report Claude Code sessions as agents (its hooks call this)")
    actions = hook.add_subparsers(dest="hook_action", metavar="ACTION", required=True)
    actions.add_parser(
        "claude", help="read one Claude Code hook event on stdin and report its session (always exits 0)"
    )
    for name, text in (
        ("install", "add fleetdeck's hooks to Claude Code's settings (keeps every other hook)"),
        ("uninstall", "take fleetdeck's hooks out of Claude Code's settings"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("tool", choices=("claude",))
        where = action.add_mutually_exclusive_group()
        where.add_argument("--project", metavar="DIR", help="DIR/.claude/settings.json (default: .)")
        where.add_argument("--user", action="store_true", help="~/.claude/settings.json")


def run(args: argparse.Namespace) -> int:
    if args.hook_action == "claude":
        return claude_hook()
    return _settings(args)


def claude_hook() -> int:
    from backends.local.claude_hook import MAX_STDIN_BYTES, HookInputError, interpret, parse, report

    try:
        raw = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
        hook = interpret(parse(raw))
        from backends.local.store import Store, default_state_dir

        with Store(default_state_dir(), verify=False) as store:
            report(store, hook)
    except HookInputError as exc:
        _note(str(exc))
    except Exception as exc:  # the hook never fails Claude Code: one note, exit 0
        _note(f"not recorded: {type(exc).__name__}: {exc}")
    return EXIT_OK


def _note(text: str) -> None:
    from backends.safe_text import terminal_safe

    with contextlib.suppress(Exception):  # a closed stderr is no reason to fail the hook either
        print(f"fleetdeck hook: {terminal_safe(text)[:300]}", file=sys.stderr)


def hook_command() -> str:
    """The command Claude Code runs: this fleetdeck's entry point by absolute path where it was started
    as ``fleetdeck`` (pipx puts it in ~/.local/bin, which a hook's shell may not have on PATH; the link
    outlives upgrades), else this interpreter with ``-m console`` (a checkout, a plain venv)."""
    entry = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if entry is not None and entry.name == "fleetdeck" and entry.exists():
        return f"{shlex.quote(str(entry.absolute()))} hook claude"
    return f"{shlex.quote(sys.executable)} -m console hook claude"


def _settings(args: argparse.Namespace) -> int:
    from backends.local.claude_settings import SettingsError, install, settings_path, uninstall

    path = settings_path(user_home=None) if args.user else settings_path(project=Path(args.project or "."))
    try:
        if args.hook_action == "install":
            events = install(path, hook_command())
            done = f"added to {', '.join(events)}" if events else "already installed"
        else:
            events = uninstall(path, hook_command())
            done = f"removed from {', '.join(events)}" if events else "none installed"
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}", EXIT_USAGE) from None
    print(f"{path}: fleetdeck hooks {done}")
    return EXIT_OK
