"""``GET /v1/kpis``: the KPI history the backend keeps, filtered by the query and bounded in size.

    GET /v1/kpis?since=1764676800&name=latency_p95_ms&name=success_ratio&agent=retriever-01

``since`` (UTC epoch seconds, default 0: all the node keeps), ``name`` and ``agent`` (repeatable; none:
all). Each is checked as the wire model would check it, so a typo is a 422 naming the parameter rather
than an empty answer. An answer holds at most ``MAX_KPI_POINTS`` points: past that the oldest are left
out, exactly as if ``since`` had been later, and two headers say from when the answer is complete and how
many points it left out. (A bound by refusal would leave a report card over a big fleet with nothing; the
newest figures are the ones a trend needs, and the backend contract already says old points may be absent.)
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from backends.model import KpiSeries, to_json
from backends.node_api import KPI_COMPLETE_SINCE_HEADER, KPI_LEFT_OUT_HEADER, MAX_KPI_POINTS

from .problems import fail
from .service import json_response, service

QUERY = ("since", "name", "agent")
_KPI_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # backends.model.KpiName
_SINCE = re.compile(r"[0-9]{1,15}(\.[0-9]{1,9})?")
MAX_AGENT_ID = 200  # backends.model.Identifier


async def kpis(request: Request) -> Response:
    since, names, agent_ids = kpi_query(request)
    found = await service(request).backend.kpi_history(since, names=names, agent_ids=agent_ids)
    series, complete_since, left_out = bounded(found, MAX_KPI_POINTS)
    headers = None
    if left_out:
        headers = {KPI_COMPLETE_SINCE_HEADER: repr(complete_since), KPI_LEFT_OUT_HEADER: str(left_out)}
    return json_response(to_json(series), headers=headers)


def kpi_query(request: Request) -> tuple[float, list[str] | None, list[str] | None]:
    params = request.query_params
    since = parse_since(params.get("since", "0"))
    names = params.getlist("name")
    for name in names:
        if not _KPI_NAME.fullmatch(name):
            detail = (
                f"name must be a KPI name (a lowercase letter, then letters, digits and '_', at most 64), "
                f"not {name[:40]!r}"
            )
            raise fail(422, "invalid", detail, field="name")
    agents = params.getlist("agent")
    for agent in agents:
        if not 1 <= len(agent) <= MAX_AGENT_ID:
            detail = f"agent must be an agent id of 1 to {MAX_AGENT_ID} characters, not {agent[:40]!r}"
            raise fail(422, "invalid", detail, field="agent")
    return since, names or None, agents or None


def parse_since(text: str) -> float:
    """Epoch seconds in plain decimal (``float()`` would also take "nan", "inf", "1e9" and " 5")."""
    if not _SINCE.fullmatch(text):
        detail = f"since must be UTC epoch seconds (digits, maybe a decimal point), not {text[:40]!r}"
        raise fail(422, "invalid", detail, field="since")
    value = float(text)
    assert math.isfinite(value)
    return value


def bounded(found: Sequence[KpiSeries], limit: int) -> tuple[list[KpiSeries], float | None, int]:
    """``found`` with at most ``limit`` points: those measured after the newest left out. Returns the
    series that keep a point, the oldest time kept (every matching point at or after it is kept; None when
    nothing was left out) and how many points were left out."""
    total = sum(len(s.points) for s in found)
    if total <= limit:
        return list(found), None, 0
    # the (limit + 1)-th newest time: everything at it or before goes, so ties never push past the bound
    newest = heapq.nlargest(limit + 1, (at for s in found for at, _ in s.points))
    cut = newest[-1]
    kept: list[KpiSeries] = []
    for s in found:
        points = tuple(p for p in s.points if p[0] > cut)
        if points:
            kept.append(s if len(points) == len(s.points) else msgspec.structs.replace(s, points=points))
    count = sum(len(s.points) for s in kept)
    oldest = min((at for s in kept for at, _ in s.points), default=cut)
    return kept, oldest, total - count
