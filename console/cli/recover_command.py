"""``fleetdeck rollback --recover``: finish a rollback that was interrupted (the warning every command on
that node gives until it is: node_calls.warn_if_interrupted).

Recovery finishes the rollback (to the checkpoint the operator chose and confirmed), resumes the agents it
had paused and prints the safety checkpoint, as a rollback does: undoing it is the ordinary
``fleetdeck rollback SAFETY``.
"""

from __future__ import annotations

import argparse
import sys

from backends.safe_text import terminal_safe
from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError
from console.cli.node_calls import confirm, emit_json, run_on_backend
from console.core.node_link import NodeLink


def recover(link: NodeLink, args: argparse.Namespace, operator: str) -> int:
    if not args.recover:
        raise CliError("rollback needs a CHECKPOINT, or --recover to finish an interrupted one", EXIT_USAGE)
    if args.checkpoint:
        raise CliError("rollback --recover takes no CHECKPOINT: it finishes the one interrupted", EXIT_USAGE)
    if not args.yes:
        notice = run_on_backend(link.backend, lambda b: b.interrupted_rollback(), warn=False)
        if notice is None:
            print(terminal_safe(f"nothing to recover on node {link.name}"))
            return EXIT_OK
        print(terminal_safe(notice), file=sys.stderr)
        confirm(link, "finish", "the interrupted rollback", args)
    reason = getattr(args, "reason", None)
    safety = run_on_backend(
        link.backend, lambda b: b.recover_rollback(operator=operator, reason=reason), warn=False
    )
    if args.json:
        emit_json(safety)
    elif safety is None:
        print(terminal_safe(f"nothing to recover on node {link.name}"))
    else:
        print(
            terminal_safe(
                f"recovered: finished the interrupted rollback; undo with: fleetdeck rollback {safety.id}"
            )
        )
    return EXIT_OK
