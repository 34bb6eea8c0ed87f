"""What each actor has done, as KPIs, from the dashboard's task list (``/api/v0/tasks``).

Ray's dashboard counts an actor's method calls and nothing else about its work (no latency, no success
ratio of its own), so these are the figures it has, per actor:

  tasks_finished_total   counter  calls that returned
  tasks_failed_total     counter  calls that raised, or died with their actor
  tasks_running          gauge    calls executing now (also while blocked in ``ray.get``/``ray.wait``)
  tasks_queued           gauge    calls submitted and not started yet (an actor runs one at a time
                                  unless told otherwise, so this is its backlog)

Each call is counted once, by its latest attempt (a retried call that then returned is one finished call,
not a failure too). The actor's own creation (``ACTOR_CREATION_TASK``) is its start, not a call, and is
left out by asking only for ``type=ACTOR_TASK``.

Ray's task list is bounded: its data source hands the dashboard at most 10,000 task records (all kinds,
before the type filter) and forgets records when its store is full or a worker's buffer overflows; the
answer says so (``total`` over ``num_after_truncation``), and the dashboard answers at most ``limit`` rows
(``num_filtered`` over the rows given). Then no figure is given at all — a count known to be short is a
wrong count, and a wrong counter would read as a reset — and the node says why in its ``task figures``
label.

Cost: the list is one request, made at most every ``task_figures_s`` seconds (10 by default) alongside a
snapshot and reused by the snapshots between, each figure keeping the time it was measured. A failed request
fails no snapshot: the figures are absent until the next fetch, and the label says why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backends.kpis import counter_rate, infer_kind
from backends.model import Kpi
from backends.safe_text import terminal_safe

TASKS_PATH = "/api/v0/tasks"
TASK_LIMIT = 10_000  # the most rows the dashboard answers (RAY_MAX_LIMIT_FROM_API_SERVER)
TASK_PARAMS: dict[str, Any] = {
    "detail": "0",  # the short record has the actor, the state and the attempt: all that is counted
    "limit": TASK_LIMIT,
    "filter_keys": "type",
    "filter_predicates": "=",
    "filter_values": "ACTOR_TASK",
}
FINISHED, FAILED, RUNNING, QUEUED = (
    "tasks_finished_total",
    "tasks_failed_total",
    "tasks_running",
    "tasks_queued",
)
NAMES = (FINISHED, FAILED, RUNNING, QUEUED)
_RUNNING_STATES = frozenset({"RUNNING", "RUNNING_IN_RAY_GET", "RUNNING_IN_RAY_WAIT"})
# every state Ray gives a call before it runs (NIL, "no state yet", is not counted anywhere)
_QUEUED_STATES = frozenset(
    {
        "PENDING_ARGS_AVAIL",
        "PENDING_NODE_ASSIGNMENT",
        "PENDING_OBJ_STORE_MEM_AVAIL",
        "PENDING_ARGS_FETCH",
        "SUBMITTED_TO_WORKER",
        "PENDING_ACTOR_TASK_ARGS_FETCH",
        "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY",
    }
)
MESSAGE_CHARS = 200
RATE_POINTS = 6  # a counter's rate is taken over its last few fetches (a minute at the default pace)


@dataclass(frozen=True)
class Tally:
    """One task list counted: per actor id, {figure name: value}; or why it cannot be counted."""

    counts: dict[str, dict[str, int]]
    incomplete: str | None = None  # in words; when set, ``counts`` is empty


def tally(payload: Any) -> Tally:
    """``/api/v0/tasks`` (``type=ACTOR_TASK``) → each actor's counts, or why they would be wrong."""
    if isinstance(payload, dict) and payload.get("result") is False:  # the state API's own refusal
        said = terminal_safe(" ".join(str(payload.get("msg") or "no reason given").split()))[:MESSAGE_CHARS]
        return Tally({}, f"not shown: the dashboard refused the task list ({said})")
    try:
        answer = payload["data"]["result"]
        rows = answer["result"]
        total, kept = int(answer["total"]), int(answer["num_after_truncation"])
        matched = int(answer["num_filtered"])
    except (KeyError, TypeError, ValueError):
        return Tally({}, "not shown: the dashboard's task list was not understood")
    if not isinstance(rows, list):
        return Tally({}, "not shown: the dashboard's task list was not understood")
    if total > kept:
        return Tally(
            {},
            f"not shown: Ray handed over {kept} of its {total} task records (it keeps a bounded number),"
            " so any count would be short",
        )
    if matched > len(rows):
        return Tally(
            {},
            f"not shown: the cluster has {matched} actor calls on record, more than the {len(rows)} listed",
        )
    latest: dict[str, tuple[int, str, str]] = {}  # task id -> (attempt, actor id, state)
    for row in rows:
        if not isinstance(row, dict) or not row.get("actor_id") or not row.get("task_id"):
            continue
        attempt = row.get("attempt_number")
        attempt = attempt if isinstance(attempt, int) else 0
        task_id = str(row["task_id"])
        if task_id not in latest or attempt >= latest[task_id][0]:
            latest[task_id] = (attempt, str(row["actor_id"]), str(row.get("state") or ""))
    counts: dict[str, dict[str, int]] = {}
    for _, actor_id, state in latest.values():
        figures = counts.setdefault(actor_id, dict.fromkeys(NAMES, 0))
        name = _figure_of(state)
        if name:
            figures[name] += 1
    return Tally(counts)


def _figure_of(state: str) -> str | None:
    if state == "FINISHED":
        return FINISHED
    if state == "FAILED":
        return FAILED
    if state in _RUNNING_STATES:
        return RUNNING
    if state in _QUEUED_STATES:
        return QUEUED
    return None


class TaskFigures:
    """The latest figures of every actor, when they were fetched, and each counter's recent points."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s  # 0: never fetched
        self.note: str | None = None  # why no figures are shown, for the node's labels
        self._fetched_at: float | None = None
        self._kpis: dict[str, tuple[Kpi, ...]] = {}
        self._points: dict[tuple[str, str], deque[tuple[float, float]]] = {}

    def due(self, now: float) -> bool:
        if self.every_s <= 0:
            return False
        return self._fetched_at is None or now - self._fetched_at >= self.every_s

    def failed(self, reason: str, at: float) -> None:
        """The request did not answer: no figures until the next fetch (the counters' points are kept,
        so the rate after the gap is still measured over real time)."""
        self._fetched_at = at
        self._kpis = {}
        self.note = f"not shown: the task list did not come ({reason})"

    def update(self, payload: Any, actor_ids: Iterable[str], at: float) -> None:
        """Count ``payload`` for the actors listed in the same snapshot (an actor with no calls yet has
        zeros); ``at`` is when it was fetched, which every figure keeps while it is reused."""
        self._fetched_at = at
        counted = tally(payload)
        self.note = counted.incomplete
        if counted.incomplete:
            self._kpis = {}
            return
        kpis: dict[str, tuple[Kpi, ...]] = {}
        points: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        for actor_id in actor_ids:
            figures = counted.counts.get(actor_id) or dict.fromkeys(NAMES, 0)
            made = []
            for name in NAMES:
                value = figures[name]
                kind = infer_kind(name)
                rate = None
                if kind == "counter":
                    series = self._points.get((actor_id, name)) or deque(maxlen=RATE_POINTS)
                    series.append((at, float(value)))
                    points[(actor_id, name)] = series
                    rate = counter_rate(list(series))
                made.append(Kpi(name=name, value=value, unit="count", at=at, kind=kind, rate_per_s=rate))
            kpis[actor_id] = tuple(made)
        self._kpis = kpis
        self._points = points  # actors gone from the list take their points with them

    def kpis_of(self) -> dict[str, tuple[Kpi, ...]]:
        return self._kpis
