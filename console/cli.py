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
SCREENS = ("fleet", "node", "agent", "logs", "help")


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

    config = sub.add_parser("config", help="write, locate or check the config file")
    config.add_argument("action", choices=("init", "path", "check"))
    config.add_argument("--force", action="store_true", help="with init: overwrite an existing file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except CliError as exc:
        print(f"fleetdeck: {exc}", file=sys.stderr)
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
            f"fleetdeck: internal error: {type(exc).__name__}: {exc} (FLEETDECK_DEBUG=1 shows more)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    from console import commands

    if args.command == "snapshot":
        return commands.snapshot(args)
    if args.command == "status":
        return commands.status(args)
    if args.command == "config":
        return commands.config(args)
    return commands.console(args)


if __name__ == "__main__":
    sys.exit(main())
