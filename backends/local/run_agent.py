"""``python -m backends.local.run_agent``: the supervisor's own entry point.

``fleetdeck run`` uses the same arguments; a dispatched command is started through this module, detached,
so a new agent outlives the console (or node server) that dispatched it without importing the console.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .supervisor import AgentSpec

# The store and supervisor are imported where they are used: every `fleetdeck` command builds its parser
# with add_arguments, and only `run` needs them.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="the agent's name (letters, digits, . _ -)")
    parser.add_argument("--workspace", help="working directory (a git repository gets checkpoint snapshots)")
    parser.add_argument("--restart", choices=("no", "on-failure"), default="no", help="restart policy")
    parser.add_argument("--health-url", help="probe this URL every 5 s; failures mark the agent unhealthy")
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL on stop"
    )
    parser.add_argument("--state-dir", help="the local node's state directory")
    parser.add_argument("agent_command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")


def spec_from_args(args: argparse.Namespace) -> AgentSpec:
    from .supervisor import AgentSpec

    command = list(args.agent_command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ValueError("no command given: fleetdeck run --name NAME -- CMD ARGS...")
    workspace = Path(args.workspace).resolve() if args.workspace else None
    if workspace is not None and not workspace.is_dir():
        raise ValueError(f"--workspace {workspace} is not a directory")
    return AgentSpec(
        name=args.name,
        command=tuple(command),
        workspace=workspace,
        restart=args.restart,
        health_url=args.health_url,
        grace_s=args.grace,
    )


def run(args: argparse.Namespace) -> int:
    """Supervise until done; returns the agent's exit code (or 2 for a bad request)."""
    from .store import Store, default_state_dir
    from .supervisor import Supervisor

    spec = spec_from_args(args)
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    with Store(state_dir) as store:
        return Supervisor(store, spec).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetdeck run")
    add_arguments(parser)
    args = parser.parse_args(argv)
    from backends.errors import BackendError

    from .store import StoreError

    try:
        return run(args)
    except (ValueError, StoreError, BackendError) as exc:
        print(f"fleetdeck run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
