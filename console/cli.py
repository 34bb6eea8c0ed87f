"""The ``fleetdeck`` command line. Every console action can also be scripted from here.

Exit codes (DESIGN.md §6): 0 success, 1 the node refused or failed, 2 usage or config error, 3 unreachable;
``status`` exits 0 ok, 1 warning, 2 critical, 3 unreachable. Failures print one line, never a traceback.
Heavy imports (Textual, backends) happen inside the handlers so ``--help`` and scripts start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
SCREENS = ("fleet", "node", "agent", "agents", "logs", "audit", "help")
NODE_COMMANDS = frozenset(
    (
        "agents",
        "phases",
        "tasks",
        "checkpoints",
        "audit",
        "logs",
        "dispatch",
        "pause",
        "resume",
        "stop",
        "checkpoint",
        "rollback",
    )
)


class CliError(Exception):
    """A failure to report as one line with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def package_version() -> str:
    try:
        return version("fleetdeck")
    except PackageNotFoundError:
        return "0+unknown"


def _size(text: str) -> tuple[int, int]:
    try:
        width, _, height = text.lower().partition("x")
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, got {text!r}") from None
    if not (20 <= size[0] <= 1000 and 5 <= size[1] <= 500):
        raise argparse.ArgumentTypeError(f"size {text!r} is out of range (20x5 to 1000x500)")
    return size


def _positive(kind: type[int] | type[float], low: float, high: float):
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low}..{high})")
        return value

    return parse


def _add_demo_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="demo fleet seed (default 7)")
    parser.add_argument("--nodes", type=_positive(int, 1, 100), default=3, help="demo nodes (default 3)")
    parser.add_argument(
        "--agents", type=_positive(int, 1, 10_000), default=80, help="demo agents in total (default 80)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetdeck",
        description="A keyboard-driven console for fleets of AI agents on GPU machines.",
    )
    parser.add_argument("--version", action="version", version=f"fleetdeck {package_version()}")
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default: $XDG_CONFIG_HOME/fleetdeck/config.toml)"
    )
    parser.add_argument("--theme", help="colour theme (e.g. fleetdeck-dark, fleetdeck-light, ansi-dark)")
    parser.add_argument("--read-only", action="store_true", help="disable every action")
    parser.add_argument("--demo", action="store_true", help="open the simulated demo fleet")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="open the console on a simulated fleet")
    _add_demo_shape(demo)
    # SUPPRESS: `fleetdeck --read-only demo` must not be undone by this option's default
    demo.add_argument(
        "--read-only", action="store_true", default=argparse.SUPPRESS, help="disable every action"
    )

    snap = sub.add_parser("snapshot", help="render a screen headless to .svg or .txt")
    snap.add_argument("--demo", action="store_true", help="render the demo fleet")
    snap.add_argument("--node", action="append", help="a configured node (repeatable)")
    snap.add_argument("--screen", choices=SCREENS, default="node", help="which screen (default node)")
    snap.add_argument("--size", type=_size, default=(120, 40), help="WIDTHxHEIGHT (default 120x40)")
    snap.add_argument("--at", type=float, help="freeze the clock at this UTC epoch (deterministic)")
    snap.add_argument("-o", "--output", required=True, help="FILE.svg or FILE.txt")
    _add_demo_shape(snap)

    status = sub.add_parser(
        "status", help="one line per node; exit 0 ok, 1 warning, 2 critical, 3 unreachable"
    )
    status.add_argument("--demo", action="store_true", help="check the demo fleet")
    status.add_argument("--node", action="append", help="a configured node (repeatable)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--at", type=float, help="evaluate the demo fleet at this UTC epoch")
    _add_demo_shape(status)

    _add_node_commands(sub)
    _add_local_commands(sub)

    from console.serve_command import add_node_parser

    add_node_parser(sub)

    config = sub.add_parser("config", help="write, locate or check the config file")
    config.add_argument("action", choices=("init", "path", "check"))
    config.add_argument("--force", action="store_true", help="with init: overwrite an existing file")
    return parser


def _node_options(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    parser.add_argument("--node", help="a configured node (default: the only one, or the local node)")
    parser.add_argument("--demo", action="store_true", help="use the demo fleet's first node")
    parser.add_argument(
        "--state-dir",
        help="the local node's state directory (default: $FLEETDECK_STATE_DIR, "
        "else $XDG_STATE_HOME/fleetdeck/node)",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_node_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, text in (
        ("agents", "list the node's agents"),
        ("phases", "list the plan's phases, milestones and gates"),
        ("tasks", "list dispatched work"),
        ("checkpoints", "list checkpoints"),
    ):
        _node_options(sub.add_parser(name, help=text))
    audit = sub.add_parser("audit", help="the audit trail: who did what, when, why, with what outcome")
    _node_options(audit)
    audit.add_argument("--since", type=int, default=0, help="entries after this seq")
    audit.add_argument("--jsonl", action="store_true", help="JSON lines with a node field, as `e` exports")

    logs = sub.add_parser("logs", help="print (and follow) the node's logs")
    _node_options(logs)
    logs.add_argument("--agent", help="only this agent's lines")
    logs.add_argument(
        "--level",
        default="debug",
        choices=("debug", "info", "warning", "error", "critical"),
        help="this level and worse",
    )
    logs.add_argument("--since", type=int, default=0, help="records after this seq (the resume cursor)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")

    dispatch = sub.add_parser("dispatch", help="hand work to an agent, or start a command as a new agent")
    _node_options(dispatch)
    dispatch.add_argument("--agent", help="the agent that takes the task")
    dispatch.add_argument("--payload", help="the task as a JSON object")
    dispatch.add_argument(
        "--command", dest="run", metavar="CMD", help="a command line to start as a new agent"
    )
    dispatch.add_argument("--name", help="the new agent's (or task's) name")
    dispatch.add_argument("--reason", help="why, for the audit trail")

    for name, text in (
        ("pause", "pause an agent, a phase or a task"),
        ("resume", "resume it"),
        ("stop", "stop it (asks to confirm)"),
    ):
        action = sub.add_parser(name, help=text)
        _node_options(action, json_flag=False)
        action.add_argument("target", metavar="TARGET", help="agent:ID, phase:ID, task:ID or an agent id")
        action.add_argument("--reason", help="why, for the audit trail")
        action.add_argument("--yes", action="store_true", help="do not ask to confirm")

    checkpoint = sub.add_parser("checkpoint", help="take a checkpoint of the node's state and git workspaces")
    _node_options(checkpoint)
    checkpoint.add_argument("--label", default="manual", help="a label for the checkpoint")
    checkpoint.add_argument("--reason", help="why, for the audit trail")

    rollback = sub.add_parser("rollback", help="roll back to a checkpoint (takes a safety checkpoint first)")
    _node_options(rollback)
    rollback.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", help="checkpoint id")
    rollback.add_argument(
        "--recover",
        action="store_true",
        help="finish a rollback that was interrupted (the safety checkpoint it prints undoes it)",
    )
    rollback.add_argument("--reason", help="why, for the audit trail")
    rollback.add_argument("--yes", action="store_true", help="do not ask to confirm")


def _add_local_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from backends.local.run_agent import EXIT_STATUS, add_arguments

    run = sub.add_parser(
        "run",
        help="start a command as a supervised agent of this machine's node",
        description="Start CMD as a supervised agent of this machine's node and stay in the foreground "
        "until it ends.",
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(run)

    report = sub.add_parser("report", help="report an agent's state, progress or a milestone (for scripts)")
    report.add_argument("--agent", required=True, help="the reporting agent's name")
    report.add_argument(
        "--state", choices=("starting", "running", "idle", "paused", "stopping", "stopped", "failed")
    )
    report.add_argument("--progress", type=float, help="0..1")
    report.add_argument("--message", help="what it is doing now")
    report.add_argument("--log", help="a log line to record")
    report.add_argument("--level", default="info", choices=("debug", "info", "warning", "error", "critical"))
    report.add_argument("--milestone", help="a milestone id to mark")
    verdict = report.add_mutually_exclusive_group()
    verdict.add_argument("--passed", action="store_true", help="mark --milestone passed")
    verdict.add_argument("--failed", action="store_true", help="mark --milestone failed")
    report.add_argument(
        "--criterion",
        action="append",
        default=[],
        metavar="NAME=ACTUAL",
        help="an actual value for one of the milestone's criteria (repeatable)",
    )
    report.add_argument("--state-dir", help="the local node's state directory")

    plan = sub.add_parser("plan", help="load a plan of phases, milestones, criteria and gates")
    plan.add_argument("action", choices=("apply",))
    plan.add_argument("file", metavar="FILE.toml")
    plan.add_argument("--state-dir", help="the local node's state directory")
    plan.add_argument("--json", action="store_true", help="print the applied phases as JSON")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as exc:
        # the message may carry a node's error text, a label or a name: shown, never obeyed
        print(f"fleetdeck: {_safe(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`); say nothing more, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("FLEETDECK_DEBUG"):
            raise
        print(
            f"fleetdeck: internal error: {type(exc).__name__}: {_safe(exc)} (FLEETDECK_DEBUG=1 shows more)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _safe(exc: BaseException) -> str:
    from backends.safe_text import terminal_safe

    return terminal_safe(exc)


def _run(args: argparse.Namespace) -> int:
    from console import commands

    if args.command == "snapshot":
        return commands.snapshot(args)
    if args.command == "status":
        return commands.status(args)
    if args.command == "config":
        return commands.config(args)
    if args.command in NODE_COMMANDS:
        return commands.node_command(args)
    if args.command == "node":
        from console import serve_command

        return serve_command.run(args)
    if args.command in ("run", "report", "plan"):
        from console import local_commands

        return getattr(local_commands, args.command)(args)
    return commands.console(args)


if __name__ == "__main__":
    sys.exit(main())
