"""What every scenario measures with: quantiles, event-loop lag, CPU time and RSS of this process.

Each run of a scenario is its own process (see ``benchmarks.run_one``), so CPU time and peak RSS belong to
that run alone.
"""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import time
from collections.abc import Sequence


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def peak_rss_mb() -> float:
    """The peak resident set of this process so far, in MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / (1024 * 1024), 1)


class CpuWindow:
    """CPU seconds (user + system, every thread) this process spent between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self) -> None:
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()

    def stop(self) -> None:
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0

    @property
    def core_percent(self) -> float:
        return round(100.0 * self.cpu_s / self.wall_s, 2) if self.wall_s else math.nan


class LoopLag:
    """How late a 10 ms sleep wakes up on the running event loop: what a key press waits behind."""

    INTERVAL_S = 0.01

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.INTERVAL_S)
            self.samples.append(max(0.0, time.perf_counter() - before - self.INTERVAL_S))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def figures(self, prefix: str = "loop_lag") -> dict[str, float]:
        return {
            f"{prefix}_p50_ms": ms(quantile(self.samples, 0.50)),
            f"{prefix}_p99_ms": ms(quantile(self.samples, 0.99)),
            f"{prefix}_max_ms": ms(max(self.samples, default=math.nan)),
        }


class Target:
    """A figure's goal: below ``limit`` (or at most, when ``inclusive``), as the README states it."""

    def __init__(self, limit: float, label: str, *, inclusive: bool = False) -> None:
        self.limit = limit
        self.label = label
        self.inclusive = inclusive

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value <= self.limit if self.inclusive else value < self.limit


class FullCollections:
    """Full (generation 2) garbage collections while active: each one stops the event loop."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __enter__(self) -> FullCollections:
        import gc

        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        import gc

        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)

    def figures(self, prefix: str = "full_gc") -> dict[str, float]:
        return {f"{prefix}_count": len(self.pauses), f"{prefix}_max_ms": ms(max(self.pauses, default=0.0))}
