"""Commands that only make sense on this machine's node: ``run``, ``report`` and ``plan apply``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backends.errors import BackendError
from backends.safe_text import terminal_safe
from console.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError


def _state_dir(args: argparse.Namespace) -> Path:
    from backends.local.store import default_state_dir

    return Path(args.state_dir) if getattr(args, "state_dir", None) else default_state_dir()


def run(args: argparse.Namespace) -> int:
    """Supervise the agent in the foreground; the exit status is the agent's (run_agent.EXIT_STATUS)."""
    from backends.local import run_agent
    from backends.local.store import StoreError
    from backends.local.supervisor import CannotStart

    try:
        return run_agent.run(args)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except CannotStart as exc:
        raise CliError(str(exc), exc.exit_code) from None
    except (StoreError, BackendError) as exc:
        raise CliError(str(exc), EXIT_FAILED) from None


def report(args: argparse.Namespace) -> int:
    from backends.local.reporter import AgentReporter
    from backends.local.store import StoreError

    if (args.passed or args.failed) and not args.milestone:
        raise CliError("--passed/--failed need --milestone ID", EXIT_USAGE)
    if args.progress is not None and not 0 <= args.progress <= 1:
        raise CliError(f"--progress must be between 0 and 1, got {args.progress}", EXIT_USAGE)
    criteria: dict[str, str] = {}
    for item in args.criterion:
        name, sep, actual = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--criterion must look like NAME=ACTUAL, got {item!r}", EXIT_USAGE)
        criteria[name.strip()] = actual.strip()
    kpis = _kpi_args(args.kpi)  # every figure checked before anything is written
    try:
        agent = AgentReporter(args.agent, state_dir=_state_dir(args), register=False, verify=False)
        try:
            _ensure_registered(agent)
            agent.heartbeat(state=args.state, progress=args.progress, message=args.message, kpis=kpis)
            if args.log:
                agent.log(args.level, args.log)
            if args.milestone:
                passed = True if args.passed else (False if args.failed else None)
                agent.milestone(args.milestone, passed=passed, criteria=criteria)
        finally:
            agent.store.close()
    except (StoreError, BackendError) as exc:
        raise CliError(str(exc), getattr(exc, "exit_code", EXIT_FAILED)) from None
    return EXIT_OK


def _kpi_args(items: list[str]) -> dict[str, float | tuple[float, str]]:
    """``--kpi NAME=VALUE[:UNIT]`` figures, validated as the store will (CliError, exit 2, naming the KPI)."""
    import math

    from backends.errors import Invalid
    from backends.kpis import unit_of_word
    from backends.local.store_kpis import prepare, shown_name

    kpis: dict[str, float | tuple[float, str]] = {}
    for item in items:
        name, sep, figure = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliError(
                f"--kpi must look like NAME=VALUE or NAME=VALUE:UNIT, got {shown_name(item)}", EXIT_USAGE
            )
        text, colon, word = figure.partition(":")
        try:
            value = float(text)
        except ValueError:
            raise CliError(
                f"--kpi {shown_name(name)}: value {text.strip()!r} is not a number", EXIT_USAGE
            ) from None
        if not math.isfinite(value):
            raise CliError(
                f"--kpi {shown_name(name)}: value must be a finite number, got {text.strip()}", EXIT_USAGE
            )
        if colon:
            unit = unit_of_word(word)
            if unit is None:
                raise CliError(
                    f"--kpi {shown_name(name)}: unit {word.strip()!r} is not one of count, ms, s, ratio, "
                    f"percent, bytes, tokens, usd, per_s, per_min, per_hour (or %, /h, /min, /s, $)",
                    EXIT_USAGE,
                )
            kpis[name] = (value, unit)
        else:
            kpis[name] = value
    try:
        prepare(kpis, 0.0, at=None, kinds=None)
    except Invalid as exc:
        raise CliError(f"--kpi {str(exc).removeprefix('KPI ')}", EXIT_USAGE) from None
    return kpis


def _ensure_registered(agent: object) -> None:
    """A shell script reports without a long-lived process: register it on first use, keep it after."""
    from backends.errors import NotFound
    from backends.local.reporter import AgentReporter

    assert isinstance(agent, AgentReporter)
    try:
        agent.store.agent_record(agent.name)
    except NotFound:
        agent.store.register_agent(agent.name, kind="reporting", state="running")


def plan(args: argparse.Namespace) -> int:
    from backends.local.plan_apply import apply_plan_file
    from backends.local.planfile import PlanError
    from backends.local.store import Store, StoreError
    from backends.model import to_builtins
    from console.cli.node_choice import read_config
    from console.core.config import ConfigError
    from console.core.fleet_setup import read_only_reason

    try:
        config = read_config(Path(args.config) if args.config else None)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if why := read_only_reason(bool(getattr(args, "read_only", False)), config.read_only, False):
        raise CliError(f"plan apply refused: {why}", EXIT_FAILED)  # an operator's change, like pause
    operator = config.operator
    try:
        with Store(_state_dir(args)) as store:
            phases = apply_plan_file(store, Path(args.file), operator)
    except PlanError as exc:
        raise CliError(f"{exc} (nothing applied)", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}", EXIT_USAGE) from None
    except (StoreError, BackendError) as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    if args.json:
        json.dump(to_builtins(phases), sys.stdout, indent=2)  # ASCII only: every control is escaped
        print()
    else:
        milestones = sum(len(p.milestones) for p in phases)
        print(terminal_safe(f"applied {args.file}: {len(phases)} phase(s), {milestones} milestone(s)"))
    return EXIT_OK
