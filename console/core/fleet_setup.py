"""Turn a config (or the demo flags) into NodeLinks: the one place that picks and builds backends.

Each `[[nodes]]` entry is already checked against its backend's Options (config.py); here its backend is
resolved through the registry and handed the entry, typed (``Backend.from_config``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from backends.errors import BackendError
from backends.plugin import Thresholds
from backends.registry import resolve
from console.core.config import Config, NodeConfig
from console.core.node_link import LOG_CAPACITY, NodeLink, fleet_log_capacity


class SetupError(Exception):
    """A node that cannot be built from its config; the message names the node and the reason."""


def demo_links(
    *, seed: int, nodes: int, agents: int, clock: Callable[[], float], read_only: bool = False
) -> list[NodeLink]:
    from backends.demo import demo_fleet

    reason = read_only_reason(read_only, False, False)
    capacity = fleet_log_capacity(nodes)
    return [
        NodeLink(
            b.info.name, b, clock=clock, read_only=read_only, read_only_reason=reason, log_capacity=capacity
        )
        for b in demo_fleet(seed=seed, nodes=nodes, agents=agents, clock=clock)
    ]


def configured_links(
    config: Config, *, clock: Callable[[], float], only: Sequence[str] | None = None, read_only: bool = False
) -> list[NodeLink]:
    nodes = list(config.nodes)
    if only:
        known = {n.name for n in nodes}
        missing = [name for name in only if name not in known]
        if missing:
            configured = ", ".join(sorted(known)) or "none"
            raise SetupError(f"no node named {missing[0]!r} in the config (configured: {configured})")
        nodes = [n for n in nodes if n.name in only]
    capacity = fleet_log_capacity(len(nodes))
    return [_link(node, config, clock, read_only, capacity) for node in nodes]


def _link(
    node: NodeConfig,
    config: Config,
    clock: Callable[[], float],
    read_only: bool,
    log_capacity: int = LOG_CAPACITY,
) -> NodeLink:
    try:
        backend_class = resolve(node.backend)
        backend = backend_class.from_config(node, clock=clock, thresholds=thresholds_of(config))
    except BackendError as exc:
        raise SetupError(f"node {node.name!r}: {exc}") from None
    return NodeLink(
        node.name,
        backend,
        clock=clock,
        environment=node.environment,
        read_only=read_only or config.read_only or node.read_only,
        read_only_reason=read_only_reason(read_only, config.read_only, node.read_only),
        log_capacity=log_capacity,
        kpi_rules=config.kpis,
    )


def thresholds_of(config: Config) -> Thresholds:
    """The config's ``[thresholds]`` as a backend takes them: name -> (warning, critical)."""
    return msgspec.structs.asdict(config.thresholds)


def read_only_reason(flag: bool, config: bool, node: bool) -> str | None:
    """Why a node's actions are off, as an operator would want to hear it."""
    if flag:
        return "read-only mode (--read-only)"
    if config:
        return "read_only = true in the config"
    if node:
        return "this node is configured read_only"
    return None


def local_link(
    clock: Callable[[], float],
    *,
    state_dir: str | None = None,
    read_only: bool = False,
    config: Config | None = None,
) -> NodeLink:
    """This machine's node, the default when nothing is configured."""
    options = {} if state_dir is None else {"state_dir": state_dir}
    node = NodeConfig(name="local", backend="local", options=options)
    return _link(node, config or Config(), clock, read_only)
