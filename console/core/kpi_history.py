"""One node's recent KPI figures, as the console saw them: a bounded series per agent and KPI (for
sparklines and for how long a breach has held) and one fleet-wide figure per KPI per snapshot (trends).

Plain Python, no I/O: NodeLink feeds it each snapshot it takes (:meth:`KpiHistory.observe`) and, once, the
node's own history where the node keeps one (:meth:`KpiHistory.seed`).

What a series holds is the figure a rule judges: a gauge's value, a counter's rate per second
(``Kpi.rate_per_s``; a counter's point with no rate yet is skipped), so a trend of ``tokens_out_total``
shows how fast tokens go out, not a line that only climbs.

The fleet-wide figure of a KPI for one snapshot is the one that matters for the side its rule calls bad:
the 95th percentile across agents for "above" (the slow tail, robust to one outlier), the 5th for
"below" (the worst few success ratios). KPIs with no rule count as "above".

Cost: observe runs at every refresh over every figure (5,000 agents x 5 KPIs is 25,000), so each series
is two ``array('d')`` trimmed in bulk, and the loop does one dict lookup per agent and one per figure.
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from backends.model import KpiSeries, NodeSnapshot
from console.core.kpi_rules import COUNTER_UNIT, Direction, KpiRule, Limits, counter_rates, effective_rules

# per series: two minutes at 1 Hz, past the built-in rules' for_s of 60 s (a longer for_s is still judged:
# a breach's start is carried from refresh to refresh, not read back from the points)
MAX_POINTS: Final = 120
TREND_POINTS: Final = 120  # fleet-wide figures kept per KPI
TAIL_SHARE: Final = 0.05  # the fleet-wide figure is the 95th (or 5th) percentile across agents


class _Series:
    """One agent's KPI: times and figures, oldest first; beyond max_points until the next bulk trim."""

    __slots__ = ("breach", "bucket", "counter", "last_at", "times", "unit", "values")

    def __init__(self, unit: str, counter: bool, bucket: list[float]) -> None:
        self.times = array("d")
        self.values = array("d")
        self.last_at = -math.inf  # the newest `at` seen, a point with no figure included
        self.unit = unit
        self.counter = counter  # its figures are its rate (Kpi.rate_per_s), not its value
        self.bucket = bucket  # this snapshot's figures of its KPI across agents, for the fleet trend
        # (limits, the newest time judged, warning-or-worse since, critical since), see _breach_starts
        self.breach: tuple[Limits, float, float | None, float | None] | None = None


class KpiHistory:
    """Recent KPI figures of one node. ``rules`` (default: the built-in ones) only say each KPI's bad side
    for :meth:`fleet_trend`."""

    def __init__(
        self,
        max_points: int = MAX_POINTS,
        *,
        rules: Iterable[KpiRule] = (),
        trend_points: int = TREND_POINTS,
    ) -> None:
        self.max_points = max(2, max_points)
        self._series: dict[str, dict[str, _Series]] = {}  # agent id -> KPI name -> series
        self._trends: dict[str, deque[float]] = {}
        self._buckets: dict[str, list[float]] = {}  # KPI name -> this snapshot's figures
        self._trend_points = trend_points
        self._below = {r.name for r in effective_rules(rules) if r.direction == "below"}
        self.snapshots = 0  # snapshots observed

    def set_rules(self, rules: Iterable[KpiRule]) -> None:
        self._below = {r.name for r in effective_rules(rules) if r.direction == "below"}

    # --- feeding -------------------------------------------------------------------------------------

    def observe(self, snapshot: NodeSnapshot) -> None:
        """Append each agent's figures whose ``at`` is newer than the last seen, and one fleet-wide
        figure per KPI from this snapshot's figures."""
        # The hot loop of KPI handling (25,000 figures a second at 5,000 agents): per figure one dict
        # lookup and three appends, each series holding its KPI's bucket so no lookup by name is needed.
        by_agent = self._series
        for agent in snapshot.agents:
            kpis = agent.kpis
            if not kpis:
                continue
            mine = by_agent.get(agent.id)
            if mine is None:
                mine = by_agent[agent.id] = {}
            for kpi in kpis:
                series = mine.get(kpi.name)
                if series is None:
                    series = mine[kpi.name] = self._new_series(kpi.name, kpi.kind == "counter", kpi.unit)
                at = kpi.at
                if at <= series.last_at:
                    continue
                series.last_at = at
                value = kpi.rate_per_s if series.counter else kpi.value
                if value is None:
                    continue
                series.times.append(at)
                series.values.append(value)
                series.bucket.append(value)
        self.snapshots += 1
        for name, bucket in self._buckets.items():
            if bucket:
                self._trend(name).append(self._fleet_figure(name, bucket))
                bucket.clear()
        if self.snapshots % max(1, self.max_points // 4) == 0:  # so a series holds at most 1.25 x
            self._trim(present={agent.id for agent in snapshot.agents})

    def _new_series(self, name: str, counter: bool, unit: str) -> _Series:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = []
        return _Series(COUNTER_UNIT if counter else unit, counter, bucket)

    def _trim(self, present: set[str]) -> None:
        """Now and then: each series back to max_points, agents that left forgotten."""
        keep = self.max_points
        for agent_id in [agent_id for agent_id in self._series if agent_id not in present]:
            del self._series[agent_id]
        for mine in self._series.values():
            for series in mine.values():
                if len(series.times) > keep:
                    del series.times[:-keep]
                    del series.values[:-keep]

    def seed(self, series: Iterable[KpiSeries]) -> None:
        """Start from the node's own history (``Backend.kpi_history``): points not newer than what is
        held are skipped, so seeding after a snapshot adds nothing twice."""
        for one in series:
            points: Sequence[tuple[float, float]] = one.points
            unit: str = one.unit
            if one.kind == "counter":
                points, unit = counter_rates(points), COUNTER_UNIT
            if not points:
                continue
            mine = self._series.setdefault(one.agent_id, {})
            held = mine.get(one.name)
            if held is None:
                held = mine[one.name] = self._new_series(one.name, one.kind == "counter", unit)
            older = [(t, v) for t, v in points if t < (held.times[0] if held.times else math.inf)]
            if not older:
                continue
            older = older[-self.max_points :]
            held.times = array("d", [t for t, _ in older]) + held.times
            held.values = array("d", [v for _, v in older]) + held.values
            held.breach = None
            held.last_at = max(held.last_at, older[-1][0])

    # --- reading -------------------------------------------------------------------------------------

    def series(self, agent_id: str, name: str) -> Sequence[tuple[float, float]]:
        """(at, figure) of one agent's KPI, oldest first, at most ``max_points``."""
        held = self._series.get(agent_id, {}).get(name)
        if held is None:
            return ()
        start = max(0, len(held.times) - self.max_points)  # trimmed in bulk, so maybe longer now
        return list(zip(held.times[start:], held.values[start:], strict=True))

    def unit(self, agent_id: str, name: str) -> str | None:
        """The unit a series' figures are in (a counter's: per_s); None when there is no such series."""
        held = self._series.get(agent_id, {}).get(name)
        return None if held is None else held.unit

    def names(self) -> list[str]:
        """The KPIs with a fleet-wide trend, in the order first seen."""
        return list(self._trends)

    def fleet_trend(self, name: str) -> Sequence[float]:
        """One fleet-wide figure of KPI ``name`` per snapshot that had any (see the module's doc)."""
        return tuple(self._trends.get(name, ()))

    def direction(self, name: str) -> Direction:
        return "below" if name in self._below else "above"

    def breach_since(
        self, agent_id: str, name: str, limits: Limits, severity: str = "warning"
    ) -> float | None:
        """When the current unbroken run of figures past ``limits``' warning (or, with severity
        "critical", critical) line began: the time of its first point; None when the newest figure is
        inside. A run longer than what is held dates from the oldest point held."""
        held = self._series.get(agent_id, {}).get(name)
        if held is None:
            return None
        warn_since, crit_since = _breach_starts(held, limits)
        return crit_since if severity == "critical" else warn_since

    def latest(self, agent_id: str, name: str) -> tuple[float, float] | None:
        held = self._series.get(agent_id, {}).get(name)
        if held is None or not held.times:
            return None
        return held.times[-1], held.values[-1]

    def __len__(self) -> int:
        """Series held."""
        return sum(len(mine) for mine in self._series.values())

    # --- inside --------------------------------------------------------------------------------------

    def _trend(self, name: str) -> deque[float]:
        trend = self._trends.get(name)
        if trend is None:
            trend = self._trends[name] = deque(maxlen=self._trend_points)
        return trend

    def _fleet_figure(self, name: str, figures: list[float]) -> float:
        # The tail's boundary without sorting all 5,000: the k-th largest (or smallest) is the percentile
        # by the nearest rank, which is what a trend needs.
        if len(figures) == 1:
            return figures[0]
        k = max(1, math.ceil(len(figures) * TAIL_SHARE))
        return (heapq.nsmallest if name in self._below else heapq.nlargest)(k, figures)[-1]


def _breach_starts(held: _Series, limits: Limits) -> tuple[float | None, float | None]:
    """(warning-or-worse since, critical since) of ``held``'s newest run, judged incrementally: with the
    same limits, only the points newer than the last call's newest are looked at."""
    times, values = held.times, held.values
    size = len(times)
    if size == 0:
        return None, None
    cached = held.breach
    first = 0
    warn_since: float | None = None
    crit_since: float | None = None
    if cached is not None and cached[0] == limits and cached[1] >= times[0]:
        first = bisect_right(times, cached[1])
        warn_since, crit_since = cached[2], cached[3]
        if first == size:
            return warn_since, crit_since
    above, warn, crit = limits.above, limits.warn, limits.crit
    for index in range(first, size):
        value = values[index]
        past_warn = value >= warn if above else value <= warn
        past_crit = value >= crit if above else value <= crit
        if not past_warn:
            warn_since = crit_since = None
            continue
        if warn_since is None:
            warn_since = times[index]
        if not past_crit:
            crit_since = None
        elif crit_since is None:
            crit_since = times[index]
    held.breach = (limits, times[-1], warn_since, crit_since)
    return warn_since, crit_since


def tail_figure(figures: Sequence[float], direction: Direction) -> float | None:
    """The fleet-wide figure of ``figures`` for ``direction`` (as :meth:`KpiHistory.fleet_trend`)."""
    if not figures:
        return None
    k = max(1, math.ceil(len(figures) * TAIL_SHARE))
    return (heapq.nsmallest if direction == "below" else heapq.nlargest)(k, figures)[-1]
