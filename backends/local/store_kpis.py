"""KPIs as SQL over one open transaction: each agent's latest figure per KPI, the points behind trends and
windows, and their retention (the Store supplies the connection, the clock and the transaction).

Figures are validated through the wire model (:class:`backends.model.Kpi`) before the transaction starts, so
the write lock is held only for the upserts and inserts. A counter's rate is derived here, from the stored
latest point and the new one, reading a drop as a reset (``backends.kpis.counter_rate``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping

import msgspec

from backends.errors import Invalid
from backends.kpis import counter_rate, infer_kind, infer_unit
from backends.model import Kpi, KpiSeries, ModelError, from_builtins, valid_kpi_name

#: what a reporter hands over: {name: value} or {name: (value, unit)}, or Kpi values already made
KpiInput = Mapping[str, float | tuple[float, str]] | Iterable[Kpi]
#: (agent_id, name) -> [(at, value), ...] oldest first
Window = dict[tuple[str, str], list[tuple[float, float]]]

_SHOWN_NAME = 40  # a 4 KB name in an error message would bury the message


def shown_name(name: object) -> str:
    """A KPI's name for an error message: quoted, escaped, cut short when long."""
    text = str(name)
    return repr(text if len(text) <= _SHOWN_NAME else text[:_SHOWN_NAME] + "...")


def prepare(kpis: KpiInput, now: float, *, at: float | None, kinds: Mapping[str, str] | None) -> list[Kpi]:
    """Validate figures into Kpi values (Invalid naming the KPI and the field); unit and kind are inferred
    from the name where not given. Runs outside the transaction."""
    when = now if at is None else at
    made: list[Kpi] = []
    if isinstance(kpis, Mapping):
        for name, given in kpis.items():
            value, unit = given if isinstance(given, tuple) else (given, None)
            kind = (kinds or {}).get(name) if isinstance(name, str) else None
            made.append(_validated(name, value, unit, when, kind))
    else:
        for kpi in kpis:
            if not isinstance(kpi, Kpi):
                raise Invalid(f"a KPI must be a Kpi or a name=value pair, got {type(kpi).__name__}")
            made.append(_validated(kpi.name, kpi.value, kpi.unit, kpi.at, kpi.kind))
    return made


def _validated(name: object, value: object, unit: str | None, at: float, kind: str | None) -> Kpi:
    if not isinstance(name, str):
        raise Invalid(f"a KPI's name must be a string, got {type(name).__name__}")
    if not valid_kpi_name(name):  # the wire checks only a name's length (backends.model.WireKpiName)
        raise Invalid(
            f"KPI {shown_name(name)}: a name is 1-64 of a-z, 0-9 and _, starting with a letter "
            "(e.g. latency_p95_ms) - at `$.name`"
        )
    if isinstance(value, bool):  # True is an int to Python, and a figure to nobody
        raise Invalid(f"KPI {shown_name(name)}: value must be a number, got {value!r}")
    data = {
        "name": name,
        "value": value,
        "unit": infer_unit(name) if unit is None else unit,
        "at": at,
        "kind": infer_kind(name) if kind is None else kind,
    }
    try:
        return from_builtins(data, Kpi)
    except ModelError as exc:
        # "invalid Kpi: Expected `str` of length <= 64 - at `$.name`" -> the KPI, then what is wrong
        problem = str(exc).removeprefix("invalid Kpi: ")
        raise Invalid(f"KPI {shown_name(name)}: {problem}") from None


def record(conn: sqlite3.Connection, agent_id: str, kpis: list[Kpi]) -> list[Kpi]:
    """Store ``kpis`` (prepared) for an existing agent: a point each, and each KPI's latest figure with a
    counter's rate; returns them as stored (rates filled in). The caller checks that the agent exists.

    A point older than the stored latest (a late, reordered report) joins the history but does not replace
    the latest figure."""
    if not kpis:
        return []
    previous: dict[str, tuple[float, float, str]] = {
        str(name): (float(at), float(value), str(unit))
        for name, at, value, unit in conn.execute(
            "SELECT name, at, value, unit FROM kpi_latest WHERE agent_id = ?", (agent_id,)
        )
    }
    stored: list[Kpi] = []
    latest_rows: list[tuple[object, ...]] = []
    for kpi in kpis:
        rate = None
        before = previous.get(kpi.name)
        if before is not None and kpi.at < before[0]:
            stored.append(kpi)
            continue
        if kpi.kind == "counter" and before is not None and before[2] == kpi.unit:
            rate = counter_rate([(before[0], before[1]), (kpi.at, kpi.value)])
        if rate is not None:
            kpi = msgspec.structs.replace(kpi, rate_per_s=rate)
        previous[kpi.name] = (kpi.at, kpi.value, kpi.unit)
        stored.append(kpi)
        latest_rows.append((agent_id, kpi.name, kpi.unit, kpi.kind, kpi.value, kpi.at, kpi.rate_per_s))
    conn.executemany(
        "INSERT INTO kpi_points (agent_id, name, at, value) VALUES (?, ?, ?, ?)",
        [(agent_id, kpi.name, kpi.at, kpi.value) for kpi in kpis],
    )
    conn.executemany(
        """INSERT INTO kpi_latest (agent_id, name, unit, kind, value, at, rate_per_s)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (agent_id, name) DO UPDATE SET unit = excluded.unit, kind = excluded.kind,
               value = excluded.value, at = excluded.at, rate_per_s = excluded.rate_per_s""",
        latest_rows,
    )
    return stored


_LATEST_SELECT = "SELECT agent_id, name, unit, kind, value, at, rate_per_s FROM kpi_latest"


def latest(conn: sqlite3.Connection, agent_id: str | None = None) -> dict[str, tuple[Kpi, ...]]:
    """Every agent's latest figures (or only ``agent_id``'s), by agent id, each agent's sorted by name:
    one query for the whole node.

    The primary key (agent_id, name) of the WITHOUT ROWID table is the order asked for, so SQLite reads
    the table front to back with no sort."""
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: the connection's sqlite3.Row costs a lookup per column
    if agent_id is None:
        cursor.execute(f"{_LATEST_SELECT} ORDER BY agent_id, name")
    else:
        cursor.execute(f"{_LATEST_SELECT} WHERE agent_id = ? ORDER BY name", (agent_id,))
    by_agent: dict[str, list[Kpi]] = {}
    for agent_id, name, unit, kind, value, at, rate in cursor:
        figures = by_agent.get(agent_id)
        if figures is None:
            figures = by_agent[agent_id] = []
        figures.append(Kpi(name=name, value=value, unit=unit, at=at, kind=kind, rate_per_s=rate))
    return {agent_id: tuple(figures) for agent_id, figures in by_agent.items()}


class LatestCache:
    """:func:`latest` for every snapshot, reading only what changed since the last one.

    Every change to a latest figure comes with a new point (:func:`record`), and point ids only grow, so
    the newest point id says whether anything changed and which (agent, KPI) pairs to read again; the
    number of latest rows says whether retention dropped any (then all is read again). At 5,000 agents x
    5 KPIs a full read costs tens of milliseconds; a snapshot with nothing new costs two index lookups.
    Use under the Store's lock (a Database read), which keeps one thread in it at a time."""

    def __init__(self) -> None:
        self._seen: tuple[int, int] | None = None  # (newest point id, latest rows) when last read
        self._by_agent: dict[str, dict[str, Kpi]] = {}
        self._tuples: dict[str, tuple[Kpi, ...]] = {}

    def read(self, conn: sqlite3.Connection) -> dict[str, tuple[Kpi, ...]]:
        newest = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM kpi_points").fetchone()[0])
        rows = int(conn.execute("SELECT COUNT(*) FROM kpi_latest").fetchone()[0])
        seen = self._seen
        if seen is not None and (newest, rows) == seen:
            return self._tuples
        if seen is None or newest < seen[0] or rows < seen[1] or 4 * (newest - seen[0]) > rows:
            self._tuples = latest(conn)
            self._by_agent = {agent: {k.name: k for k in kpis} for agent, kpis in self._tuples.items()}
        else:
            self._merge(conn, seen[0])
        self._seen = (newest, rows)
        return self._tuples

    def _merge(self, conn: sqlite3.Connection, after_id: int) -> None:
        cursor = conn.cursor()
        cursor.row_factory = None
        # NOT INDEXED: the new points are a range of ids at the end of the table, and left to itself the
        # planner scans the whole covering index kpi_points_series to find them (2,000,000 rows at worst).
        cursor.execute(
            f"{_LATEST_SELECT} WHERE (agent_id, name) IN"
            " (SELECT agent_id, name FROM kpi_points NOT INDEXED WHERE id > ?)",
            (after_id,),
        )
        changed: set[str] = set()
        for agent_id, name, unit, kind, value, at, rate in cursor:
            figures = self._by_agent.setdefault(agent_id, {})
            figures[name] = Kpi(name=name, value=value, unit=unit, at=at, kind=kind, rate_per_s=rate)
            changed.add(agent_id)
        if changed:
            tuples = dict(self._tuples)
            for agent_id in changed:
                figures = self._by_agent[agent_id]
                tuples[agent_id] = tuple(figures[name] for name in sorted(figures))
            self._tuples = tuples


def window(
    conn: sqlite3.Connection,
    names: Collection[str] | None,
    since: float,
    agent_ids: Collection[str] | None = None,
) -> Window:
    """The points of ``names`` (None: every KPI) measured at or after ``since``, of ``agent_ids`` (None:
    every agent), keyed (agent_id, name), oldest first. A pure function of ``conn``: callers judging over a
    window run it inside their own read transaction."""
    if names is not None and not names:
        return {}
    if agent_ids is not None and not agent_ids:
        return {}
    clauses = ["at >= ?"]
    params: list[object] = [since]
    # One JSON parameter per list instead of one placeholder per item: no limit on how many are asked for.
    if names is not None:
        clauses.append("name IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(names))))
    if agent_ids is not None:
        clauses.append("agent_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(set(agent_ids))))
    cursor = conn.cursor()
    cursor.row_factory = None
    cursor.execute(
        f"SELECT agent_id, name, at, value FROM kpi_points WHERE {' AND '.join(clauses)}"
        " ORDER BY name, agent_id, at, id",
        params,
    )
    points: Window = {}
    for agent_id, name, at, value in cursor:
        key = (agent_id, name)
        series = points.get(key)
        if series is None:
            series = points[key] = []
        series.append((at, value))
    return points


def history(
    conn: sqlite3.Connection,
    since: float,
    names: Collection[str] | None = None,
    agent_ids: Collection[str] | None = None,
) -> list[KpiSeries]:
    """:func:`window` as KpiSeries, with each KPI's unit and kind as last reported (inferred from the name
    for an agent whose latest figure retention has dropped), ordered by agent then name."""
    points = window(conn, names, since, agent_ids)
    if not points:
        return []
    described = {
        (str(agent_id), str(name)): (str(unit), str(kind))
        for agent_id, name, unit, kind in conn.execute("SELECT agent_id, name, unit, kind FROM kpi_latest")
    }
    series = []
    for (agent_id, name), values in sorted(points.items()):
        unit, kind = described.get((agent_id, name), (infer_unit(name), infer_kind(name)))
        series.append(
            KpiSeries(agent_id=agent_id, name=name, unit=unit, kind=kind, points=tuple(values))  # type: ignore[arg-type]
        )
    return series


def prune(conn: sqlite3.Connection, now: float, max_points: int, max_age_s: float) -> int:
    """Delete points older than ``max_age_s`` and keep at most the newest ``max_points``; count deleted.

    Ids only grow (the newest point has the highest) and only retention deletes, oldest first, so the count
    cut is an id bound. Latest figures stay, so an agent that went quiet still shows what it said last; only
    those of agents no longer on the node go with age."""
    cutoff = now - max_age_s
    deleted = conn.execute("DELETE FROM kpi_points WHERE at < ?", (cutoff,)).rowcount
    newest = conn.execute("SELECT MAX(id) FROM kpi_points").fetchone()[0]
    if newest is not None and newest > max_points:
        cut = newest - max(0, max_points)
        deleted += conn.execute("DELETE FROM kpi_points WHERE id <= ?", (cut,)).rowcount
    conn.execute(
        "DELETE FROM kpi_latest WHERE at < ? AND agent_id NOT IN (SELECT id FROM agents)",
        (cutoff,),
    )
    return int(deleted)


def count_points(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM kpi_points").fetchone()[0])
