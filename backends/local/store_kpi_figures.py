"""A KPI's window summed up by SQLite: one figure from the points of some agents since some time, without
carrying the points into Python.

Counts, minimum, maximum, sum and mean are SQL aggregates; the newest point is one ordered row; a
percentile reads only the one or two values around its rank (``ORDER BY ... LIMIT ... OFFSET``, from the
near end); a counter's growth per agent is summed over its steps with ``LAG`` (a drop read as a reset, as
``backends.kpis.counter_increase`` does), and only those per-agent figures come back. A window of
2,000,000 points then costs what SQLite's scan of them costs, not millions of Python tuples.

Pure functions of ``conn``: callers run them inside their own read transaction.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

from backends.kpis import aggregate


@dataclass(frozen=True, slots=True)
class Summary:
    value: float | None  # None: no point in the window
    agents: int  # agents with a point in it
    oldest: float | None  # the oldest point counted: when it leaves the window, the figure may change


EMPTY = Summary(value=None, agents=0, oldest=None)


# Reading a point through the series index costs about 20 times what a pass over the table costs per
# point (the index holds no values: each is a lookup in the table), so a window holding more than this
# share of the table is read in one pass instead.
_SCAN_SHARE = 1 / 20


def _where(
    conn: sqlite3.Connection, name: str, since: float, agent_ids: Collection[str] | None
) -> tuple[str, list[object]]:
    """The FROM and WHERE of the window's points: through the series index (name, agent, time), each
    agent's range sought in turn — for every agent, those that ever reported the KPI (each has a latest
    figure) — or, for a window holding a large share of the table, one pass over it."""
    if _share(conn, since) > _SCAN_SHARE:
        source, clauses, params = "kpi_points NOT INDEXED", "name = ? AND at >= ?", [name, since]
        if agent_ids is not None:
            # one JSON parameter instead of a placeholder per agent: no limit on how many are asked for
            clauses += " AND agent_id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(agent_ids)))
        return f"{source} WHERE {clauses}", params
    if agent_ids is None:
        agents, agent_param = "SELECT agent_id FROM kpi_latest WHERE name = ?", name
    else:
        agents, agent_param = "SELECT value FROM json_each(?)", json.dumps(sorted(agent_ids))
    return f"kpi_points WHERE name = ? AND agent_id IN ({agents}) AND at >= ?", [name, agent_param, since]


def _share(conn: sqlite3.Connection, since: float) -> float:
    """About what share of the table's points one KPI has since ``since``: the window's share of the
    time the table spans, over the number of KPIs (two index lookups and a count of latest figures)."""
    oldest, newest = conn.execute(
        "SELECT (SELECT MIN(at) FROM kpi_points), (SELECT MAX(at) FROM kpi_points)"
    ).fetchone()
    if oldest is None:
        return 0.0
    held = 1.0 if since <= oldest or newest <= oldest else max(0.0, newest - since) / (newest - oldest)
    names = int(conn.execute("SELECT COUNT(DISTINCT name) FROM kpi_latest").fetchone()[0]) or 1
    return held / names


def gauge(
    conn: sqlite3.Connection, name: str, since: float, agent_ids: Collection[str] | None, how: str
) -> Summary:
    """``how`` of the pooled points of ``name`` measured at or after ``since`` by ``agent_ids`` (None:
    every agent): the figure ``backends.kpis.aggregate`` gives of them in the order measured."""
    if agent_ids is not None and not agent_ids:
        return EMPTY
    where, params = _where(conn, name, since, agent_ids)
    count, agents, oldest, low, high, total = conn.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT agent_id), MIN(at), MIN(value), MAX(value), SUM(value)"
        f" FROM {where}",
        params,
    ).fetchone()
    if not count:
        return EMPTY
    value: float
    if how == "min":
        value = float(low)
    elif how == "max":
        value = float(high)
    elif how == "sum":
        value = float(total)
    elif how == "mean":
        value = float(total) / count
    elif how == "last":
        # the newest point; among points measured at the same time, the greatest (the pooled points
        # sort by (at, value), and aggregate takes the last)
        value = float(
            conn.execute(
                f"SELECT value FROM {where} ORDER BY at DESC, value DESC LIMIT 1", params
            ).fetchone()[0]
        )
    elif how in ("p50", "p95", "p99"):
        value = _percentile(conn, where, params, int(count), int(how[1:]))
    else:
        raise ValueError(f"unknown aggregate {how!r}")
    return Summary(value=value, agents=int(agents), oldest=float(oldest))


def _percentile(conn: sqlite3.Connection, where: str, params: list[object], count: int, pct: int) -> float:
    """``backends.kpis.percentile`` of the window's values, reading only the two around its rank; counted
    from the top (a p95 keeps the top 5% in SQLite's sorter, not the bottom 95%)."""
    rank = (count - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, count - 1)
    rows = conn.execute(
        f"SELECT value FROM {where} ORDER BY value DESC LIMIT ? OFFSET ?",
        [*params, high - low + 1, count - 1 - high],
    ).fetchall()
    at_high, at_low = float(rows[0][0]), float(rows[-1][0])
    return at_low + (at_high - at_low) * (rank - low)


def counter(
    conn: sqlite3.Connection, name: str, since: float, agent_ids: Collection[str] | None, how: str
) -> Summary:
    """Each agent's growth of ``name`` since ``since`` (resets handled), then ``how`` across agents."""
    if agent_ids is not None and not agent_ids:
        return EMPTY
    where, params = _where(conn, name, since, agent_ids)
    rows = conn.execute(
        f"""SELECT SUM(CASE WHEN previous IS NULL THEN 0.0 WHEN value >= previous THEN value - previous
                            ELSE value END), MIN(at)
            FROM (SELECT agent_id, at, value,
                         LAG(value) OVER (PARTITION BY agent_id ORDER BY at, id) AS previous
                  FROM {where})
            GROUP BY agent_id ORDER BY agent_id""",
        params,
    ).fetchall()
    if not rows:
        return EMPTY
    value = aggregate([float(r[0]) for r in rows], how)
    return Summary(value=value, agents=len(rows), oldest=min(float(r[1]) for r in rows))
