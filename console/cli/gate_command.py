"""``fleetdeck gate sign PHASE --go|--no-go [--reason TEXT]``: an operator's word on a phase's gate.

It speaks only the Backend protocol (``sign_gate``), so it works on every node that has the capability.
The sign-off is audited and shown beside the decision the node computes from the figures; it never
changes that decision. A production node asks for its name typed, as every other action there does.
"""

from __future__ import annotations

import argparse

from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError


def add_gate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gate = sub.add_parser("gate", help="sign a phase's go/no-go gate (audited, shown beside its decision)")
    actions = gate.add_subparsers(dest="gate_action", metavar="ACTION", required=True)
    sign = actions.add_parser("sign", help="record your GO or NO-GO on a phase's gate")
    sign.add_argument("phase", metavar="PHASE", help="the phase id (or phase:ID)")
    decision = sign.add_mutually_exclusive_group(required=True)
    decision.add_argument("--go", dest="decision", action="store_const", const="go", help="sign GO")
    decision.add_argument("--no-go", dest="decision", action="store_const", const="no-go", help="sign NO-GO")
    sign.add_argument("--reason", help="why, for the audit trail")
    sign.add_argument("--yes", action="store_true", help="do not ask to confirm (production nodes ask)")
    sign.add_argument("--node", help="a configured node (default: the only one, or the local node)")
    sign.add_argument("--demo", action="store_true", help="use the demo fleet's first node")
    sign.add_argument("--state-dir", help="the local node's state directory")
    sign.add_argument("--json", action="store_true", help="print the gate as JSON")


def run(args: argparse.Namespace) -> int:
    # imported here: the parser imports this module on every start, even for --help
    from console.cli.node_calls import confirm, emit_json, run_on_backend, say
    from console.cli.node_choice import load_config_of, single_link_of
    from console.core.clock import SystemClock

    phase_id = args.phase.removeprefix("phase:")
    if not phase_id:
        raise CliError("PHASE: give a phase id, e.g. p3-scale-out", EXIT_USAGE)
    config = load_config_of(args)
    link = single_link_of(args, config, SystemClock(), action="gate sign")
    if link.environment == "production":  # elsewhere a sign-off is no more destructive than a checkpoint
        confirm(link, f"sign {args.decision.upper()} on", f"phase:{phase_id}", args)
    gate = run_on_backend(
        link.backend,
        lambda b: b.sign_gate(phase_id, args.decision, operator=config.operator, reason=args.reason),
    )
    if args.json:
        emit_json(gate)
        return EXIT_OK
    say(f"gate of phase:{phase_id} signed {args.decision.upper()}; the figures say {gate.decision.upper()}")
    for reason in gate.reasons:
        say(f"  {reason}")
    return EXIT_OK
