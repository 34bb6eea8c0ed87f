"""HTTP fleet: 20 real ``fleetdeck node serve --demo`` processes of 250 agents each (5,000 agents) on
127.0.0.1, and one console polling all of them at 1 Hz over real httpx, on the All agents screen.

Each node is its own process, with its own seed, started as an operator would (``--no-access-log``); the
console is the real app, headless, with one ``[[nodes]]`` entry of backend ``http`` per node. Over the
measured window:

- ``console_core_percent``: the console process's CPU (every thread) as percent of one core; the nodes'
  CPU is apart, in ``nodes_core_percent`` (all 20 together: each simulates its agents);
- ``loop_lag_p50_ms`` / ``_p99_ms`` / ``_max_ms``: how late the console's event loop wakes (what a key waits
  behind);
- ``bytes_per_poll``: the snapshot body one node sends, on average; ``decode_ms_p50`` / ``_p99``: the time
  one snapshot takes to decode into the wire model (timed around the client's decode, on its thread);
- ``polls``: snapshots decoded in the window (20 nodes x 60 s at 1 Hz is 1,200);
- ``all_nodes_shown_s``: from the app's start until every node's first snapshot is in (the window starts
  5 s after that, so it measures the steady refresh, not the fleet filling in).

What it shows: whether the console's cost follows the data it is sent, and whether a conditional or delta
poll (ETag, since-version) would pay: it would save the bytes and the decode of what did not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.fleet_refresh import as_the_cli_runs_it
from benchmarks.measure import CpuWindow, LoopLag, Target, quantile
from benchmarks.served_node import ServedNode, isolated_env

TITLE = "HTTP fleet: 20 node serve --demo x 250 agents, one console polling at 1 Hz"
TARGETS = {"console_core_percent": Target(8, "<= 8% of one core", inclusive=True)}
REFRESH_S = 1.0
SIZE = (160, 48)
FILL_TIMEOUT_S = 120.0


class DecodeTally:
    """Bytes and decode time of every snapshot the console's http clients decode."""

    def __init__(self) -> None:
        self.bytes: list[int] = []
        self.seconds: list[float] = []
        self.counting = False

    def install(self) -> None:
        from backends.http.client import NodeClient

        decode = NodeClient.decode

        def timed(client: Any, response: Any, type_: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return decode(client, response, type_, *args, **kwargs)
            finally:
                if self.counting and type_.__name__ == "NodeSnapshot":
                    self.seconds.append(time.thread_time() - start)
                    self.bytes.append(len(response.content))

        setattr(NodeClient, "decode", timed)  # noqa: B010 - a method replaced, as fleet_refresh does


async def watch(
    urls: list[tuple[str, str]], token_file: str, warmup_s: float, seconds: float
) -> dict[str, float]:
    from console.app import FleetDeckApp
    from console.core.config import Config, NodeConfig
    from console.core.fleet_setup import configured_links

    tally = DecodeTally()
    tally.install()
    nodes = [
        NodeConfig(name=name, backend="http", url=url, token_file=token_file, read_only=True)
        for name, url in urls
    ]
    config = Config(refresh_s=REFRESH_S, nodes=tuple(nodes))
    links = configured_links(config, clock=time.time)
    app = FleetDeckApp(
        links, config=config, clock=time.time, start_screen="agents", **as_the_cli_runs_it(FleetDeckApp)
    )
    figures: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        started = time.perf_counter()
        while any(link.snapshot is None for link in links) and time.perf_counter() - started < FILL_TIMEOUT_S:
            await asyncio.sleep(0.05)
        figures["all_nodes_shown_s"] = round(time.perf_counter() - started, 2)
        await pilot.pause(warmup_s)  # settled: what follows is the steady refresh
        lag, cpu = LoopLag(), CpuWindow()
        lag.start()
        cpu.start()
        tally.counting = True
        await asyncio.sleep(seconds)
        tally.counting = False
        cpu.stop()
        lag.stop()
        figures.update(lag.figures())
        figures["console_core_percent"] = cpu.core_percent
        figures["polls"] = float(len(tally.bytes))
        figures["bytes_per_poll"] = round(statistics.fmean(tally.bytes)) if tally.bytes else float("nan")
        decode_ms = [1000 * s for s in tally.seconds]
        figures["decode_ms_p50"] = round(quantile(decode_ms, 0.50), 2)
        figures["decode_ms_p99"] = round(quantile(decode_ms, 0.99), 2)
        agents = sum(len(link.snapshot.agents) for link in links if link.snapshot is not None)
        figures["agents_shown"] = float(agents)
        app.exit()
    return figures


def watch_alone(
    urls: list[tuple[str, str]], token_file: str, warmup_s: float, seconds: float
) -> dict[str, float]:
    """The console's run in a process of its own: its CPU is the console's alone."""
    return asyncio.run(watch(urls, token_file, warmup_s, seconds))


def measure(quick: bool) -> dict[str, float | str]:
    count, agents = (3, 50) if quick else (20, 250)
    warmup_s, seconds = (2.0, 3.0) if quick else (5.0, 60.0)
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-http-fleet-") as tmp:
        env = isolated_env(Path(tmp))  # one home: every node admits the same local operator token
        with contextlib.ExitStack() as stack:
            served = [
                stack.enter_context(
                    ServedNode(
                        "--demo", "--seed", str(7 + n), "--demo-node", str(1 + n % 3),
                        "--agents", str(agents), "--no-access-log", env=env,
                    )
                )
                for n in range(count)
            ]  # fmt: skip
            token_file = str(Path(env["XDG_STATE_HOME"]) / "fleetdeck" / "local-operator.token")
            urls = [(f"node-{n:02d}", node.url) for n, node in enumerate(served)]
            before = sum(node.cpu_seconds() for node in served)
            started = time.perf_counter()
            spawn = multiprocessing.get_context("spawn")
            with spawn.Pool(1) as pool:
                figures: dict[str, float | str] = dict(
                    pool.apply(watch_alone, (urls, token_file, warmup_s, seconds))
                )
            wall = time.perf_counter() - started
            spent = sum(node.cpu_seconds() for node in served) - before
    figures["nodes_core_percent"] = round(100 * spent / wall, 1)
    figures["note"] = (
        f"{count} nodes x {agents} agents, All agents screen at {SIZE[0]}x{SIZE[1]}, "
        f"{seconds:.0f} s at 1 Hz; nodes' CPU over the console's whole run, start-up included"
    )
    return figures
