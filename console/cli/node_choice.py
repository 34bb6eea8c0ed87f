"""Which nodes a command works on: its config file, then ``--demo``, ``--node NAME`` (repeatable where a
command takes several), the only configured node, or this machine's local node when none is configured.
A name that is not there fails with the line setting it up gives (exit 2), never falls back quietly."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from console.cli.exits import EXIT_FAILED, EXIT_USAGE, CliError
from console.core import paths
from console.core.config import Config, ConfigError, load_config
from console.core.fleet_setup import (
    SetupError,
    configured_links,
    demo_links,
    local_link,
    read_only_reason,
)
from console.core.node_link import NodeLink

Clock = Callable[[], float]


def load_config_of(args: argparse.Namespace) -> Config:
    """The config file ``--config`` names (it must exist), else the default one (it may be missing)."""
    try:
        if getattr(args, "config", None):
            return read_config(Path(args.config), missing_ok=False)
        return read_config()
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def read_config(path: Path | None = None, *, missing_ok: bool | None = None) -> Config:
    """The config as every command reads it: console.core.config.load_config, then its ``[keys]`` checked
    and spelled in Textual's key names (a bad one is a ConfigError like any other bad value)."""
    config = load_config(path, missing_ok=missing_ok)
    if config.keys:  # Textual's key vocabulary is imported only for a config that rebinds keys
        from console.keys import checked_keys

        config = checked_keys(config, path or paths.config_file())
    return config


LOCAL_NODE = "local"  # the node there is when none is configured, as `--node local` names it


def only_local(config: Config, names: str | Sequence[str] | None, clock: Clock) -> bool:
    """Whether the command runs on the implicit local node: nothing is configured, and ``--node`` names
    no other node. A name that is not there fails as it would with a config (SetupError, the same line),
    never quietly falls back to the local node."""
    if config.nodes:
        return False
    wanted = [names] if isinstance(names, str) else list(names or ())
    if unknown := [name for name in wanted if name != LOCAL_NODE]:
        configured_links(config, clock=clock, only=unknown)  # raises, naming the first unknown one
    return True


def state_dir_of(args: argparse.Namespace) -> str | None:
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


def links_of(args: argparse.Namespace, config: Config, clock: Clock, *, demo: bool) -> list[NodeLink]:
    read_only = bool(getattr(args, "read_only", False))
    try:
        if not demo and only_local(config, getattr(args, "node", None), clock):
            return [local_link(clock, state_dir=state_dir_of(args), read_only=read_only, config=config)]
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


def single_link_of(
    args: argparse.Namespace, config: Config, clock: Clock, *, action: str | None = None
) -> NodeLink:
    """--demo, --node NAME, the only configured node, or this machine's local node, read-only as
    ``--read-only`` or the config's ``read_only = true`` make it.

    ``action`` names what the command is about to do ("pause", "gate sign"): while the console is
    read-only it is refused here, before the node is asked (exit 1, as the console's keys are). A node that
    is itself read-only refuses on its own, and audits the attempt."""
    read_only = bool(getattr(args, "read_only", False))
    link = _single_link(args, config, clock, read_only)
    if action is not None and (why := read_only_reason(read_only, config.read_only, False)):
        raise CliError(f"{action} refused on {link.name}: {why}", EXIT_FAILED)
    return link


def _single_link(args: argparse.Namespace, config: Config, clock: Clock, read_only: bool) -> NodeLink:
    try:
        if args.demo:
            return demo_links(seed=7, nodes=1, agents=34, clock=clock, read_only=read_only)[0]
        if only_local(config, args.node, clock):
            return local_link(clock, state_dir=state_dir_of(args), read_only=read_only, config=config)
        if args.node:
            return configured_links(config, clock=clock, only=[args.node], read_only=read_only)[0]
        if len(config.nodes) == 1:
            return configured_links(config, clock=clock, read_only=read_only)[0]
        names = ", ".join(n.name for n in config.nodes)
        raise CliError(f"several nodes are configured ({names}): pick one with --node NAME", EXIT_USAGE)
    except SetupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
