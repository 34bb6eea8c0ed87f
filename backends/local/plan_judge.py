"""Criteria and triggers bound to a KPI, judged live from the points agents reported in their window.

A binding names a KPI, a line (op, value, unit), a window (``over_s``), the agents it looks at (a label
match, else the phase's agents, else every agent) and how their points are summed up (``aggregate``). A
gauge's points of every matched agent are pooled; a counter's growth is taken per agent (resets handled)
and then summed up across agents. No point in the window: not measured (None), never a made-up figure.

One window query per snapshot serves every binding, inside the snapshot's read transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.kpis import aggregate, counter_increase, format_value, infer_kind, infer_unit

from . import store_kpis
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


@dataclass(frozen=True, slots=True)
class Figure:
    """A binding's live figure: the number in the KPI's unit, the text shown as ``actual``, the verdict
    (True: the line holds), and the agents it came from."""

    value: float | None
    actual: str | None
    holds: bool | None
    agents: int = 0


def judge_all(
    conn: sqlite3.Connection,
    now: float,
    bindings: Mapping[Hashable, Binding],
    scopes: Mapping[Hashable, Collection[str] | None],
    labels: Mapping[str, Mapping[str, str]],
) -> dict[Hashable, Figure]:
    """Judge every binding; ``scopes`` gives each key's default agents (None: every agent), ``labels`` each
    known agent's labels (for a binding's own label match)."""
    if not bindings:
        return {}
    names = {b.kpi for b in bindings.values()}
    since = now - max(b.over_s for b in bindings.values())
    points = store_kpis.window(conn, names, since)
    units = _units(conn, names)
    by_kpi: dict[str, list[tuple[str, list[tuple[float, float]]]]] = {}
    for (agent_id, name), series in points.items():
        by_kpi.setdefault(name, []).append((agent_id, series))
    figures: dict[Hashable, Figure] = {}
    for key, binding in bindings.items():
        if binding.agents is not None:
            wanted: Collection[str] | None = {
                a for a, have in labels.items() if all(have.get(k) == v for k, v in binding.agents.items())
            }
        else:
            wanted = scopes.get(key)
        unit, kind = units.get(binding.kpi, (infer_unit(binding.kpi), infer_kind(binding.kpi)))
        figures[key] = judge(binding, now, by_kpi.get(binding.kpi, []), wanted, unit, kind)
    return figures


def judge(
    binding: Binding,
    now: float,
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    agents: Collection[str] | None,
    unit: str,
    kind: str,
) -> Figure:
    start = now - binding.over_s
    how = binding.aggregate or default_aggregate(binding.op, kind)
    per_agent = [
        [p for p in points if p[0] >= start]
        for agent_id, points in series
        if agents is None or agent_id in agents
    ]
    per_agent = [points for points in per_agent if points]
    if not per_agent:
        return Figure(value=None, actual=None, holds=None)
    if kind == "counter":
        value = aggregate([counter_increase(points) for points in per_agent], how)
    else:
        pooled = sorted(p for points in per_agent for p in points)
        value = aggregate([v for _, v in pooled], how)
    if value is None:
        return Figure(value=None, actual=None, holds=None)
    count = len(per_agent)
    actual = (
        f"{format_value(value, unit)} ({how} of {count} agent{'s' if count != 1 else ''}, "
        f"{describe_duration(binding.over_s)})"
    )
    line = threshold_in(binding.value, binding.unit, unit)
    holds = None if line is None else compare(value, binding.op, line)
    return Figure(value=value, actual=actual, holds=holds, agents=count)


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
