"""Log flood: 10,000 lines a second for 30 s into the full-screen log pane of the real console (headless,
real clock, real workers), from the demo backend in-process and over the http backend from a node server
in a process of its own (real uvicorn on 127.0.0.1, real httpx and SSE).

The source is :class:`~benchmarks.flood_backend.FloodBackend`: the demo node, its log replaced by dense seqs
1..N written on a fixed schedule, each line's ``ts`` the moment it was written. A probe wraps the pane's
``LogView.write_entries`` and notes, for each line reaching the pane the first time, ``arrival - ts``.

Per case (prefix ``demo_`` or ``http_``):
- ``lines_sent``, ``lines_delivered`` (distinct seqs 1..N in the pane, after up to ``TAIL_S`` for the tail),
  ``lines_lost`` (their difference);
- ``delay_p50_ms`` / ``delay_p99_ms`` / ``delay_max_ms``: from a line's writing to its arrival in the pane;
- ``loop_lag_*_ms``: the console's event-loop lag while the flood runs;
- ``cpu_core_percent``: the console process's CPU (the demo case includes the in-process source), and for
  http ``node_cpu_core_percent``, the node process's;
- ``rss_end_mb`` (after the flood, the buffers full), ``peak_rss_mb``, and ``buffer_lines`` (what the
  console's per-node buffer holds at the end: at most its capacity).

Each case runs in a process of its own, so RSS and CPU are that case's alone:

    python -m benchmarks.log_flood --case http --rate 10000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.measure import CpuWindow, LoopLag, Target, ms, peak_rss_mb, quantile, rss_mb

if TYPE_CHECKING:
    from backends.base import Backend

TITLE = "Log flood: 10,000 lines/s for 30 s into the log pane"
CASES = ("demo", "http")
TARGETS = {
    key: target
    for case in CASES
    for key, target in (
        (f"{case}_lines_lost", Target(0, "no line lost", inclusive=True)),
        (f"{case}_delay_p99_ms", Target(250, "p99 delay < 250 ms")),
        (f"{case}_rss_end_mb", Target(200, "RSS at the end < 200 MB")),
    )
}
FULL = (10_000.0, 30.0)  # lines a second, seconds
QUICK = (2_000.0, 1.0)
TAIL_S = 10.0  # how long the tail may take to arrive after the last line is written
SETTLE_S = 0.5  # from the logs screen up to the flood's start: its first paint done
PANE_ID = "full-logs"
ROOT = Path(__file__).resolve().parent.parent


class DeliveryProbe:
    """Wraps ``LogView.write_entries`` (every write to a pane goes through it): which seqs 1..``total``
    reached the full-screen pane, and when."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.delivered = 0
        self.delays: list[float] = []
        self._seen = bytearray(total + 1)

    def install(self) -> None:
        from widgets.log_view import LogView

        original = LogView.write_entries
        probe = self

        def write_entries(view: LogView, entries: Iterable[tuple[str, Any]]) -> None:
            batch = list(entries)
            original(view, batch)
            if view.id == PANE_ID:
                probe.arrived(batch, time.time())

        setattr(LogView, "write_entries", write_entries)  # noqa: B010 - a benchmark's probe, on purpose

    def arrived(self, entries: list[tuple[str, Any]], now: float) -> None:
        seen, total = self._seen, self.total
        for _, record in entries:
            seq = record.seq
            if 1 <= seq <= total and not seen[seq]:
                seen[seq] = 1
                self.delivered += 1
                self.delays.append(now - record.ts)


async def flood(case: str, rate: float, seconds: float) -> dict[str, float]:
    from console.app import FleetDeckApp
    from console.core.config import Config
    from console.core.node_link import NodeLink
    from console.screens.logs import LogsScreen

    total = int(rate * seconds)
    probe = DeliveryProbe(total)
    probe.install()
    with flood_source(case, rate, total) as source:
        link = NodeLink("flood", source.backend, clock=time.time)
        app = FleetDeckApp(
            [link],
            config=Config(refresh_s=1.0),
            clock=time.time,
            frozen=False,
            tune_gc=True,  # as `fleetdeck` runs it
        )
        figures: dict[str, float] = {}
        async with app.run_test(size=(160, 48)) as pilot:
            await _until(lambda: link.snapshot is not None)  # connected, the node screen filled
            app.open_logs(link.name)
            await _until(lambda: isinstance(app.screen, LogsScreen) and app.screen.is_mounted)
            await pilot.pause(SETTLE_S)
            lag, cpu = LoopLag(), CpuWindow()
            peak = rss_mb()
            lag.start()
            cpu.start()
            node_cpu_s = source.node_cpu_s() if source.node_cpu_s else 0.0
            started = time.time()
            source.begin(started)
            ends = started + (total - 1) / rate
            deadline = ends + TAIL_S
            while time.time() < deadline and not (time.time() >= ends and probe.delivered >= total):
                await asyncio.sleep(0.25)
                peak = max(peak, rss_mb())
            cpu.stop()
            lag.stop()
            if source.node_cpu_s:
                node_cpu_s = source.node_cpu_s() - node_cpu_s
            figures["lines_sent"] = total
            figures["lines_delivered"] = probe.delivered
            figures["lines_lost"] = total - probe.delivered
            figures["delay_p50_ms"] = ms(quantile(probe.delays, 0.50))
            figures["delay_p99_ms"] = ms(quantile(probe.delays, 0.99))
            figures["delay_max_ms"] = ms(max(probe.delays, default=math.nan))
            figures.update(lag.figures())
            figures["cpu_core_percent"] = cpu.core_percent
            if source.node_cpu_s:
                figures["node_cpu_core_percent"] = round(100.0 * node_cpu_s / cpu.wall_s, 2)
            figures["rss_end_mb"] = rss_mb()
            figures["peak_rss_mb"] = max(peak, peak_rss_mb())
            figures["buffer_lines"] = len(link.logs)
            app.exit()
    return figures


async def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the console did not get ready")
        await asyncio.sleep(0.05)


@dataclass
class FloodSource:
    """The case's backend for the console, how to start its flood at a given time, and the CPU seconds of
    the node process so far (None in-process)."""

    backend: Backend
    begin: Callable[[float], object]
    node_cpu_s: Callable[[], float] | None = None


@contextlib.contextmanager
def flood_source(case: str, rate: float, total: int) -> Iterator[FloodSource]:
    """The flood backend itself (demo), or the http backend of a node process serving it."""
    if case == "demo":
        from benchmarks.flood_backend import FloodBackend

        demo = FloodBackend(rate=rate, total=total, clock=time.time)
        yield FloodSource(demo, demo.begin)
        return
    from backends.http.backend import HttpBackend
    from backends.http.settings import HttpSettings
    from benchmarks.flood_node import FloodNode

    with FloodNode(rate, total, env=dict(os.environ)) as node:
        backend = HttpBackend(HttpSettings(node_name="flood", url=node.url), clock=time.time)
        yield FloodSource(backend, node.begin, node.cpu_s)


def run_case(case: str, rate: float, seconds: float) -> dict[str, float]:
    """One case in a fresh process of its own."""
    with tempfile.TemporaryDirectory(prefix="fleetdeck-flood-") as tmp:
        env = {**os.environ, "TEXTUAL_ANIMATIONS": "none"}
        out = Path(tmp) / "figures.json"
        command = [sys.executable, "-m", "benchmarks.log_flood", "--case", case, "--rate", str(rate)]
        command += ["--seconds", str(seconds), "--out", str(out)]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 240
        )
        if done.returncode != 0 or not out.exists():
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise RuntimeError(f"the {case} case failed (exit {done.returncode}): {tail}")
        return json.loads(out.read_text())


def measure(quick: bool) -> dict[str, float | str]:
    rate, seconds = QUICK if quick else FULL
    figures: dict[str, float | str] = {}
    for case in CASES:
        figures.update({f"{case}_{key}": value for key, value in run_case(case, rate, seconds).items()})
    if quick:
        figures["note"] = f"quick mode: {rate:,.0f} lines/s for {seconds:.0f} s"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="one case of the log flood, in this process")
    parser.add_argument("--case", choices=CASES, required=True)
    parser.add_argument("--rate", type=float, default=FULL[0])
    parser.add_argument("--seconds", type=float, default=FULL[1])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-flood-") as tmp:
        # the console writes its alert book under XDG_STATE_HOME: never into the real user's
        os.environ["XDG_STATE_HOME"] = f"{tmp}/state"
        os.environ["XDG_CONFIG_HOME"] = f"{tmp}/config"
        figures = asyncio.run(flood(args.case, args.rate, args.seconds))
    text = json.dumps(figures, indent=2, allow_nan=True)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
