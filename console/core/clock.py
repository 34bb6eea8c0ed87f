"""Clocks the console reads "now" from: the wall clock, or a frozen one for deterministic snapshots."""

from __future__ import annotations

import time


class SystemClock:
    def __call__(self) -> float:
        return time.time()


class FrozenClock:
    """A clock that only moves when told to: headless snapshots and tests render the same screen twice."""

    def __init__(self, now: float) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = float(now)

    def advance(self, seconds: float) -> None:
        self.now += seconds
