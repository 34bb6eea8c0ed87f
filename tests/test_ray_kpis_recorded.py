"""Each Ray actor's call counts as KPIs, on task lists recorded from a real Ray 2.60 head (tests/data/ray/):

tasks_counter        two actors: counter-a finished 5 calls and failed 3; counter-one the same, plus one
                     call running and one queued behind it
tasks_counter_later  the same head after counter-a finished 5 more calls
tasks_truncated      a head whose data source hands over 5 records (RAY_MAX_LIMIT_FROM_DATA_SOURCE=5)
tasks_limited        the tasks_counter_later head asked for 4 rows (``limit=4``)

The backend tests serve them with a real uvicorn (tests/ray_dashboard.py); the live head is in tests/ray/.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from starlette.responses import PlainTextResponse

from backends.model import Agent, Kpi, NodeSnapshot, from_json, to_json
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.actors import agents_from
from backends.ray.settings import RayOptions
from backends.ray.task_figures import TaskFigures, tally
from tests.ray_dashboard import Dashboard, recorded
from tests.serving import serve_asgi

COUNTER_A = "775dca7c23454cb656e4a77401000000"
COUNTER_ONE = "4b5d78bd8a683967747bd70202000000"
BOTH = (COUNTER_A, COUNTER_ONE)


def figures(kpis: tuple[Kpi, ...]) -> dict[str, float]:
    return {k.name: k.value for k in kpis}


def test_each_actor_counts_its_calls_by_state() -> None:
    counted = tally(recorded("tasks_counter"))
    assert counted.incomplete is None
    assert counted.counts[COUNTER_A] == {
        "tasks_finished_total": 5,
        "tasks_failed_total": 3,
        "tasks_running": 0,
        "tasks_queued": 0,
    }
    assert counted.counts[COUNTER_ONE] == {
        "tasks_finished_total": 5,
        "tasks_failed_total": 3,
        "tasks_running": 1,
        "tasks_queued": 1,  # Ray says SUBMITTED_TO_WORKER: the actor is busy with the running one
    }


def test_a_retried_call_counts_once_by_its_latest_attempt() -> None:
    payload = recorded("tasks_counter")
    rows = payload["data"]["result"]["result"]
    failed = next(r for r in rows if r["actor_id"] == COUNTER_A and r["state"] == "FAILED")
    retried = copy.deepcopy(failed) | {"attempt_number": 1, "state": "FINISHED", "error_type": None}
    rows.append(retried)
    payload["data"]["result"].update(total=21, num_after_truncation=21, num_filtered=19)
    counts = tally(payload).counts[COUNTER_A]
    assert (counts["tasks_finished_total"], counts["tasks_failed_total"]) == (6, 2)


def test_a_list_ray_cut_short_gives_no_figure_and_says_why() -> None:
    truncated = tally(recorded("tasks_truncated"))
    assert truncated.counts == {}
    assert truncated.incomplete == (
        "not shown: Ray handed over 5 of its 11 task records (it keeps a bounded number),"
        " so any count would be short"
    )
    limited = tally(recorded("tasks_limited"))
    assert limited.counts == {}
    assert limited.incomplete == "not shown: the cluster has 23 actor calls on record, more than the 4 listed"


def test_a_refusal_or_a_stranger_answer_gives_no_figure() -> None:
    # what Ray 2.60 answers a filter it does not know, with a control character slipped in
    refusal = {"result": False, "msg": "The given filter column typo is not supported.\x1b[2J", "data": {}}
    said = tally(refusal).incomplete
    assert said is not None and said.startswith("not shown: the dashboard refused the task list (The given")
    assert "\x1b" not in said
    assert tally({"data": {"result": None}}).incomplete == (
        "not shown: the dashboard's task list was not understood"
    )


def test_counters_get_a_rate_across_fetches_and_gauges_none() -> None:
    kept = TaskFigures(every_s=10)
    kept.update(recorded("tasks_counter"), BOTH, at=100.0)
    first = kept.kpis_of()[COUNTER_A]
    assert all(k.rate_per_s is None for k in first)  # one point: no rate yet
    assert {k.name: (k.kind, k.unit, k.at) for k in first} == {
        "tasks_finished_total": ("counter", "count", 100.0),
        "tasks_failed_total": ("counter", "count", 100.0),
        "tasks_running": ("gauge", "count", 100.0),
        "tasks_queued": ("gauge", "count", 100.0),
    }
    kept.update(recorded("tasks_counter_later"), BOTH, at=110.0)
    later = {k.name: k for k in kept.kpis_of()[COUNTER_A]}
    assert later["tasks_finished_total"].value == 10 and later["tasks_finished_total"].rate_per_s == 0.5
    assert later["tasks_failed_total"].rate_per_s == 0.0 and later["tasks_running"].rate_per_s is None
    assert kept.kpis_of()[COUNTER_ONE][0].rate_per_s == 0.0


def test_an_actor_without_calls_has_zeros_and_one_gone_takes_its_points() -> None:
    kept = TaskFigures(every_s=10)
    kept.update(recorded("tasks_counter"), (*BOTH, "aaaa"), at=100.0)
    assert set(figures(kept.kpis_of()["aaaa"]).values()) == {0}
    kept.update(recorded("tasks_counter_later"), (COUNTER_ONE,), at=110.0)
    kept.update(recorded("tasks_counter_later"), BOTH, at=120.0)
    # counter-a left the list at 110: its rate starts again from the point at 120
    assert kept.kpis_of()[COUNTER_A][0].rate_per_s is None
    assert kept.kpis_of()[COUNTER_ONE][0].rate_per_s == 0.0


def test_a_failed_fetch_leaves_no_figure_and_the_rate_spans_the_gap() -> None:
    kept = TaskFigures(every_s=10)
    kept.update(recorded("tasks_counter"), BOTH, at=100.0)
    kept.failed("cannot reach Ray cluster c: connection refused", at=110.0)
    assert kept.kpis_of() == {}
    assert (
        kept.note == "not shown: the task list did not come (cannot reach Ray cluster c: connection refused)"
    )
    kept.update(recorded("tasks_counter_later"), BOTH, at=120.0)
    assert kept.note is None
    assert kept.kpis_of()[COUNTER_A][0].rate_per_s == 0.25  # 5 more calls over the 20 s since 100


def test_a_truncated_list_drops_the_figures_it_had() -> None:
    kept = TaskFigures(every_s=10)
    kept.update(recorded("tasks_counter"), BOTH, at=100.0)
    kept.update(recorded("tasks_limited"), BOTH, at=110.0)
    assert kept.kpis_of() == {} and kept.note is not None and "more than the 4 listed" in kept.note


def test_the_list_is_fetched_every_task_figures_s_and_never_at_0() -> None:
    kept = TaskFigures(every_s=10)
    assert kept.due(100.0)
    kept.update(recorded("tasks_counter"), BOTH, at=100.0)
    assert not kept.due(109.9) and kept.due(110.0)
    kept.failed("timed out", at=110.0)
    assert not kept.due(115.0)  # a failing dashboard is not asked again at once
    assert not TaskFigures(every_s=0).due(0.0)


def test_actors_carry_their_figures() -> None:
    kept = TaskFigures(every_s=10)
    kept.update(recorded("tasks_counter"), BOTH, at=100.0)
    actors = recorded("actors_counter")["data"]["result"]["result"]
    agents = agents_from(
        actors, ip_of_node={}, phase_of_job={}, gpu_bytes_of_pid={}, kpis_of_actor=kept.kpis_of()
    )
    by_name = {a.name: a for a in agents}
    assert figures(by_name["counter-one"].kpis) == {
        "tasks_finished_total": 5,
        "tasks_failed_total": 3,
        "tasks_running": 1,
        "tasks_queued": 1,
    }
    assert by_name["counter-a"].kpi("tasks_queued") is not None
    assert agents_from(actors, ip_of_node={}, phase_of_job={}, gpu_bytes_of_pid={})[0].kpis == ()


# --- through the backend, served by a real uvicorn --------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(url: str, tmp_path: Path, clock: Clock, **options: Any) -> RayBackend:
    entry = RayOptions(url=url, options={"state_dir": str(tmp_path / "ray"), **options})
    return RayBackend.from_config(NodeSettings(name="cluster", backend_options=entry), clock=clock)


def counter_dashboard() -> Dashboard:
    dashboard = Dashboard()
    dashboard.routes["/api/v0/actors"] = recorded("actors_counter")
    dashboard.routes["/api/v0/tasks"] = recorded("tasks_counter")
    return dashboard


def agent(snap: NodeSnapshot, name: str) -> Agent:
    return next(a for a in snap.agents if a.name == name)


async def test_a_snapshot_asks_for_the_task_list_once_per_task_figures_s(tmp_path: Path) -> None:
    dashboard, clock = counter_dashboard(), Clock(1_800_000_000.0)
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path, clock) as backend:
            first = await backend.snapshot()
            clock.now += 5
            dashboard.routes["/api/v0/tasks"] = recorded("tasks_counter_later")
            reused = await backend.snapshot()
            clock.now += 5
            fresh = await backend.snapshot()
    assert dashboard.requests.count("GET /api/v0/tasks") == 2
    assert from_json(to_json(fresh), NodeSnapshot) == fresh  # the wire model round-trips the KPIs
    assert agent(first, "counter-a").kpis == agent(reused, "counter-a").kpis  # measured at the first
    finished = agent(fresh, "counter-a").kpi("tasks_finished_total")
    assert finished is not None and finished.value == 10 and finished.rate_per_s == 0.5
    assert finished.at == 1_800_000_010.0
    assert "task figures" not in fresh.node.labels


async def test_a_failing_task_list_fails_no_snapshot(tmp_path: Path) -> None:
    dashboard, clock = counter_dashboard(), Clock(1_800_000_000.0)
    dashboard.routes["/api/v0/tasks"] = PlainTextResponse("GCS is down", status_code=500)
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path, clock) as backend:
            broken = await backend.snapshot()
            clock.now += 10
            dashboard.routes["/api/v0/tasks"] = recorded("tasks_counter")
            mended = await backend.snapshot()
    assert {a.name for a in broken.agents} == {"counter-a", "counter-one"}
    assert all(a.kpis == () for a in broken.agents)
    note = broken.node.labels["task figures"]
    assert note.startswith("not shown: the task list did not come (") and "GCS is down" in note
    assert figures(agent(mended, "counter-one").kpis)["tasks_running"] == 1
    assert "task figures" not in mended.node.labels


async def test_task_figures_s_0_never_asks(tmp_path: Path) -> None:
    dashboard = counter_dashboard()
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path, Clock(1_800_000_000.0), task_figures_s=0) as backend:
            snap = await backend.snapshot()
    assert "GET /api/v0/tasks" not in dashboard.requests and all(a.kpis == () for a in snap.agents)


def test_a_bad_task_figures_s_names_the_key(tmp_path: Path) -> None:
    import pytest

    from backends.errors import Invalid

    for bad in (-1, "10", True, 3601):
        with pytest.raises(
            Invalid, match=r"node cluster: option 'task_figures_s' must be a number of seconds"
        ):
            make("http://127.0.0.1:8265", tmp_path, Clock(0.0), task_figures_s=bad)
