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


#: ``fleetdeck run --help`` ends with this: a CI job or a script wrapping ``run`` branches on the status
EXIT_STATUS = """\
exit status:
  N      the agent's own exit code when it ends by itself (0: it succeeded); an agent
         that handles SIGTERM and exits gives its own code after a stop too
  128+N  signal N ended it, as a shell reports: 143 after `fleetdeck stop` (SIGTERM),
         137 when it had to be killed (SIGKILL) - the work did not finish
  126    the command exists but cannot be executed; 127 there is no such command
  1      the node refused (the name is live under another supervisor) or its store failed
  2      a usage error (an invalid --name, no command, --workspace not a directory)
With --restart on-failure, the status of the last run; stopped while waiting to restart,
the status of the run that failed."""


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
    from backends.errors import Invalid

    from .store_agents import validate_name
    from .supervisor import AgentSpec

    try:
        validate_name(args.name)  # before anything runs or is written: a usage error
    except Invalid as exc:
        raise ValueError(f"--name: {exc}") from None
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
    """Supervise until done; returns the exit status to leave with (see EXIT_STATUS). Raises ValueError
    for a bad request, CannotStart when the command cannot be started, Conflict for a name in use."""
    from .store import Store, default_state_dir
    from .supervisor import Supervisor, exit_status

    spec = spec_from_args(args)
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    with Store(state_dir) as store:
        return exit_status(Supervisor(store, spec).run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fleetdeck run", epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    from backends.errors import BackendError

    from .store import StoreError
    from .supervisor import CannotStart

    try:
        return run(args)
    except CannotStart as exc:
        print(f"fleetdeck run: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ValueError, StoreError, BackendError) as exc:
        print(f"fleetdeck run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
