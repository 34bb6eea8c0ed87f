"""Criteria and triggers bound to a KPI, judged live from the points agents reported in their window.

A binding names a KPI, a line (op, value, unit), a window (``over_s``), the agents it looks at (a label
match, else the phase's agents, else every agent) and how their points are summed up (``aggregate``). A
gauge's points of every matched agent are pooled; a counter's growth is taken per agent (resets handled)
and then summed up across agents. No point in the window: not measured (None), never a made-up figure.

Each binding is summed up by SQLite (store_kpi_figures), inside the snapshot's read transaction. A
:class:`FigureCache` keeps each figure between snapshots and judges a binding again only when it can have
changed meaningfully: a point arrived in its scope (or its oldest counted point left the window) AND at
least ``refresh_after(over_s)`` = max(1 s, over/600) passed since it was last judged, by the store's clock.
A 10-minute window is judged at most every second, a 7-day one about every 17 minutes. A binding not
measured yet is judged as soon as a point arrives in its scope.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from backends.kpis import format_value, infer_kind, infer_unit

from . import store_kpi_figures
from .plan_targets import default_aggregate, describe_duration, threshold_in
from .planfile import compare


@dataclass(frozen=True, slots=True)
class Binding:
    kpi: str
    op: str
    value: float
    unit: str | None  # the target's unit word, as written
    over_s: float
    agents: Mapping[str, str] | None = None  # label match; None: the scope the caller gives
    aggregate: str | None = None  # None: plan_targets.default_aggregate

    @classmethod
    def from_row(
        cls, binding: Mapping[str, Any], op: str | None, value: float | None, unit: str | None
    ) -> Binding | None:
        if op is None or value is None or not binding.get("kpi"):
            return None
        return cls(
            kpi=str(binding["kpi"]),
            op=op,
            value=float(value),
            unit=unit or None,
            over_s=float(binding.get("over_s") or 300.0),
            agents=binding.get("agents") or None,
            aggregate=binding.get("aggregate") or None,
        )

    @property
    def spec(self) -> tuple[object, ...]:
        """What the binding asks, hashable (its label match a sorted tuple): the figure cache's key."""
        agents = None if self.agents is None else tuple(sorted(self.agents.items()))
        return (self.kpi, self.op, self.value, self.unit, self.over_s, agents, self.aggregate)


@dataclass(frozen=True, slots=True)
class Figure:
    """A binding's live figure: the number in the KPI's unit, the text shown as ``actual``, the verdict
    (True: the line holds), and the agents it came from."""

    value: float | None
    actual: str | None
    holds: bool | None
    agents: int = 0


def refresh_after(over_s: float) -> float:
    """How long a binding's figure is kept before new points may change it: a 600th of its window, at
    least a second. Over so long a window, that many new points move the figure by a fraction of one
    bucket of the window, while judging a 7-day window every second would read it millions of times."""
    return max(1.0, over_s / 600.0)


# (binding's spec, its agents or None for every agent, the KPI's unit, its kind)
_Key = tuple[tuple[object, ...], frozenset[str] | None, str, str]
# what judge_all asks of a binding: the binding, its agents (None: every agent), the KPI's unit and kind
_Asked = tuple[Binding, frozenset[str] | None, str, str]
# more new points than this since the last snapshot: every figure is taken as touched, unread
_SCAN_NEW_AT_MOST = 50_000


@dataclass(slots=True)
class _Kept:
    figure: Figure
    judged_at: float  # the store's clock when judged
    oldest: float | None  # the oldest point it counted
    touched: bool = False  # a point arrived in its scope since


class FigureCache:
    """Each binding's judged figure between snapshots, for one Store (one process): see the module's
    rule. Which figures new points touched is read from the points added since the last snapshot (ids
    only grow), so a snapshot with nothing new costs one index lookup. Use under the Store's lock (its
    reads and writes), which keeps one thread in it at a time; :meth:`clear` when a plan is applied."""

    def __init__(self) -> None:
        self._kept: dict[_Key, _Kept] = {}
        self._seen_id: int | None = None  # the newest point id when last looked

    def clear(self) -> None:
        self._kept.clear()
        self._seen_id = None

    def judge(
        self, conn: sqlite3.Connection, now: float, asked: Mapping[Hashable, _Asked]
    ) -> dict[Hashable, Figure]:
        self._mark_touched(conn)
        kept: dict[_Key, _Kept] = {}
        figures: dict[Hashable, Figure] = {}
        for key, (binding, agents, unit, kind) in asked.items():
            cache_key: _Key = (binding.spec, agents, unit, kind)
            entry = kept.get(cache_key) or self._kept.get(cache_key)
            if entry is None or _due(entry, binding, now):
                figure, oldest = _judge(conn, binding, now, agents, unit, kind)
                entry = _Kept(figure, now, oldest)
            kept[cache_key] = entry
            figures[key] = entry.figure
        self._kept = kept  # bindings no longer asked for (a scope that changed) are dropped
        return figures

    def _mark_touched(self, conn: sqlite3.Connection) -> None:
        newest = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM kpi_points").fetchone()[0])
        seen, self._seen_id = self._seen_id, newest
        if seen is None or newest == seen or not self._kept:
            return
        if newest < seen or newest - seen > _SCAN_NEW_AT_MOST:
            for entry in self._kept.values():
                entry.touched = True
            return
        cursor = conn.cursor()
        cursor.row_factory = None
        # NOT INDEXED: the new points are a range of ids at the end of the table (see LatestCache)
        cursor.execute("SELECT DISTINCT name, agent_id FROM kpi_points NOT INDEXED WHERE id > ?", (seen,))
        fresh: dict[str, set[str]] = {}
        for name, agent_id in cursor:
            fresh.setdefault(str(name), set()).add(str(agent_id))
        for (spec, agents, _, _), entry in self._kept.items():
            reporting = fresh.get(str(spec[0]))
            if reporting and (agents is None or not agents.isdisjoint(reporting)):
                entry.touched = True


def _due(entry: _Kept, binding: Binding, now: float) -> bool:
    if now < entry.judged_at:
        return True  # the clock went back: what was judged "later" says nothing about now
    if entry.figure.value is None:
        return entry.touched  # a first point is news however long the window: judged at once
    if now - entry.judged_at < refresh_after(binding.over_s):
        return False
    aged = entry.oldest is not None and entry.oldest < now - binding.over_s
    return entry.touched or aged


def judge_all(
    conn: sqlite3.Connection,
    now: float,
    bindings: Mapping[Hashable, Binding],
    scopes: Mapping[Hashable, Collection[str] | None],
    labels: Mapping[str, Mapping[str, str]],
    cache: FigureCache | None = None,
) -> dict[Hashable, Figure]:
    """Judge every binding; ``scopes`` gives each key's default agents (None: every agent), ``labels`` each
    known agent's labels (for a binding's own label match). With ``cache``, a figure not due again is the
    one judged before."""
    if not bindings:
        return {}
    units = _units(conn, {b.kpi for b in bindings.values()})
    asked: dict[Hashable, _Asked] = {}
    for key, binding in bindings.items():
        if binding.agents is not None:
            wanted: Collection[str] | None = [
                a for a, have in labels.items() if all(have.get(k) == v for k, v in binding.agents.items())
            ]
        else:
            wanted = scopes.get(key)
        unit, kind = units.get(binding.kpi, (infer_unit(binding.kpi), infer_kind(binding.kpi)))
        asked[key] = (binding, None if wanted is None else frozenset(wanted), unit, kind)
    if cache is not None:
        return cache.judge(conn, now, asked)
    return {
        key: _judge(conn, b, now, agents, unit, kind)[0] for key, (b, agents, unit, kind) in asked.items()
    }


def _judge(
    conn: sqlite3.Connection,
    binding: Binding,
    now: float,
    agents: Collection[str] | None,
    unit: str,
    kind: str,
) -> tuple[Figure, float | None]:
    """The binding's figure as of ``now`` and the oldest point it counted."""
    how = binding.aggregate or default_aggregate(binding.op, kind)
    summed_up = store_kpi_figures.counter if kind == "counter" else store_kpi_figures.gauge
    summary = summed_up(conn, binding.kpi, now - binding.over_s, agents, how)
    value = summary.value
    if value is None:
        return Figure(value=None, actual=None, holds=None), summary.oldest
    count = summary.agents
    actual = (
        f"{format_value(value, unit)} ({how} of {count} agent{'s' if count != 1 else ''}, "
        f"{describe_duration(binding.over_s)})"
    )
    line = threshold_in(binding.value, binding.unit, unit)
    holds = None if line is None else compare(value, binding.op, line)
    return Figure(value=value, actual=actual, holds=holds, agents=count), summary.oldest


def _units(conn: sqlite3.Connection, names: Collection[str]) -> dict[str, tuple[str, str]]:
    """Each KPI's unit and kind as agents last reported them (an agent may name a unit its KPI's name does
    not imply)."""
    rows = conn.execute(
        "SELECT name, unit, kind FROM kpi_latest WHERE name IN (SELECT value FROM json_each(?))"
        " ORDER BY at DESC",
        (json.dumps(sorted(names)),),
    ).fetchall()
    found: dict[str, tuple[str, str]] = {}
    for row in rows:
        found.setdefault(str(row[0]), (str(row[1]), str(row[2])))
    return found
