"""KPI summaries over the period: min / p95 / max / last per KPI across the agents reporting it, and per
agent where there are few enough agents for a row each to be read."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from backends.kpis import aggregate, counter_increase
from backends.model import KpiSeries

from .card import KpiSummary

PER_AGENT_ROWS_UP_TO = 5  # more agents than this: one row for the KPI, the fleet's figures


def summarise(series: Sequence[KpiSeries], start: float, end: float) -> tuple[KpiSummary, ...]:
    """Rows by KPI name, each KPI's fleet row first and then its agents' rows (where few), agents by id.
    Points outside [start, end] are left out; a series with none in it is too."""
    by_name: dict[str, list[KpiSeries]] = defaultdict(list)
    for one in series:
        points = tuple(p for p in one.points if start <= p[0] <= end)
        if points:
            by_name[one.name].append(_with_points(one, points))
    rows: list[KpiSummary] = []
    for name in sorted(by_name):
        group = sorted(by_name[name], key=lambda s: s.agent_id)
        if len(group) == 1:
            rows.append(_row(group, agent_id=group[0].agent_id))
            continue
        rows.append(_row(group, agent_id=None))
        if len(group) <= PER_AGENT_ROWS_UP_TO:
            rows.extend(_row([one], agent_id=one.agent_id) for one in group)
    return tuple(rows)


def _with_points(one: KpiSeries, points: tuple[tuple[float, float], ...]) -> KpiSeries:
    return KpiSeries(agent_id=one.agent_id, name=one.name, unit=one.unit, kind=one.kind, points=points)


def _row(group: Sequence[KpiSeries], *, agent_id: str | None) -> KpiSummary:
    first = group[0]
    values = [value for one in group for _, value in one.points]
    lasts = [one.points[-1][1] for one in group]
    counter = first.kind == "counter"
    last = math.fsum(lasts) if counter else math.fsum(lasts) / len(lasts)
    return KpiSummary(
        name=first.name,
        unit=first.unit,
        kind=first.kind,
        agent_id=agent_id,
        agents=len(group),
        points=len(values),
        min=min(values),
        p95=_p95(values),
        max=max(values),
        last=last,
        increase=math.fsum(counter_increase(one.points) for one in group) if counter else None,
    )


def _p95(values: Sequence[float]) -> float:
    result = aggregate(values, "p95")
    assert result is not None  # values is never empty here
    return result
