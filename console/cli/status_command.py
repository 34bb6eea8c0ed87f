"""``fleetdeck status``: one line per node (or ``--json``) for scripts and cron; the exit code is the
worst state (0 ok, 1 warning, 2 critical, 3 unreachable)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from backends.safe_text import terminal_safe
from console.cli.node_choice import links_of, load_config_of
from console.core.clock import FrozenClock, SystemClock


def status(args: argparse.Namespace) -> int:
    from console.core.status import fleet_status

    config = load_config_of(args)
    clock = FrozenClock(args.at) if args.at is not None else SystemClock()
    links = links_of(args, config, clock, demo=args.demo)
    report = asyncio.run(fleet_status(links, config, clock))
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        print()
    else:
        for line in report.lines():  # node names, error texts and alert reasons come from the nodes
            print(terminal_safe(line))
    return report.exit_code
