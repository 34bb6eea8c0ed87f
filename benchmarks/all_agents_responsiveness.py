"""How responsive the console stays on a big live fleet: the Fleet and All agents screens at 100 nodes and
5,000 agents (the demo backend, real clock, real polling at refresh_s = 1).

For each screen it measures, over ``--seconds``:
- event-loop lag: how late a 10 ms sleep wakes up (what every key press waits behind);
- key latency (All agents): from a ``down`` key posted to the table's cursor action running;
- repaint time of the All agents screen, and full (generation 2) garbage collections.

    python benchmarks/all_agents_responsiveness.py [--nodes 100] [--agents 5000] [--seconds 10] [--out FILE]

Figures go to ``--out`` (default benchmarks/all_agents_responsiveness.txt), one line per screen.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual import events

from console.app import FleetDeckApp
from console.config import Config
from console.fleet_setup import demo_links
from console.screens.all_agents import AllAgentsScreen
from widgets.agents_table import AgentsTable


def quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    median, top = statistics.median(ordered), ordered[-1]
    return f"median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {top * 1000:.0f} ms"


class Probe:
    """Full collections and All agents repaints, timed while a run is on."""

    def __init__(self) -> None:
        self.gc: list[float] = []
        self.repaints: list[float] = []
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)
        original = AllAgentsScreen.repaint

        def timed(screen: AllAgentsScreen) -> None:
            start = time.perf_counter()
            original(screen)
            self.repaints.append(time.perf_counter() - start)

        setattr(AllAgentsScreen, "repaint", timed)  # noqa: B010 - a benchmark's probe, on purpose

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc.append(time.perf_counter() - self._gc_start)

    def reset(self) -> None:
        self.gc.clear()
        self.repaints.clear()


async def measure(screen: str, args: argparse.Namespace, probe: Probe, lines: list[str]) -> None:
    links = demo_links(seed=7, nodes=args.nodes, agents=args.agents, clock=time.time)
    app = FleetDeckApp(links, config=Config(refresh_s=1.0), clock=time.time, frozen=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(3)  # every node polled, the logs flowing
        table: AgentsTable | None = None
        if screen != "fleet":
            app.open_all_agents()
            await pilot.pause(3)
            table = app.screen.query_one(AgentsTable)
            table.sort_by(screen.split(":", 1)[1])
        probe.reset()
        lags: list[float] = []

        async def lag_probe() -> None:
            while True:
                start = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - start - 0.01)

        task = asyncio.create_task(lag_probe())
        keys: list[float] = []
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline:
            if table is not None:
                handled: list[float] = []
                original = table.action_cursor_down

                def hook(original: Any = original, handled: list[float] = handled) -> None:
                    handled.append(time.perf_counter())
                    original()

                table.action_cursor_down = hook  # type: ignore[method-assign]
                posted = time.perf_counter()
                app.post_message(events.Key("down", None))
                while not handled and time.perf_counter() - posted < 10:
                    await asyncio.sleep(0.002)
                table.action_cursor_down = original  # type: ignore[method-assign]
                keys.append((handled[0] if handled else time.perf_counter()) - posted)
            await asyncio.sleep(0.2)
        task.cancel()
        line = f"{screen:<18} loop lag {quantiles(lags)}"
        if table is not None:
            line += f" | key {quantiles(keys)} | repaint {quantiles(probe.repaints)}"
        line += f" | full GC {len(probe.gc)}x, {quantiles(probe.gc)}"
        lines.append(line)  # before the app shuts down: a worker failing then does not lose the figures
        app.exit()


async def main(args: argparse.Namespace) -> list[str]:
    probe = Probe()
    lines: list[str] = []
    for screen in ("fleet", "all-agents:health", "all-agents:cpu"):
        try:
            await measure(screen, args, probe, lines)
        except Exception as exc:  # a worker's error while the app shuts down: the figures are already taken
            if not lines or not lines[-1].startswith(screen):
                lines.append(f"{screen:<18} failed: {type(exc).__name__}: {exc}")
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".txt"))
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    header = (
        f"# {time.strftime('%Y-%m-%d %H:%M')} · {arguments.nodes} nodes, {arguments.agents} agents, "
        f"{arguments.seconds:.0f} s each · Python {platform.python_version()} · {platform.machine()}\n"
    )
    arguments.out.write_text(header + "\n".join(figures) + "\n")
    print(f"written to {arguments.out}")
