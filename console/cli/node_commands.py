"""The scriptable commands that read one node or act on it: agents, phases, tasks, checkpoints, audit,
logs, dispatch, pause, resume, stop, checkpoint, rollback.

They speak only the Backend protocol, so they work on every backend that has the capability. Output is an
aligned table for people, or ``--json`` (the wire model's JSON) for scripts. Exit codes: 0 done, 1 the node
refused or failed, 2 usage or config error, 3 unreachable.

What a node says is untrusted (DESIGN.md §3): every line for people goes through ``terminal_safe`` (tables do
it in text_table), and JSON through ``json_safe``, which keeps it the exact JSON of what the node holds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from backends.base import Backend
from backends.errors import NotFound
from backends.model import DispatchRequest, LogRecord, Target, to_builtins
from backends.safe_text import json_safe, json_safe_bytes, terminal_safe
from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError
from console.cli.node_calls import confirm, emit_json, run_on_backend, say
from console.cli.text_table import print_table
from console.core.alerts import agent_labels
from console.core.node_link import NodeLink
from widgets.format import NA, fmt_ago, fmt_bytes, fmt_fraction, fmt_number, has_gate

T = TypeVar("T")
DESTRUCTIVE = {"stop", "rollback"}


# --- reading ---------------------------------------------------------------------------------------------


def show_agents(link: NodeLink, args: argparse.Namespace) -> int:
    snapshot = run_on_backend(link.backend, lambda b: b.snapshot())
    if args.json:
        emit_json(snapshot.agents)
        return EXIT_OK
    now = link.clock()
    names = agent_labels(snapshot.agents)  # a Ray actor's id is 32 hex digits: people read its name
    # ...and commands take the id (pause agent:ID): shown too wherever one is not its agent's name
    with_ids = any(a.id != a.name for a in snapshot.agents)
    rows = [
        (
            names[a.id],
            *((a.id,) if with_ids else ()),
            a.state,
            a.health,
            NA if a.pid is None else str(a.pid),
            fmt_number(a.cpu_percent, "%"),
            fmt_bytes(a.rss_bytes),
            fmt_fraction(a.progress),
            fmt_ago(a.last_heartbeat, now),
            a.health_reason or a.message or "",
        )
        for a in snapshot.agents
    ]
    headers = ("AGENT", *(("ID",) if with_ids else ()), "STATE", "HEALTH", "PID", "CPU", "RSS", "PROG")
    headers += ("HEARTBEAT", "WHY / DOING")
    print_table(headers, rows, empty="no agents yet — start one with: fleetdeck run --name NAME -- CMD ...")
    return EXIT_OK


def show_phases(link: NodeLink, args: argparse.Namespace) -> int:
    snapshot = run_on_backend(link.backend, lambda b: b.snapshot())
    if args.json:
        emit_json(snapshot.phases)
        return EXIT_OK
    rows = []
    for phase in sorted(snapshot.phases, key=lambda p: p.order):
        passed = sum(1 for m in phase.milestones if m.status == "passed")
        gate = "—"  # none: a Ray job has no gate, and "PENDING" would promise a decision
        if has_gate(phase):
            gate = phase.gate.decision.upper() + (
                f": {'; '.join(phase.gate.reasons)}" if phase.gate.reasons else ""
            )
        rows.append(
            (
                phase.id,
                phase.name,
                phase.status,
                fmt_fraction(phase.progress),
                f"{passed}/{len(phase.milestones)}",
                gate,
                phase.status_reason or "",
            )
        )
    headers = ("PHASE", "NAME", "STATUS", "PROGRESS", "MILESTONES", "GATE", "WHY")
    print_table(headers, rows, empty="no plan loaded — load one with: fleetdeck plan apply FILE.toml")
    return EXIT_OK


def show_tasks(link: NodeLink, args: argparse.Namespace) -> int:
    snapshot = run_on_backend(link.backend, lambda b: b.snapshot())
    if args.json:
        emit_json(snapshot.tasks)
        return EXIT_OK
    now = link.clock()
    rows = [
        (
            t.id,
            t.kind,
            t.target,
            t.status,
            str(t.attempts),
            t.submitted_by,
            fmt_ago(t.updated_at, now),
            t.error or "",
        )
        for t in snapshot.tasks
    ]
    headers = ("TASK", "KIND", "TARGET", "STATUS", "TRIES", "BY", "UPDATED", "ERROR")
    print_table(headers, rows, empty="no tasks")
    return EXIT_OK


def show_checkpoints(link: NodeLink, args: argparse.Namespace) -> int:
    snapshot = run_on_backend(link.backend, lambda b: b.snapshot())
    if args.json:
        emit_json(snapshot.checkpoints)
        return EXIT_OK
    now = link.clock()
    rows = [
        (
            c.id,
            c.label,
            fmt_ago(c.created_at, now),
            c.created_by,
            "auto" if c.automatic else "",
            ", ".join(c.covers[:4]) + (" …" if len(c.covers) > 4 else ""),
        )
        for c in snapshot.checkpoints
    ]
    print_table(("CHECKPOINT", "LABEL", "TAKEN", "BY", "", "COVERS"), rows, empty="no checkpoints")
    return EXIT_OK


def show_audit(link: NodeLink, args: argparse.Namespace) -> int:
    entries = run_on_backend(link.backend, lambda b: b.audit(since_seq=args.since or 0))
    if getattr(args, "jsonl", False):
        from console.core.audit_export import audit_lines

        lines = audit_lines((link.name, e) for e in entries)
        sys.stdout.buffer.writelines(json_safe_bytes(line) for line in lines)
        sys.stdout.flush()
        return EXIT_OK
    if args.json:
        emit_json(entries)
        return EXIT_OK
    now = link.clock()
    rows = [
        (
            str(e.seq),
            fmt_ago(e.ts, now),
            e.operator,
            e.action,
            e.target or "",
            e.outcome,
            e.reason or "",
            e.detail or "",
        )
        for e in entries
    ]
    headers = ("SEQ", "WHEN", "OPERATOR", "ACTION", "TARGET", "OUTCOME", "REASON", "DETAIL")
    print_table(headers, rows, empty="the audit trail is empty")
    return EXIT_OK


def stream_logs(link: NodeLink, args: argparse.Namespace) -> int:
    from backends.model import LOG_LEVEL_RANK

    minimum = LOG_LEVEL_RANK[args.level]

    def wanted(record: LogRecord) -> bool:
        if LOG_LEVEL_RANK[record.level] < minimum:
            return False
        return args.agent is None or record.source == args.agent

    async def go(backend: Backend) -> None:
        if args.agent is not None:
            # an agent that is not there fails as it does for every other command, never as silence
            await require_agent(backend, args.agent)
        async for record in backend.logs(since_seq=args.since or 0, follow=args.follow):
            if not wanted(record):
                continue
            if args.json:
                print(json_safe(json.dumps(to_builtins(record), ensure_ascii=False)), flush=args.follow)
            else:
                print(format_log_line(record), flush=args.follow)

    run_on_backend(link.backend, go)
    return EXIT_OK


KNOWN_SHOWN = 10


async def require_agent(backend: Backend, agent_id: str) -> None:
    """NotFound, worded as the node words it for pause or dispatch, unless ``agent_id`` is on the node
    (or is the node's own log source, or a task's: a Ray job logs under its task's id)."""
    from console.core.alerts import NODE_SOURCE

    if agent_id == NODE_SOURCE:
        return
    snapshot = await backend.snapshot()
    known = sorted(agent.id for agent in snapshot.agents)
    if agent_id in known or any(task.id == agent_id for task in snapshot.tasks):
        return
    if not known:
        raise NotFound(f"no agent {agent_id!r} on this node (there are no agents)")
    more = f" and {len(known) - KNOWN_SHOWN} more" if len(known) > KNOWN_SHOWN else ""
    raise NotFound(f"no agent {agent_id!r} on this node (known: {', '.join(known[:KNOWN_SHOWN])}{more})")


def format_log_line(record: LogRecord) -> str:
    import time

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.ts))
    if record.time_fetched:
        stamp = "≤" + stamp  # the line came with no time: fetched then, so written then or before
    # one record, one line: a newline in the message is shown (␤), so `grep` and `tail` see whole records
    source, message = terminal_safe(record.source), terminal_safe(record.message)
    return f"{stamp} {record.level.upper():<8} {source}: {message}"


# --- acting ----------------------------------------------------------------------------------------------


def act(link: NodeLink, args: argparse.Namespace, operator: str) -> int:
    action: str = args.command
    reason = getattr(args, "reason", None)
    if action in ("pause", "resume", "stop"):
        try:
            target = Target.parse(args.target)
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        if action == "stop" or (action == "pause" and target.kind == "phase"):
            confirm(link, action, str(target), args)
        method = getattr(link.backend, action)
        run_on_backend(link.backend, lambda b: method(target, operator=operator, reason=reason))
        say(f"{action} {target}: ok")
        return EXIT_OK
    if action == "checkpoint":
        checkpoint = run_on_backend(
            link.backend, lambda b: b.checkpoint(args.label, operator=operator, reason=reason)
        )
        if args.json:
            emit_json(checkpoint)
        else:
            say(f"checkpoint {checkpoint.id} taken ({checkpoint.label})")
        return EXIT_OK
    if action == "rollback" and (args.recover or not args.checkpoint):
        from console.cli.recover_command import recover

        return recover(link, args, operator)
    if action == "rollback":
        confirm(link, "roll back to", args.checkpoint, args)
        safety = run_on_backend(
            link.backend, lambda b: b.rollback(args.checkpoint, operator=operator, reason=reason)
        )
        if args.json:
            emit_json(safety)
        else:
            say(f"rolled back to {args.checkpoint}; undo with: fleetdeck rollback {safety.id}")
        return EXIT_OK
    if action == "dispatch":
        request = dispatch_request(args)
        task = run_on_backend(link.backend, lambda b: b.dispatch(request, operator=operator, reason=reason))
        if args.json:
            emit_json(task)
        else:
            say(f"task {task.id} {task.status} for {task.target}")
        return EXIT_OK
    raise CliError(f"unknown action {action!r}", EXIT_USAGE)


def dispatch_request(args: argparse.Namespace) -> DispatchRequest:
    if (args.agent is None) == (args.run is None):
        raise CliError('dispatch needs either --agent ID --payload JSON or --command "CMD"', EXIT_USAGE)
    if args.run is not None:
        try:
            command = tuple(shlex.split(args.run))
        except ValueError as exc:
            raise CliError(f"--command: {exc}", EXIT_USAGE) from None
        if not command:
            raise CliError("--command is empty", EXIT_USAGE)
        return DispatchRequest(command=command, name=args.name)
    try:
        payload = json.loads(args.payload) if args.payload else {}
    except json.JSONDecodeError as exc:
        raise CliError(f"--payload is not JSON: {exc.msg} at column {exc.colno}", EXIT_USAGE) from None
    if not isinstance(payload, dict):
        raise CliError('--payload must be a JSON object, e.g. \'{"prompt": "..."}\'', EXIT_USAGE)
    return DispatchRequest(agent_id=args.agent, payload=payload, name=args.name)


READERS: dict[str, Callable[[NodeLink, argparse.Namespace], int]] = {
    "agents": show_agents,
    "phases": show_phases,
    "tasks": show_tasks,
    "checkpoints": show_checkpoints,
    "audit": show_audit,
    "logs": stream_logs,
}
ACTIONS: Sequence[str] = ("dispatch", "pause", "resume", "stop", "checkpoint", "rollback")


def run(args: argparse.Namespace) -> int:
    """One of the scriptable per-node commands (agents, logs, pause, rollback, ...)."""
    from console.cli.node_choice import load_config_of, single_link_of
    from console.core.clock import SystemClock

    config = load_config_of(args)
    acting = None if args.command in READERS else str(args.command)
    link = single_link_of(args, config, SystemClock(), action=acting)
    if args.command in READERS:
        return READERS[args.command](link, args)
    return act(link, args, operator=config.operator)
