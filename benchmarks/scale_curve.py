"""Scale curve: the console on the Node and All agents screens at 500, 5,000, 20,000 and 50,000 agents.

The demo fleet of 100 nodes at each size, polled at 1 Hz for 60 s per screen, each screen and size in a
process of its own (the fleet_refresh run, at four sizes). Per size and screen: the console's CPU share
with the demo's simulation left out (reported apart), p99 and max event-loop lag, RSS. What the curve
should show is a console whose cost follows the screen, not the fleet: 50,000 agents at most twice the
5,000-agent CPU.
"""

from __future__ import annotations

import multiprocessing

from benchmarks.fleet_refresh import SCREENS, watch_alone
from benchmarks.measure import Target

TITLE = "Scale curve: 100 nodes, 500 to 50,000 agents, at 1 Hz"
NODES = 100
SIZES = (500, 5_000, 20_000, 50_000)
# quick mode (the harness working, in seconds): small fleets stand in for the sizes the targets name
QUICK_SIZES = {5_000: 200, 50_000: 500}
KEPT = (
    "console_core_percent",
    "simulation_core_percent",
    "loop_lag_p99_ms",
    "loop_lag_max_ms",
    "rss_mb",
    "peak_rss_mb",
)
TARGETS = {
    **{
        f"{screen}_5000_{figure}": target
        for screen in SCREENS
        for figure, target in (
            ("console_core_percent", Target(5, "<= 5% of one core", inclusive=True)),
            ("loop_lag_p99_ms", Target(16, "p99 event-loop lag < 16 ms (a frame at 60 Hz)")),
            ("peak_rss_mb", Target(150, "peak RSS < 150 MB")),
        )
    },
    **{
        f"{screen}_50000_{figure}": target
        for screen in SCREENS
        for figure, target in (
            ("loop_lag_p99_ms", Target(33, "p99 event-loop lag < 33 ms")),
            ("peak_rss_mb", Target(600, "peak RSS < 600 MB")),
        )
    },
    **{
        f"{screen}_cpu_ratio_50000_to_5000": Target(2, "50,000 agents: <= 2x the 5,000's CPU", inclusive=True)
        for screen in SCREENS
    },
}


def measure(quick: bool) -> dict[str, float | str]:
    sizes = QUICK_SIZES if quick else {size: size for size in SIZES}
    seconds = 3.0 if quick else 60.0
    figures: dict[str, float | str] = {}
    spawn = multiprocessing.get_context("spawn")
    for size, agents in sizes.items():
        # the larger fleets take longer to fill: every node polled once and the screen drawn
        warmup_s = 2.0 if quick else 5.0 + agents / 5_000
        for prefix, start_screen in SCREENS.items():
            with spawn.Pool(1) as pool:
                result = pool.apply(watch_alone, (start_screen, NODES, agents, warmup_s, seconds))
            figures.update({f"{prefix}_{size}_{key}": result[key] for key in KEPT if key in result})
    for prefix in SCREENS:
        low = figures.get(f"{prefix}_5000_console_core_percent")
        high = figures.get(f"{prefix}_50000_console_core_percent")
        if isinstance(low, float) and isinstance(high, float) and low > 0:
            figures[f"{prefix}_cpu_ratio_50000_to_5000"] = round(high / low, 2)
    if quick:
        stand_ins = ", ".join(f"{agents} for {size}" for size, agents in sizes.items())
        figures["note"] = f"quick mode: {NODES} nodes, {stand_ins} agents, {seconds:.0f} s each"
    return figures
