"""The demo backend: a simulated fleet of GPU nodes and AI agents that looks and behaves like a real one.

Seeded and driven by an injectable clock, so the same seed and clock reading always give the same
snapshot and logs (for demos and deterministic snapshot tests); every operator action works in memory
and is audited.

    from backends.demo import demo_fleet
    fleet = demo_fleet(seed=7, nodes=3, agents=80)   # gpu-prod-01, gpu-stage-02, cpu-dev-03
    snapshot = await fleet[0].snapshot()
"""

from .backend import DemoBackend, genesis_for
from .fleet import demo_fleet

__all__ = ["DemoBackend", "demo_fleet", "genesis_for"]
