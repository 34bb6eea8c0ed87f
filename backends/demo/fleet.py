"""Build a whole demo fleet: several DemoBackend nodes sharing one seed, clock and genesis."""

from __future__ import annotations

import time
from collections.abc import Callable

from backends.errors import Invalid

from .backend import DemoBackend, genesis_for
from .catalog import node_spec, split_agents

MAX_NODES = 1000  # far beyond the 100 nodes the console is built for; stops a typo from eating memory


def demo_fleet(
    seed: int = 7,
    nodes: int = 3,
    agents: int = 80,
    clock: Callable[[], float] | None = None,
    *,
    genesis: float | None = None,
    read_only: bool = False,
) -> list[DemoBackend]:
    """``nodes`` demo nodes hosting ``agents`` agents in total (not per node).

    Agents are shared by node weight: GPU boxes carry more than GPU-less ones, so the default fleet is
    gpu-prod-01 (34 agents), gpu-stage-02 (29) and cpu-dev-03 (17); 50 nodes and 5,000 agents gives about
    100 per node. All nodes read the same ``clock`` and share one ``genesis`` (default: the clock now,
    floored to the hour), so the fleet is one consistent, reproducible picture.
    """
    if not 1 <= nodes <= MAX_NODES:
        raise Invalid(f"a demo fleet has 1 to {MAX_NODES} nodes, not {nodes}")
    if agents < 0:
        raise Invalid(f"a demo fleet cannot have {agents} agents")
    read_clock = clock or time.time
    start = genesis if genesis is not None else genesis_for(read_clock())
    specs = [node_spec(seed, index) for index in range(nodes)]
    counts = split_agents(agents, specs)
    return [
        DemoBackend(
            seed=seed, node_index=index, agents=count, clock=read_clock, genesis=start, read_only=read_only
        )
        for index, count in enumerate(counts)
    ]
