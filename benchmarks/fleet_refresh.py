"""Fleet refresh: the demo fleet of 100 nodes x 50 agents (5,000 agents) polled at 1 Hz, on the Node screen
and on the All agents screen, by the real app headless (real clock, real polling workers).

Per screen, over the measured window: event-loop lag (p50/p99/max), CPU seconds per refresh and the share of
one core, RSS (the most sampled in the window, and the process's peak), and full garbage collections. Each
screen runs in a process of its own.

The demo backend simulates its 5,000 agents (and their logs) in the console's own process, work a real node
does on its own machine. The CPU the simulation takes is timed on the event-loop thread around the demo's
calls and reported apart: ``cpu_core_percent`` is everything, ``console_core_percent`` what is left for the
console itself (polling, alerts, tables, rendering) - the figure the 5% target is about.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import time
from typing import Any

from benchmarks.measure import CpuWindow, FullCollections, LoopLag, Target, peak_rss_mb, rss_mb

TITLE = "Fleet refresh: 100 nodes x 50 agents at 1 Hz"
TARGETS = {
    f"{screen}_{figure}": target
    for screen in ("node", "agents")
    for figure, target in (
        ("loop_lag_p99_ms", Target(25, "p99 event-loop lag < 25 ms")),
        ("console_core_percent", Target(5, "< 5% of one core")),
        ("peak_rss_mb", Target(200, "peak RSS < 200 MB")),
    )
}
SCREENS = {"node": "node", "agents": "agents"}  # figure prefix -> the app's start screen
REFRESH_S = 1.0


class SimulationTime:
    """CPU seconds the demo backends spend simulating the fleet (snapshots and log lines), timed with the
    event-loop thread's clock around their synchronous cores."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.counting = False

    def install(self) -> None:
        from backends.demo.backend import DemoBackend
        from backends.demo.logs import LogStream

        for owner, name in ((DemoBackend, "snapshot_at"), (LogStream, "records")):
            setattr(owner, name, self._timed(getattr(owner, name)))

    def _timed(self, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                if self.counting:
                    self.cpu_s += time.thread_time() - start

        return timed


async def watch(
    start_screen: str, *, nodes: int, agents: int, warmup_s: float, seconds: float
) -> dict[str, float]:
    from console.app import FleetDeckApp
    from console.core.config import Config
    from console.core.fleet_setup import demo_links

    links = demo_links(seed=7, nodes=nodes, agents=agents, clock=time.time)
    app = FleetDeckApp(
        links,
        config=Config(refresh_s=REFRESH_S),
        clock=time.time,
        start_screen=start_screen,
        **as_the_cli_runs_it(FleetDeckApp),
    )
    figures: dict[str, float] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(warmup_s)  # every node polled at least once, the screen filled
        lag, cpu = LoopLag(), CpuWindow()
        peak = rss_mb()
        with FullCollections() as collections:
            lag.start()
            cpu.start()
            SIMULATION.counting = True
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                await asyncio.sleep(1.0)
                peak = max(peak, rss_mb())
            SIMULATION.counting = False
            cpu.stop()
            lag.stop()
        refreshes = cpu.wall_s / REFRESH_S
        console_s = cpu.cpu_s - SIMULATION.cpu_s
        figures.update(lag.figures())
        figures["cpu_s_per_refresh"] = round(cpu.cpu_s / refreshes, 4)
        figures["cpu_core_percent"] = cpu.core_percent
        figures["simulation_core_percent"] = round(100 * SIMULATION.cpu_s / cpu.wall_s, 2)
        figures["console_cpu_s_per_refresh"] = round(console_s / refreshes, 4)
        figures["console_core_percent"] = round(100 * console_s / cpu.wall_s, 2)
        figures["rss_mb"] = peak  # the most sampled each second of the window
        figures["peak_rss_mb"] = peak_rss_mb()  # the process's peak, start-up and backlog included
        figures.update(collections.figures())
        app.exit()
    return figures


def as_the_cli_runs_it(app_class: type) -> dict[str, Any]:
    """The options `fleetdeck` gives its console (the garbage-collector tuning), where the app measured has
    them: the harness also measures commits from before them, for before/after figures."""
    return {"tune_gc": True} if "tune_gc" in inspect.signature(app_class).parameters else {}


SIMULATION = SimulationTime()


def watch_alone(
    start_screen: str, nodes: int, agents: int, warmup_s: float, seconds: float
) -> dict[str, float]:
    """One screen's run, in a process of its own (a child of the run's): its peak RSS is its own, and the
    console's garbage-collector tuning pins what it froze for good, as it does in `fleetdeck`."""
    SIMULATION.install()
    return asyncio.run(watch(start_screen, nodes=nodes, agents=agents, warmup_s=warmup_s, seconds=seconds))


def measure(quick: bool) -> dict[str, float | str]:
    nodes, agents = (20, 1000) if quick else (100, 5000)
    warmup_s, seconds = (2.0, 3.0) if quick else (5.0, 60.0)
    figures: dict[str, float | str] = {}
    spawn = multiprocessing.get_context("spawn")
    for prefix, start_screen in SCREENS.items():
        with spawn.Pool(1) as pool:
            result = pool.apply(watch_alone, (start_screen, nodes, agents, warmup_s, seconds))
        figures.update({f"{prefix}_{key}": value for key, value in result.items()})
    if quick:
        figures["note"] = f"quick mode: {nodes} nodes x {agents // nodes} agents for {seconds:.0f} s"
    return figures
