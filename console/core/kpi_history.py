"""One node's recent KPI figures, as the console saw them: a bounded series per agent and KPI (for
sparklines and for how long a breach has held) and one fleet-wide figure per KPI per snapshot (trends).

Plain Python, no I/O: NodeLink feeds it each snapshot it takes (:meth:`KpiHistory.observe`) and, once, the
node's own history where the node keeps one (:meth:`KpiHistory.seed`).

What a series holds is the figure a rule judges: a gauge's value, a counter's rate per second
(``Kpi.rate_per_s``; a counter's point with no rate yet is skipped), so a trend of ``tokens_out_total``
shows how fast tokens go out, not a line that only climbs. A figure is known by its ``at``: one whose
``at`` has not advanced is the figure already held, and is neither kept again nor judged again.

How it is kept, and why: observe runs at every refresh over every figure (5,000 agents x 5 KPIs is
25,000). A series per agent and KPI, each with its own arrays, made every figure touch half a dozen places
spread over memory: 25,000 of those cost 30 ms, most of it waiting on memory. So the history is kept by
column: each snapshot's figures go into one array of times and one of figures, in the order of a
:class:`_Layout` (which agent and KPI each position is), and a series is read back across the columns
only when a panel asks. Taking a snapshot is a few passes over its figures in C (``map`` with
``attrgetter``, ``array``), a comparison of its shape with the last layout's, and, per rule, one pass
that picks out the figures past its warning line; the few past a line are judged one by one, their
breach's start carried from snapshot to snapshot. :meth:`breaches` hands ``kpi_alerts`` those few.

The fleet-wide figure of a KPI for one snapshot is the one that matters for the side its rule calls bad:
the 95th percentile across agents for "above" (the slow tail, robust to one outlier), the 5th for
"below" (the worst few success ratios). KPIs with no rule count as "above". It is taken from a
snapshot's column when the trend is read, not when the snapshot is taken.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from operator import attrgetter, le
from typing import Final, TypeVar

from backends.model import Agent, KpiSeries, NodeSnapshot
from console.core.kpi_rules import (
    COUNTER_UNIT,
    Direction,
    KpiRule,
    Limits,
    ResolvedRule,
    RuleBook,
    counter_rates,
    rule_book,
)

# per series: two minutes at 1 Hz, past the built-in rules' for_s of 60 s (a longer for_s is still judged:
# a breach's start is carried from refresh to refresh, and a seeded one is read from the whole seeded
# series before it is cut to this, not read back from the points kept)
MAX_POINTS: Final = 120
TREND_POINTS: Final = 120  # fleet-wide figures kept per KPI
TAIL_SHARE: Final = 0.05  # the fleet-wide figure is the 95th (or 5th) percentile across agents
_NAN: Final = math.nan  # a position with no new figure in a column (figures are finite)

_ID = attrgetter("id")
_KPIS = attrgetter("kpis")
_LABELS = attrgetter("labels")
_NAME = attrgetter("name")
_UNIT = attrgetter("unit")
_KIND = attrgetter("kind")
_AT = attrgetter("at")
_VALUE = attrgetter("value")
_RATE = attrgetter("rate_per_s")

Key = tuple[str, str]  # (agent id, KPI name)
_T = TypeVar("_T")


class _Layout:
    """Which agent and KPI each position of a column is, and how each position is judged: made when a
    snapshot's agents or their KPIs differ from the last one's (in number, order, name, unit or kind)."""

    __slots__ = (
        "agent_index",
        "by_name",
        "counters",
        "counts",
        "groups",
        "ids",
        "index",
        "kinds",
        "labels",
        "limits",
        "names",
        "starts",
        "units",
    )

    def __init__(
        self,
        agents: Sequence[Agent],
        shape: tuple[list[str], list[int], list[str], list[str], list[str]],
        book: RuleBook,
        node: str,
        uniform: bool,
    ) -> None:
        self.ids, self.counts, self.names, self.units, self.kinds = shape
        self.labels: list[dict[str, str]] | None = None if uniform else list(map(_LABELS, agents))
        self.agent_index: list[int] = []  # position -> index of its agent in the snapshot
        self.starts: list[int] = []  # agent index -> its first position
        for agent_index, count in enumerate(self.counts):
            self.starts.append(len(self.agent_index))
            self.agent_index.extend([agent_index] * count)
        self.index: dict[Key, int] = {}
        self.by_name: dict[str, list[int]] = {}
        counters: list[int] = []
        self.limits: list[Limits | None] = []
        groups: dict[Limits, list[int]] = {}
        rules_of: dict[str, dict[str, ResolvedRule]] = {}
        for position, (name, unit, kind) in enumerate(zip(self.names, self.units, self.kinds, strict=True)):
            agent = agents[self.agent_index[position]]
            self.index.setdefault((agent.id, name), position)
            self.by_name.setdefault(name, []).append(position)
            if kind == "counter":
                counters.append(position)
                unit = COUNTER_UNIT
            rules = rules_of.get(agent.id)
            if rules is None:
                rules = rules_of[agent.id] = book.for_agent(node, agent.labels)
            rule = rules.get(name)
            limits = None if rule is None else book.limits(rule, unit)
            self.limits.append(limits)
            if limits is not None:
                groups.setdefault(limits, []).append(position)
        self.groups = [(limits, _compact(positions)) for limits, positions in groups.items()]
        self.counters = [_compact(counters)] if counters else []

    def unit(self, position: int) -> str:
        return COUNTER_UNIT if self.kinds[position] == "counter" else self.units[position]


class _Column:
    """One snapshot's figures: ``values[i]`` measured at ``times[i]`` for position i of ``layout``; NaN
    where that position had no new figure."""

    __slots__ = ("layout", "seq", "times", "values")

    def __init__(self, layout: _Layout, seq: int, times: array[float], values: array[float]) -> None:
        self.layout = layout
        self.seq = seq
        self.times = times
        self.values = values


@dataclass(frozen=True, slots=True)
class Breach:
    """One series whose newest figure is past its rule's warning line, as :meth:`KpiHistory.breaches`
    gives it: the agent, the KPI's position among its KPIs, the figure (in ``unit``), its lines and when
    its runs past the warning and critical lines began (``newest``: the figure's time)."""

    agent: Agent
    index: int
    name: str
    value: float
    unit: str
    counter: bool
    limits: Limits
    warn_since: float
    crit_since: float | None
    newest: float


class KpiHistory:
    """Recent KPI figures of one node, judged as they come by ``rules`` (default: the built-in ones) for
    the agents of ``node`` (default: the name each snapshot gives); the rules also say each KPI's bad side
    for :meth:`fleet_trend`."""

    def __init__(
        self,
        max_points: int = MAX_POINTS,
        *,
        rules: Iterable[KpiRule] | RuleBook = (),
        trend_points: int = TREND_POINTS,
        node: str | None = None,
    ) -> None:
        self.max_points = max(2, max_points)
        self._columns: deque[_Column] = deque(maxlen=self.max_points)
        self._layout: _Layout | None = None
        self._last_at: list[float] = []  # per position of the layout: the newest `at` seen
        self._breach: dict[int, tuple[float, float | None]] = {}  # position -> (warn since, crit since)
        self._unjudged: set[int] = set()  # breaching positions whose newest figure had no rate
        self._seeded: dict[Key, tuple[str, list[tuple[float, float]]]] = {}  # older than the columns
        # whole seeded series of agents not yet laid out (seed comes before the first snapshot): judged,
        # then let go, by the next layout, since only a layout says which lines a series is judged by
        self._pending: dict[Key, tuple[str, list[tuple[float, float]]]] = {}
        self._trends: dict[str, deque[float]] = {}
        self._trended: dict[str, int] = {}  # name -> the last column its trend has a figure from
        self._trend_points = trend_points
        self._node = node
        self._judged_node = node or ""
        self._last: NodeSnapshot | None = None
        self.book = rule_book(())
        self._below: set[str] = set()
        self.set_rules(rules)
        self.snapshots = 0  # snapshots observed

    def set_rules(self, rules: Iterable[KpiRule] | RuleBook) -> None:
        """Judge by ``rules`` from now on; what is held is judged again at the next snapshot."""
        self.book = rules if isinstance(rules, RuleBook) else rule_book(_as_sequence(rules))
        self._below = {r.name for r in self.book.rules if r.direction == "below"}
        self._rules_changed = True  # the next snapshot is laid out afresh, judged by these

    # --- feeding -------------------------------------------------------------------------------------

    def observe(self, snapshot: NodeSnapshot) -> None:
        """Keep and judge each agent's figures whose ``at`` is newer than the last seen."""
        node = self._node or snapshot.node.name
        agents = snapshot.agents
        kpi_lists = list(map(_KPIS, agents))
        flat = list(chain.from_iterable(kpi_lists))
        shape = (
            list(map(_ID, agents)),
            list(map(len, kpi_lists)),
            list(map(_NAME, flat)),
            list(map(_UNIT, flat)),
            list(map(_KIND, flat)),
        )
        layout = self._layout
        uniform = self.book.uniform is not None
        if (
            layout is None
            or self._rules_changed
            or node != self._judged_node
            or shape[2] != layout.names
            or shape[1] != layout.counts
            or shape[0] != layout.ids
            or shape[3] != layout.units
            or shape[4] != layout.kinds
            or (layout.labels is None) != uniform
            or (layout.labels is not None and list(map(_LABELS, agents)) != layout.labels)
        ):
            layout = self._new_layout(agents, shape, node, uniform)
        self.snapshots += 1
        self._last = snapshot
        times = list(map(_AT, flat))
        values = list(map(_VALUE, flat))
        no_rate: list[int] = []
        for positions in layout.counters:  # a counter's figure is its rate
            rates = list(map(_RATE, _pick(flat, positions)))
            if None in rates:
                no_rate.extend(p for p, rate in zip(positions, rates, strict=True) if rate is None)
                rates = [_NAN if rate is None else rate for rate in rates]
            _put(values, positions, rates)
        last_at = self._last_at
        stale: list[int] = []
        if any(map(le, times, last_at)):  # some figures are those already held
            stale = list(compress(range(len(times)), map(le, times, last_at)))
            for position in stale:
                values[position] = _NAN
            self._last_at = list(map(max, times, last_at))
        else:
            self._last_at = times
        self._judge(layout, times, values, set(stale), no_rate)
        if len(stale) < len(times):  # a column only for a snapshot with something new
            self._columns.append(_Column(layout, self.snapshots, array("d", times), array("d", values)))

    def _new_layout(
        self,
        agents: Sequence[Agent],
        shape: tuple[list[str], list[int], list[str], list[str], list[str]],
        node: str,
        uniform: bool,
    ) -> _Layout:
        """A layout for a snapshot of another shape, carrying each series' newest `at` and breach."""
        old = self._layout
        layout = _Layout(agents, shape, self.book, node, uniform)
        last_at = [-math.inf] * len(layout.names)
        breach: dict[int, tuple[float, float | None]] = {}
        if old is not None:
            held = self._last_at
            for key, position in layout.index.items():
                was = old.index.get(key)
                if was is None:
                    continue
                last_at[position] = held[was]
                if was in self._breach and layout.limits[position] == old.limits[was]:
                    breach[position] = self._breach[was]
        self._layout, self._last_at, self._breach, self._judged_node = layout, last_at, breach, node
        self._rules_changed = False
        self._unjudged = set()
        for key, position in layout.index.items():
            limits = layout.limits[position]
            if limits is None or position in breach:
                continue
            was = None if old is None else old.index.get(key)
            if was is None or old is None or old.limits[was] != limits:  # new to it, or other lines
                self._rejudge(layout, position, key[1], self._pending.get(key))
        self._pending = {}
        return layout

    def _rejudge(
        self,
        layout: _Layout,
        position: int,
        name: str,
        seeded: tuple[str, list[tuple[float, float]]] | None = None,
    ) -> None:
        """A series new to the layout, or judged by other lines: its breach read from what is held, or,
        given ``seeded`` (a whole seeded series, longer than what is kept), from that and the columns."""
        agent_id = layout.ids[layout.agent_index[position]]
        limits = layout.limits[position]
        assert limits is not None
        points = self._points((agent_id, name), layout.unit(position), seeded)
        if points:
            warn_since, crit_since = _runs(points, limits)
            if warn_since is not None:
                self._breach[position] = (warn_since, crit_since)

    def _judge(
        self,
        layout: _Layout,
        times: list[float],
        values: list[float],
        stale: set[int],
        no_rate: list[int],
    ) -> None:
        """Carry each breach through this snapshot: per rule one pass picks the figures past its warning
        line (NaN, no new figure, is past none); those, and the breaches before, are judged one by one."""
        before = self._breach
        now: dict[int, tuple[float, float | None]] = {}
        for limits, positions in layout.groups:
            figures = _pick(values, positions)
            # float: an int's __le__ answers NotImplemented (truthy) to a float, and lines may be ints
            warn, crit, above = float(limits.warn), limits.crit, limits.above
            # max and min skip NaN unless it comes first, so a group with none past warn is one C pass
            if not figures or (max(figures) < warn if above else min(figures) > warn):
                continue
            past = compress(positions, map(warn.__le__ if above else warn.__ge__, figures))
            for position in past:
                value = values[position]
                held = before.get(position)
                warn_since = times[position] if held is None else held[0]
                if value >= crit if above else value <= crit:
                    crit_since = times[position] if held is None or held[1] is None else held[1]
                else:
                    crit_since = None
                now[position] = (warn_since, crit_since)
        # No new figure (stale), or a counter's with no rate: the breach stands as it was, and the second
        # is left unjudged (no alert) until the counter has a rate again.
        unjudged = set(no_rate) | (self._unjudged & stale)
        for position, held in before.items():
            if position not in now and (position in stale or position in unjudged):
                now[position] = held
        self._unjudged = {position for position in unjudged if position in now}
        self._breach = now

    def seed(self, series: Iterable[KpiSeries]) -> None:
        """Start from the node's own history (``Backend.kpi_history``): points not newer than what is
        held are skipped, so seeding after a snapshot adds nothing twice. Only the newest ``max_points``
        of a series are kept, but its breach is judged on all of it: 600 s at 1 Hz past a line with for_s
        300 is a breach since its first point, not since the 120th-last."""
        for one in series:
            points: Sequence[tuple[float, float]] = one.points
            unit: str = one.unit
            if one.kind == "counter":
                points, unit = counter_rates(points), COUNTER_UNIT
            if not points:
                continue
            key = (one.agent_id, one.name)
            held = self._points(key, unit)
            first = held[0][0] if held else math.inf
            older = [(t, float(v)) for t, v in points if t < first]
            if not older:
                continue
            seeded = self._pending.get(key) or self._seeded.get(key)  # a second seed joins the first
            kept = seeded[1] if seeded is not None and seeded[0] == unit else []
            whole = older + [p for p in kept if p[0] > older[-1][0]]
            self._seeded[key] = (unit, whole[-self.max_points :])
            layout = self._layout
            position = None if layout is None else layout.index.get(key)
            if layout is not None and position is not None:
                self._last_at[position] = max(self._last_at[position], older[-1][0])
                if layout.limits[position] is not None:  # the older points may start its breach earlier
                    self._breach.pop(position, None)
                    self._rejudge(layout, position, one.name, (unit, whole))
            else:  # judged when a snapshot lays it out
                self._pending[key] = (unit, whole)

    # --- reading -------------------------------------------------------------------------------------

    def breaches(self, snapshot: NodeSnapshot, book: RuleBook, node: str) -> list[Breach] | None:
        """The series of ``snapshot``'s live agents whose newest figure is past its warning line, judged
        by ``book`` for ``node``; None when this history cannot say (``snapshot`` is not the last it
        observed, or it judged by other rules), so the caller judges the figures itself."""
        layout = self._layout
        if snapshot is not self._last or layout is None:
            return None
        if book is not self.book and book.rules != self.book.rules:
            return None
        if layout.labels is not None and node != self._judged_node:
            return None
        found = []
        for position, (warn_since, crit_since) in self._breach.items():
            if position in self._unjudged:
                continue
            agent_index = layout.agent_index[position]
            agent = snapshot.agents[agent_index]
            if agent.dead:
                continue
            limits = layout.limits[position]
            assert limits is not None
            name = layout.names[position]
            newest = self._newest((agent.id, name), layout.unit(position))
            if newest is None:
                continue
            found.append(
                Breach(
                    agent,
                    position - layout.starts[agent_index],
                    name,
                    newest[1],
                    layout.unit(position),
                    layout.kinds[position] == "counter",
                    limits,
                    warn_since,
                    crit_since,
                    newest[0],
                )
            )
        return found

    def series(self, agent_id: str, name: str) -> Sequence[tuple[float, float]]:
        """(at, figure) of one agent's KPI, oldest first, at most ``max_points``."""
        unit = self.unit(agent_id, name)
        if unit is None:
            return ()
        return self._points((agent_id, name), unit)

    def unit(self, agent_id: str, name: str) -> str | None:
        """The unit a series' figures are in (a counter's: per_s); None when there is no such series."""
        key = (agent_id, name)
        for column in reversed(self._columns):
            position = column.layout.index.get(key)
            if position is not None:
                return column.layout.unit(position)
        layout = self._layout
        if layout is not None and key in layout.index:
            return layout.unit(layout.index[key])
        seeded = self._seeded.get(key)
        return None if seeded is None else seeded[0]

    def names(self) -> list[str]:
        """The KPIs with a fleet-wide trend, in the order first seen."""
        for column in self._columns:
            for name in column.layout.by_name:
                self._trends.setdefault(name, deque(maxlen=self._trend_points))
        return [name for name in self._trends if self.fleet_trend(name)]

    def fleet_trend(self, name: str) -> Sequence[float]:
        """One fleet-wide figure of KPI ``name`` per snapshot that had any (see the module's doc)."""
        trend = self._trends.setdefault(name, deque(maxlen=self._trend_points))
        done = self._trended.get(name, 0)
        below = name in self._below
        for column in self._columns:
            if column.seq <= done:
                continue
            positions = column.layout.by_name.get(name)
            figures = [v for v in map(column.values.__getitem__, positions) if v == v] if positions else []
            if figures:
                trend.append(_tail(figures, below))
        if self._columns:
            self._trended[name] = self._columns[-1].seq
        return tuple(trend)

    def direction(self, name: str) -> Direction:
        return "below" if name in self._below else "above"

    def breach_since(
        self, agent_id: str, name: str, limits: Limits, severity: str = "warning"
    ) -> float | None:
        """When the current unbroken run of figures past ``limits``' warning (or, with severity
        "critical", critical) line began: the time of its first point; None when the newest figure is
        inside. A run longer than what is held dates from the oldest point held."""
        key = (agent_id, name)
        layout = self._layout
        position = None if layout is None else layout.index.get(key)
        if layout is not None and position is not None and layout.limits[position] == limits:
            held = self._breach.get(position)
            warn_since, crit_since = (None, None) if held is None else held
        else:
            unit = self.unit(agent_id, name)
            warn_since, crit_since = _runs(self._points(key, unit), limits) if unit else (None, None)
        return crit_since if severity == "critical" else warn_since

    def latest(self, agent_id: str, name: str) -> tuple[float, float] | None:
        unit = self.unit(agent_id, name)
        return None if unit is None else self._newest((agent_id, name), unit)

    def __len__(self) -> int:
        """Series held."""
        keys: set[Key] = set(self._seeded)
        for layout in {id(column.layout): column.layout for column in self._columns}.values():
            keys.update(layout.index)
        return len(keys)

    # --- inside --------------------------------------------------------------------------------------

    def _points(
        self, key: Key, unit: str, whole: tuple[str, list[tuple[float, float]]] | None = None
    ) -> list[tuple[float, float]]:
        """The points of one series in ``unit`` (a change of unit starts a series afresh), oldest first:
        the newest ``max_points``, or, given ``whole`` (a whole seeded series), all of it and the columns'."""
        points: list[tuple[float, float]] = []
        for column in reversed(self._columns):
            layout = column.layout
            position = layout.index.get(key)
            if position is None:
                continue
            if layout.unit(position) != unit:
                break
            value = column.values[position]
            if value == value:
                points.append((column.times[position], value))
        points.reverse()
        seeded = self._seeded.get(key) if whole is None else whole
        if seeded is not None and seeded[0] == unit:
            first = points[0][0] if points else math.inf
            points = [p for p in seeded[1] if p[0] < first] + points
        return points if whole is not None else points[-self.max_points :]

    def _newest(self, key: Key, unit: str) -> tuple[float, float] | None:
        for column in reversed(self._columns):
            layout = column.layout
            position = layout.index.get(key)
            if position is None:
                continue
            if layout.unit(position) != unit:
                return None
            value = column.values[position]
            if value == value:
                return column.times[position], value
        seeded = self._seeded.get(key)
        if seeded is not None and seeded[0] == unit and seeded[1]:
            return seeded[1][-1]
        return None


def _compact(positions: list[int]) -> range | list[int]:
    """``positions`` as a range where they are evenly spaced (as in a fleet whose agents all report the
    same KPIs in the same order), so they are picked out of a column by one slice, in C."""
    if len(positions) > 1:
        step = positions[1] - positions[0]
        if step > 0 and positions == list(range(positions[0], positions[-1] + 1, step)):
            return range(positions[0], positions[-1] + 1, step)
    return positions


def _pick(values: list[_T], positions: range | list[int]) -> list[_T]:
    if isinstance(positions, range):
        return values[positions.start : positions.stop : positions.step]
    return list(map(values.__getitem__, positions))


def _put(values: list[_T], positions: range | list[int], figures: list[_T]) -> None:
    if isinstance(positions, range):
        values[positions.start : positions.stop : positions.step] = figures
    else:
        for position, figure in zip(positions, figures, strict=True):
            values[position] = figure


def _as_sequence(rules: Iterable[KpiRule]) -> Sequence[KpiRule]:
    # rule_book caches by the sequence's identity: a tuple passed in is kept as is, so the same config
    # tuple gives the same book here and in kpi_alerts
    return rules if isinstance(rules, tuple) else tuple(rules)


def _runs(points: Sequence[tuple[float, float]], limits: Limits) -> tuple[float | None, float | None]:
    """(warning-or-worse since, critical since) of the newest run of ``points`` past ``limits``."""
    above, warn, crit = limits.above, limits.warn, limits.crit
    warn_since: float | None = None
    crit_since: float | None = None
    for at, value in points:
        if not (value >= warn if above else value <= warn):
            warn_since = crit_since = None
            continue
        if warn_since is None:
            warn_since = at
        if not (value >= crit if above else value <= crit):
            crit_since = None
        elif crit_since is None:
            crit_since = at
    return warn_since, crit_since


def _tail(figures: Sequence[float], below: bool) -> float:
    # The tail's boundary without sorting all 5,000: the k-th largest (or smallest) is the percentile by
    # the nearest rank, which is what a trend needs.
    if len(figures) == 1:
        return figures[0]
    k = max(1, math.ceil(len(figures) * TAIL_SHARE))
    return (heapq.nsmallest if below else heapq.nlargest)(k, figures)[-1]


def tail_figure(figures: Sequence[float], direction: Direction) -> float | None:
    """The fleet-wide figure of ``figures`` for ``direction`` (as :meth:`KpiHistory.fleet_trend`)."""
    if not figures:
        return None
    return _tail(figures, direction == "below")
