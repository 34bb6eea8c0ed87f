"""The handlers behind each ``fleetdeck`` subcommand. Each returns an exit code or raises CliError."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from backends.safe_text import terminal_safe
from console.cli import EXIT_OK, EXIT_USAGE, CliError
from console.clock import FrozenClock, SystemClock
from console.config import (
    Config,
    ConfigError,
    check_config,
    load_config,
    normalised_keymap,
    write_starter_config,
)
from console.fleet_setup import SetupError, configured_links, demo_links, local_link
from console.node_link import NodeLink

Clock = Callable[[], float]


def _load(args: argparse.Namespace) -> Config:
    try:
        if getattr(args, "config", None):
            return load_config(Path(args.config), missing_ok=False)
        return load_config()
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


LOCAL_NODE = "local"  # the node there is when none is configured, as `--node local` names it


def _only_local(config: Config, names: str | Sequence[str] | None, clock: Clock) -> bool:
    """Whether the command runs on the implicit local node: nothing is configured, and ``--node`` names
    no other node. A name that is not there fails as it would with a config (SetupError, the same line),
    never quietly falls back to the local node."""
    if config.nodes:
        return False
    wanted = [names] if isinstance(names, str) else list(names or ())
    if unknown := [name for name in wanted if name != LOCAL_NODE]:
        configured_links(config, clock=clock, only=unknown)  # raises, naming the first unknown one
    return True


def _state_dir(args: argparse.Namespace) -> str | None:
    """``--state-dir``, which a command that only reads or acts on a node must find: it never creates
    one (a typo would otherwise become an empty node). `run`, `report` and `plan apply` create it."""
    given = getattr(args, "state_dir", None)
    if given is not None and not Path(given).expanduser().is_dir():
        what = "is not a directory" if Path(given).expanduser().exists() else "does not exist"
        raise CliError(
            f"--state-dir {given} {what}: name a node's state directory (`fleetdeck run`, `report` or "
            "`plan apply` creates one)",
            EXIT_USAGE,
        )
    return given


def _links(args: argparse.Namespace, config: Config, clock: Clock, *, demo: bool) -> list[NodeLink]:
    read_only = bool(getattr(args, "read_only", False))
    try:
        if not demo and _only_local(config, getattr(args, "node", None), clock):
            return [local_link(clock, state_dir=_state_dir(args), read_only=read_only, config=config)]
        if demo:
            return demo_links(
                seed=getattr(args, "seed", 7),
                nodes=getattr(args, "nodes", 3),
                agents=getattr(args, "agents", 80),
                clock=clock,
                read_only=read_only,
            )
        only = getattr(args, "node", None)
        return configured_links(config, clock=clock, only=only, read_only=read_only)
    except SetupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def console(args: argparse.Namespace) -> int:
    from console.app import FleetDeckApp
    from console.paths import user_themes_dir

    config = _load(args)
    clock = SystemClock()
    links = _links(args, config, clock, demo=args.command == "demo" or args.demo)
    app = FleetDeckApp(
        links,
        config=config,
        clock=clock,
        theme=args.theme,
        user_themes_dir=user_themes_dir(),
        tune_gc=True,
    )
    app.run()
    return EXIT_OK


def snapshot(args: argparse.Namespace) -> int:
    from console.snapshot import render_snapshot

    config = _load(args)
    output = Path(args.output)
    if output.suffix.lower() not in (".svg", ".txt"):
        raise CliError(f"output must end in .svg or .txt, got {output.name!r}", EXIT_USAGE)
    at = args.at if args.at is not None else float(int(SystemClock()()))
    clock = FrozenClock(at)
    links = _links(args, config, clock, demo=args.demo)
    text = asyncio.run(
        render_snapshot(
            links,
            config=config,
            clock=clock,
            screen=args.screen,
            size=args.size,
            fmt=output.suffix.lower()[1:],
            theme=args.theme,
        )
    )
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}", EXIT_USAGE) from None
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    from console.status import fleet_status

    config = _load(args)
    clock = FrozenClock(args.at) if args.at is not None else SystemClock()
    links = _links(args, config, clock, demo=args.demo)
    report = asyncio.run(fleet_status(links, config, clock))
    if args.json:
        json.dump(report.as_json(), sys.stdout, indent=2)
        print()
    else:
        for line in report.lines():  # node names, error texts and alert reasons come from the nodes
            print(terminal_safe(line))
    return report.exit_code


def config(args: argparse.Namespace) -> int:
    from console import paths

    path = Path(args.config) if args.config else paths.config_file()
    if args.action == "path":
        print(path)
        return EXIT_OK
    if args.action == "init":
        try:
            written = write_starter_config(path, overwrite=args.force)
        except ConfigError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        print(f"wrote {written}")
        return EXIT_OK
    loaded = _load(args)
    from console.app import binding_contexts
    from console.keys import clashes, default_keymap
    from themes import load_themes

    contexts = binding_contexts()
    # Key clashes by the rules the console itself applies the keymap with (console.keys.find_clashes).
    problems = [p for p in check_config(loaded, default_keymap(contexts)) if not p.startswith("keys: ")]
    problems += [f"keys: {clash}" for clash in clashes(contexts, normalised_keymap(loaded))]
    problems += _node_setup_problems(loaded)
    theme_names = {t.name for t in load_themes(paths.user_themes_dir())[0]}
    if loaded.theme not in theme_names:
        problems.append(f"theme: unknown theme {loaded.theme!r} (known: {', '.join(sorted(theme_names))})")
    for problem in problems:  # a problem quotes the file's own text back
        print(terminal_safe(f"{path}: {problem}"))
    if problems:
        return EXIT_USAGE
    exists = "" if path.exists() else " (no file: defaults)"
    print(terminal_safe(f"{path}: ok{exists} · {len(loaded.nodes)} node(s) · operator {loaded.operator}"))
    return EXIT_OK


def _node_setup_problems(config: Config) -> list[str]:
    """What would stop the console from starting on each node (a token variable not set, a token file
    missing), found by setting the node up exactly as the console does; nothing is connected to."""
    problems = []
    for index, node in enumerate(config.nodes):
        try:
            configured_links(config, clock=SystemClock(), only=[node.name])
        except SetupError as exc:
            problems.append(f"nodes[{index}]: {exc}")
    return problems


def node_command(args: argparse.Namespace) -> int:
    """One of the scriptable per-node commands (agents, logs, pause, rollback, ...)."""
    from console import node_commands

    config = _load(args)
    link = _single_link(args, config, SystemClock())
    if args.command in node_commands.READERS:
        return node_commands.READERS[args.command](link, args)
    return node_commands.act(link, args, operator=config.operator)


def _single_link(args: argparse.Namespace, config: Config, clock: Clock) -> NodeLink:
    """--demo, --node NAME, the only configured node, or this machine's local node."""
    try:
        if args.demo:
            return demo_links(seed=7, nodes=1, agents=34, clock=clock)[0]
        if _only_local(config, args.node, clock):
            return local_link(clock, state_dir=_state_dir(args), config=config)
        if args.node:
            return configured_links(config, clock=clock, only=[args.node])[0]
        if len(config.nodes) == 1:
            return configured_links(config, clock=clock)[0]
        names = ", ".join(n.name for n in config.nodes)
        raise CliError(f"several nodes are configured ({names}): pick one with --node NAME", EXIT_USAGE)
    except SetupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
