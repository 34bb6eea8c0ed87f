"""The ``fleetdeck`` command line's grammar: every command, its options and their help.

It is built on every start (even for ``--help``), so only argparse and the command families' own parser
parts are imported here; what a command needs to run is imported by its handler.
"""

from __future__ import annotations

import argparse

from backends.package_version import package_version
from console.cli.arg_types import bounded, screen_size
from console.cli.gate_command import add_gate_parser
from console.cli.hook_command import add_hook_parser
from console.cli.otlp_command import add_otlp_parser
from console.cli.report_card_command import add_parser as add_report_card_parser
from console.cli.serve_command import add_node_parser
from console.core.start_screens import START_SCREENS

# the commands that read or act on one node (console/cli/node_commands.py)
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


def _add_demo_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="demo fleet seed (default 7)")
    parser.add_argument("--nodes", type=bounded(int, 1, 100), default=3, help="demo nodes (default 3)")
    parser.add_argument(
        # 50,000: the largest fleet the scale benchmarks watch
        "--agents",
        type=bounded(int, 1, 50_000),
        default=80,
        help="demo agents in total (default 80)",
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
    snap.add_argument("--screen", choices=START_SCREENS, default="node", help="which screen (default node)")
    snap.add_argument("--size", type=screen_size, default=(120, 40), help="WIDTHxHEIGHT (default 120x40)")
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

    add_node_parser(sub)
    add_gate_parser(sub)
    add_hook_parser(sub)
    add_otlp_parser(sub)
    add_report_card_parser(sub)

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
        "--state",
        choices=("starting", "running", "idle", "waiting", "paused", "stopping", "stopped", "failed"),
        help="waiting: it needs a human (input or an approval); say what for with --message",
    )
    report.add_argument("--progress", type=float, help="0..1")
    report.add_argument("--message", help="what it is doing now (while waiting: what it waits for)")
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
    report.add_argument(
        "--kpi",
        action="append",
        default=[],
        metavar="NAME=VALUE[:UNIT]",
        help="a KPI figure, e.g. latency_p95_ms=97 or queue_depth=12:count (repeatable); the unit defaults "
        "to what the name implies (_ms, _ratio, _usd, _per_hour...; a name ending _total is a counter); "
        "UNIT is one of count ms s ratio percent bytes tokens usd per_s per_min per_hour, or %% /h /min /s $",
    )
    report.add_argument("--state-dir", help="the local node's state directory")

    plan = sub.add_parser("plan", help="load a plan of phases, milestones, criteria and gates")
    plan.add_argument("action", choices=("apply",))
    plan.add_argument("file", metavar="FILE.toml")
    plan.add_argument("--state-dir", help="the local node's state directory")
    plan.add_argument("--json", action="store_true", help="print the applied phases as JSON")
