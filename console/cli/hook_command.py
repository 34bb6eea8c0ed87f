"""``fleetdeck hook claude|codex``: report a Claude Code or Codex CLI session from its hook events; ``hook
install|uninstall claude|codex``: add those hooks to the tool's settings, or take them out.

The hook itself must never block or fail the session: whatever goes wrong (no input, garbage, an unknown
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
    hook = sub.add_parser(
        "hook", help="report Claude Code and Codex sessions as agents (their hooks call this)"
    )
    actions = hook.add_subparsers(dest="hook_action", metavar="ACTION", required=True)
    actions.add_parser(
        "claude", help="read one Claude Code hook event on stdin and report its session (always exits 0)"
    )
    codex = actions.add_parser(
        "codex",
        help="report a Codex session from one event: notify's JSON argument, else a hook's JSON on stdin "
        "(always exits 0)",
    )
    codex.add_argument("payload", nargs="?", metavar="JSON", help="notify's agent-turn-complete JSON")
    for name, text in (
        ("install", "add fleetdeck's hooks to Claude Code's or Codex's settings (keeps every other hook)"),
        ("uninstall", "take fleetdeck's hooks out of Claude Code's or Codex's settings"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("tool", choices=("claude", "codex"))
        where = action.add_mutually_exclusive_group()
        where.add_argument(
            "--project",
            metavar="DIR",
            help="DIR/.claude/settings.json, or DIR/.codex/ for codex (default: .)",
        )
        where.add_argument(
            "--user", action="store_true", help="~/.claude/settings.json, or $CODEX_HOME (~/.codex) for codex"
        )
        if name == "install":
            action.add_argument(
                "--notify",
                action="store_true",
                help="codex: set notify in config.toml (turn ends only) instead of the lifecycle hooks",
            )


def run(args: argparse.Namespace) -> int:
    if args.hook_action == "claude":
        return claude_hook()
    if args.hook_action == "codex":
        return codex_hook(args.payload)
    if args.tool == "codex":
        return _codex_settings(args)
    if getattr(args, "notify", False):
        raise CliError("--notify is a Codex setting: fleetdeck hook install codex --notify", EXIT_USAGE)
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


def codex_hook(argument: str | None) -> int:
    """Codex's notify appends its JSON as the last argument (stdin is /dev/null); a lifecycle hook writes
    its JSON on stdin and passes no argument."""
    from backends.local.codex_hook import MAX_STDIN_BYTES, HookInputError, interpret, parse, report

    try:
        if argument is not None:
            raw, where = argument.encode("utf-8", errors="surrogateescape"), "the command line"
        else:
            raw, where = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1), "stdin or the command line"
        hook = interpret(parse(raw, where))
        from backends.local.store import Store, default_state_dir

        with Store(default_state_dir(), verify=False) as store:
            report(store, hook)
    except HookInputError as exc:
        _note(str(exc))
    except Exception as exc:  # the hook never fails Codex: one note, exit 0
        _note(f"not recorded: {type(exc).__name__}: {exc}")
    return EXIT_OK


def _note(text: str) -> None:
    from backends.safe_text import terminal_safe

    with contextlib.suppress(Exception):  # a closed stderr is no reason to fail the hook either
        print(f"fleetdeck hook: {terminal_safe(text)[:300]}", file=sys.stderr)


def hook_argv(tool: str = "claude") -> list[str]:
    """What the hook runs: this fleetdeck's entry point by absolute path where it was started as
    ``fleetdeck`` (pipx puts it in ~/.local/bin, which a hook's shell may not have on PATH; the link
    outlives upgrades), else this interpreter with ``-m console`` (a checkout, a plain venv)."""
    entry = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if entry is not None and entry.name == "fleetdeck" and entry.exists():
        return [str(entry.absolute()), "hook", tool]
    return [sys.executable, "-m", "console", "hook", tool]


def hook_command(tool: str = "claude") -> str:
    """The shell command a hook runs (see hook_argv)."""
    argv = hook_argv(tool)
    return " ".join([shlex.quote(argv[0]), *argv[1:]])


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


def _codex_settings(args: argparse.Namespace) -> int:
    from backends.local import codex_config

    home = codex_config.codex_home(None if args.user else Path(args.project or "."))
    hooks_path, config_path = home / "hooks.json", home / "config.toml"
    try:
        if args.hook_action == "install" and args.notify:
            added = codex_config.install_notify(config_path, hook_argv("codex"))
            print(f"{config_path}: fleetdeck notify {'set' if added else 'already installed'}")
        elif args.hook_action == "install":
            events = codex_config.install(hooks_path, hook_command("codex"))
            done = f"added to {', '.join(events)}" if events else "already installed"
            print(f"{hooks_path}: fleetdeck hooks {done}")
            if events:
                print("Codex runs new hooks once you trust them: review them with /hooks in Codex")
        else:
            events = codex_config.uninstall(hooks_path, hook_command("codex"))
            done = f"removed from {', '.join(events)}" if events else "none installed"
            print(f"{hooks_path}: fleetdeck hooks {done}")
            removed = codex_config.uninstall_notify(config_path)
            print(f"{config_path}: fleetdeck notify {'removed' if removed else 'none installed'}")
    except codex_config.ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"{home}: {exc.strerror or exc}", EXIT_USAGE) from None
    return EXIT_OK
