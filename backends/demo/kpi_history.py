"""A demo node's KPI history: the figures its agents measured before now, from the same functions that
give their latest ones, so a trend ends exactly on the figure the agent shows.

The history is a grid of samples at a step that grows with the span asked for (a minute for the last few
hours, half an hour for a week), so a week of every agent stays a few tens of thousands of points; the
agent's latest figure is always the last point. No sample exists where the agent measured nothing: before
it started, while it lay crashed, while its heartbeat stalled, or since an operator held it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping

from backends.model import Agent, KpiSeries

from .figures import kpi_kind, kpi_unit, value_at
from .roster import AgentSpec
from .state import Hold
from .world import World

HOUR = 3600.0
DAY = 86400.0
RETENTION_S = 7 * DAY  # what the demo node keeps, as the local store keeps a week


def step_for(span_s: float) -> float:
    """The sampling step for a history ``span_s`` long: fine for hours, coarse for days."""
    if span_s <= 6 * HOUR:
        return 60.0
    if span_s <= 2 * DAY:
        return 300.0
    return 1800.0


def grid_points(
    world: World, spec: AgentSpec, name: str, start: float, end: float, step: float, hold: Hold | None
) -> Iterator[tuple[float, float]]:
    """The agent's figure ``name`` at each multiple of ``step`` in ``[start, end)`` where it measured."""
    profile = world.profile(spec.id)
    if profile is None or name not in profile.names:
        return
    stop = end if hold is None else min(end, hold.since)
    tau = math.ceil(max(start, spec.started_at) / step) * step
    first_start = spec.started_at
    if not world.troubled(spec):  # it has measured all along, from one process: no gaps to look for
        while tau < stop:
            yield tau, value_at(profile, name, tau, first_start, first_start)
            tau += step
        return
    while tau < stop:
        if world.measuring(spec, tau):
            yield tau, value_at(profile, name, tau, world.process_start(spec, tau), first_start)
        tau += step


def kpi_history(
    world: World,
    latest: Mapping[str, Agent],
    holds: Mapping[str, Hold],
    since: float,
    now: float,
    *,
    names: Collection[str] | None = None,
    agent_ids: Collection[str] | None = None,
) -> list[KpiSeries]:
    """One series per (agent, KPI) with a point at or after ``since``, oldest first, in roster order.
    ``latest``: the agents as the snapshot at ``now`` shows them (their figures end each series);
    ``holds``: the hold on each held agent, after which it measured nothing."""
    start = max(since, now - RETENTION_S)
    step = step_for(now - start)
    out: list[KpiSeries] = []
    for spec in world.roster:
        if agent_ids is not None and spec.id not in agent_ids:
            continue
        agent = latest.get(spec.id)
        if agent is None:
            continue
        for kpi in agent.kpis:
            if names is not None and kpi.name not in names:
                continue
            points = list(grid_points(world, spec, kpi.name, start, kpi.at, step, holds.get(spec.id)))
            if kpi.at >= start:
                points.append((kpi.at, kpi.value))
            if points:
                out.append(
                    KpiSeries(
                        agent_id=spec.id,
                        name=kpi.name,
                        unit=kpi_unit(kpi.name),  # type: ignore[arg-type]
                        kind=kpi_kind(kpi.name),  # type: ignore[arg-type]
                        points=tuple(points),
                    )
                )
    return out
