"""Prometheus scrape of a 5,000-agent node: what one ``GET /metrics`` costs and weighs.

- Scrape: the real ``fleetdeck node serve --demo --agents 5000`` (its own process, uvicorn on 127.0.0.1)
  scraped by real httpx as Prometheus does, each scrape after the server's 0.5 s snapshot cache has
  expired, so every one pays for a fresh snapshot and its exposition text (a scrape every 15 s never finds
  the text cached). Latency client-side, from send to the whole body.
- Render: the collector alone in this process (``MetricsExporter.render``) on fresh snapshots of the same
  demo node, each taken a few seconds later on its clock so the figures move; and the demo snapshot alone,
  so the scrape's two parts can be told apart.
- Size: bytes of the text, and the samples and families ``prometheus_client``'s parser reads from it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.measure import Target, ms
from benchmarks.served_node import ServedNode, isolated_env

TITLE = "Prometheus /metrics: one scrape of a 5,000-agent demo node"
TARGETS = {
    "render_ms": Target(100, "exposition text at 5,000 agents < 100 ms"),
}
AGENTS = 5000
QUICK_AGENTS = 500  # quick mode shows the harness works; the 5,000-agent node's first snapshots take seconds
CACHE_EXPIRY_S = 0.6  # just over the server's snapshot cache (DEFAULT_TTL_S = 0.5)
GENESIS = 1767225600.0


def _median_ms(values: list[float]) -> float:
    return ms(statistics.median(values)) if values else float("nan")


def in_process(runs: int, agents: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    from backends.demo import DemoBackend
    from backends.node_server.metrics import MetricsExporter

    now = [GENESIS + 3600.0]
    backend = DemoBackend(seed=7, node_index=0, agents=agents, clock=lambda: now[0])
    exporter = MetricsExporter()
    snapshot_s: list[float] = []
    render_s: list[float] = []
    text = b""
    for _ in range(runs):
        now[0] += 5.0
        started = time.perf_counter()
        snapshot = asyncio.run(backend.snapshot())
        snapshot_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        text = exporter.render(snapshot)
        render_s.append(time.perf_counter() - started)
    families = list(text_string_to_metric_families(text.decode()))
    samples = sum(len(family.samples) for family in families)
    return {
        "render_ms": _median_ms(render_s),
        "render_max_ms": ms(max(render_s)),
        "demo_snapshot_ms": _median_ms(snapshot_s),
        "bytes": float(len(text)),
        "samples": float(samples),
        "families": float(len(families)),
        "samples_per_agent": round(samples / agents, 2),
    }


def through_the_route(scrapes: int, agents: int) -> dict[str, float]:
    latencies: list[float] = []
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-metrics-") as tmp:
        env = isolated_env(Path(tmp))
        with (
            ServedNode("--demo", "--agents", str(agents), "--no-access-log", env=env) as node,
            httpx.Client(base_url=node.url, headers=node.auth(), timeout=60.0) as client,
        ):
            client.get("/metrics").raise_for_status()  # warm: imports, first snapshot
            for _ in range(scrapes):
                time.sleep(CACHE_EXPIRY_S)
                started = time.perf_counter()
                response = client.get("/metrics")
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                sizes.append(len(response.content))
    return {
        "scrape_p50_ms": _median_ms(latencies),
        "scrape_max_ms": ms(max(latencies)),
        "scrape_bytes": float(statistics.median(sizes)),
        "scrapes": float(scrapes),
    }


def measure(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    agents = QUICK_AGENTS if quick else AGENTS
    figures.update(in_process(3 if quick else 20, agents))
    figures.update(through_the_route(3 if quick else 20, agents))
    figures["note"] = (
        f"demo node with {agents} agents; each route scrape after the 0.5 s snapshot cache expired "
        "(a fresh snapshot and text); render is the collector alone on a fresh snapshot"
    )
    if quick:
        figures["quick"] = f"quick mode: 3 renders and 3 scrapes of {agents} agents"
    return figures
