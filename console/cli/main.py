"""``fleetdeck``: parse the command line, hand it to its command family, and end with an exit code.

Every console action can also be scripted from here. Failures print one line, never a traceback (exit codes:
console/cli/exits.py). Heavy imports (Textual, backends) happen inside the handlers so ``--help`` and
scripts start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from console.cli.exits import EXIT_FAILED, EXIT_OK, CliError
from console.cli.parser import NODE_COMMANDS, build_parser


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
    """Hand ``args`` to its command family (imported only now: each brings its own dependencies)."""
    from importlib import import_module

    module, function = _HANDLERS.get(args.command, ("console.cli.console_commands", "console"))
    return int(getattr(import_module(module), function)(args))


# command -> (module, function); anything else (no command, `demo`) opens the console
_HANDLERS: dict[str | None, tuple[str, str]] = {
    "snapshot": ("console.cli.console_commands", "snapshot"),
    "status": ("console.cli.status_command", "status"),
    "report-card": ("console.cli.report_card_command", "report_card"),
    "config": ("console.cli.config_command", "config"),
    "node": ("console.cli.serve_command", "run"),
    "gate": ("console.cli.gate_command", "run"),
    "hook": ("console.cli.hook_command", "run"),
    "otlp": ("console.cli.otlp_command", "run"),
    **{name: ("console.cli.local_commands", name) for name in ("run", "report", "plan")},
    **{name: ("console.cli.node_commands", "run") for name in NODE_COMMANDS},
}


if __name__ == "__main__":
    sys.exit(main())
