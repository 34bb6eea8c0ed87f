"""Node server: the real ``fleetdeck node serve`` (its own process, uvicorn on 127.0.0.1) serving the local
node with 1,000 registered agents, driven by real httpx from this process.

- Snapshot: ``GET /v1/snapshot`` open-loop at 50 requests a second; latency per request, client-side, from
  send to the whole body. The server keeps a snapshot for 0.5 s (single-flight), so about one request in
  25 waits for a fresh one from the store: the p99 is that request's time.
- SSE delivery delay: while the snapshot load runs, an agent process logs 20 lines a second through the
  local store (``AgentReporter.log``), each line carrying the time of its write; a follower on
  ``GET /v1/logs?follow=1`` takes receive time minus write time.
- Dispatch round trip: ``POST /v1/actions/dispatch`` as the console sends it (body, Idempotency-Key,
  the owner's local operator token) to the acknowledged answer (the queued Task, 201), 10 a second while
  the snapshot load goes on (each action empties the snapshot cache, as it must: the next read shows what
  was done).

The node is live throughout: a separate process heartbeats every agent once every 10 s through the store.
A second row serves the demo node (``node serve --demo --agents 1000``): the same snapshot and dispatch
load without SQLite, which separates the server's own cost from the local node's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.http_load import Series, dispatch, follow_logs, get_ok, open_loop
from benchmarks.measure import Target, ms, quantile
from benchmarks.node_agents import keep_alive, register, write_stamped_logs
from benchmarks.served_node import ServedNode, isolated_env

TITLE = "Node server: 1,000 agents, snapshot at 50 req/s, dispatch, SSE"
TARGETS = {
    "snapshot_p99_ms": Target(20, "snapshot p99 < 20 ms"),
    "dispatch_p99_ms": Target(50, "action round trip p99 < 50 ms"),
}
AGENTS = 1000
SNAPSHOT_RATE = 50.0
DISPATCH_RATE = 10.0
LOG_RATE = 20.0
HEARTBEAT_PERIOD_S = 10.0  # well inside the 15 s staleness warning: every agent stays healthy
SNAPSHOT_PATH = "/v1/snapshot"


def latency_figures(prefix: str, series: Series) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": ms(quantile(series.latencies, 0.50)),
        f"{prefix}_p99_ms": ms(quantile(series.latencies, 0.99)),
        f"{prefix}_max_ms": ms(max(series.latencies, default=float("nan"))),
        f"{prefix}_requests": float(series.planned),
        f"{prefix}_errors": float(len(series.errors)),
    }


async def agent_count(client: httpx.AsyncClient) -> int:
    response = await client.get(SNAPSHOT_PATH)
    response.raise_for_status()
    return len(response.json()["agents"])


async def dispatch_under_load(
    client: httpx.AsyncClient, agent_ids: list[str], dispatches: int
) -> dict[str, float]:
    """``dispatches`` paced dispatches while the snapshot load goes on beside them."""
    seconds = dispatches / DISPATCH_RATE
    load = asyncio.create_task(open_loop(SNAPSHOT_RATE, seconds, get_ok(client, SNAPSHOT_PATH)))
    actions = await open_loop(DISPATCH_RATE, seconds, dispatch(client, agent_ids))
    background = await load
    figures = latency_figures("dispatch", actions)
    figures["dispatch_snapshot_p99_ms"] = ms(quantile(background.latencies, 0.99))
    return figures


async def local_node(node: ServedNode, state_dir: Path, names: list[str], quick: bool) -> dict[str, Any]:
    seconds = 1.5 if quick else 30.0
    dispatches = 10 if quick else 300
    ctx = multiprocessing.get_context("spawn")
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=node.url, headers=node.auth(), timeout=30.0) as client:
        figures["agents"] = float(await agent_count(client))

        # snapshot load, with a log writer and an SSE follower beside it
        delays: list[float] = []
        subscribed = asyncio.Event()
        follower = asyncio.create_task(follow_logs(client, delays, subscribed))
        await asyncio.wait_for(subscribed.wait(), 10)
        ready, go = ctx.Event(), ctx.Event()
        writer = ctx.Process(
            target=write_stamped_logs,
            args=(str(state_dir), names[0], LOG_RATE, seconds, ready, go),
            daemon=True,
        )
        writer.start()
        try:
            await asyncio.to_thread(ready.wait, 30)
            cpu_before = node.cpu_seconds()
            go.set()
            snapshots = await open_loop(SNAPSHOT_RATE, seconds, get_ok(client, SNAPSHOT_PATH))
            cpu_used = node.cpu_seconds() - cpu_before
            await asyncio.to_thread(writer.join, 30)
            written = round(LOG_RATE * seconds)
            deadline = time.monotonic() + 2.0  # the last lines' delivery (a line not here by then is lost)
            while len(delays) < written and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            if writer.is_alive():
                writer.kill()
                writer.join()
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        figures.update(latency_figures("snapshot", snapshots))
        figures["snapshot_server_cpu_percent"] = round(100.0 * cpu_used / seconds, 1)
        figures["sse_delay_p50_ms"] = ms(quantile(delays, 0.50))
        figures["sse_delay_p99_ms"] = ms(quantile(delays, 0.99))
        figures["sse_lines_lost"] = float(written - len(delays))

        figures.update(await dispatch_under_load(client, names, dispatches))
    return figures


async def demo_node(node: ServedNode, quick: bool) -> dict[str, float]:
    seconds = 1.0 if quick else 10.0
    dispatches = 5 if quick else 100
    async with httpx.AsyncClient(base_url=node.url, headers=node.auth(), timeout=30.0) as client:
        response = await client.get(SNAPSHOT_PATH)
        response.raise_for_status()
        ids = [agent["id"] for agent in response.json()["agents"]]
        snapshots = await open_loop(SNAPSHOT_RATE, seconds, get_ok(client, SNAPSHOT_PATH))
        figures = {"agents": float(len(ids)), **latency_figures("snapshot", snapshots)}
        figures.update(await dispatch_under_load(client, ids, dispatches))
    return {f"demo_{key}": value for key, value in figures.items()}


def measure(quick: bool) -> dict[str, float | str]:
    figures: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-node-") as tmp:
        home = Path(tmp)
        env = isolated_env(home)
        state_dir = home / "node"
        names = register(state_dir, AGENTS)
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        feeder = ctx.Process(
            target=keep_alive, args=(str(state_dir), names, HEARTBEAT_PERIOD_S, stop), daemon=True
        )
        feeder.start()
        try:
            with ServedNode("--state-dir", str(state_dir), env=env) as node:
                figures.update(asyncio.run(local_node(node, state_dir, names, quick)))
        finally:
            stop.set()
            feeder.join(15)
            if feeder.is_alive():
                feeder.kill()
                feeder.join()
        with ServedNode("--demo", "--agents", str(AGENTS), env=env) as node:
            figures.update(asyncio.run(demo_node(node, quick)))
    figures["note"] = (
        "node serve with its default access log on; snapshot cache 0.5 s (single-flight); "
        f"{AGENTS} agents heartbeating every {HEARTBEAT_PERIOD_S:.0f} s from another process"
    )
    if quick:
        figures["quick"] = "quick mode: 1.5 s of snapshot load, 10 dispatches (demo: 1 s, 5)"
    return figures
