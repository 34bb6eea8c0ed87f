"""An actor's call counts on a real Ray head are what Ray says its calls did (kpi_job.py: 5 return, 3 raise,
one runs for ever with one queued behind it), checked against Ray's own task list asked per actor, and its
history stays with the actor once its job is stopped."""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import httpx
import pytest

from backends.model import Agent, DispatchRequest, Target
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.settings import RayOptions

from .conftest import RayHead
from .test_live_cluster import until

KPI_JOB = Path(__file__).parent / "kpi_job.py"


def make(head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RayBackend:
    monkeypatch.setenv("FD_RAY_TOKEN", head.token)
    # counted at every snapshot the test polls, not every 10 s
    options = {"state_dir": str(tmp_path / "ray"), "task_figures_s": 0.1}
    entry = RayOptions(url=head.url, token_env="FD_RAY_TOKEN", options=options)
    return RayBackend.from_config(NodeSettings(name="cluster", backend_options=entry), clock=time.time)


def ray_states(head: RayHead, actor_id: str) -> collections.Counter[str]:
    """Ray's own account of one actor's calls: its task list filtered by actor on Ray's side."""
    answer = httpx.get(
        f"{head.url}/api/v0/tasks",
        params={
            "detail": "1",
            "filter_keys": "actor_id",
            "filter_predicates": "=",
            "filter_values": actor_id,
        },
        headers={"Authorization": f"Bearer {head.token}"},
        timeout=30,
    )
    answer.raise_for_status()
    rows = answer.json()["data"]["result"]["result"]
    return collections.Counter(r["state"] for r in rows if r["type"] == "ACTOR_TASK")


def figures(agent: Agent) -> dict[str, float]:
    return {k.name: k.value for k in agent.kpis}


async def test_an_actors_call_counts_are_what_ray_says_its_calls_did(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"counter-{tmp_path.name[-12:].replace('_', '-')}"
    async with make(ray_head, tmp_path, monkeypatch) as backend:
        job = await backend.dispatch(
            DispatchRequest(
                command=(sys.executable, str(KPI_JOB), name.removeprefix("counter-")), name="kpis"
            ),
            operator="alice",
        )

        async def counted() -> Agent | None:
            snap = await backend.snapshot()
            agent = next((a for a in snap.agents if a.name == name), None)
            wanted = {
                "tasks_finished_total": 5,
                "tasks_failed_total": 3,
                "tasks_running": 1,
                "tasks_queued": 1,
            }
            return agent if agent is not None and figures(agent) == wanted else None

        try:
            agent = await until(counted, "5 calls finished, 3 failed, 1 running and 1 queued")
            truth = ray_states(ray_head, agent.id)
            assert truth["FINISHED"] == 5 and truth["FAILED"] == 3 and truth["RUNNING"] == 1
            assert sum(truth.values()) == 10  # the 10th is waiting, in one of Ray's pending states
            finished = agent.kpi("tasks_finished_total")
            assert finished is not None and finished.kind == "counter" and finished.unit == "count"

            async def still() -> float | None:
                kpi = next(a for a in (await backend.snapshot()).agents if a.id == agent.id).kpi(
                    "tasks_finished_total"
                )
                return kpi.rate_per_s if kpi is not None and kpi.rate_per_s == 0.0 else None

            # the rate is over the last few counts: once those are all 5, no call is finishing
            assert await until(still, "the counter's rate falls to 0 when no call finishes") == 0.0
        finally:
            await backend.stop(Target(kind="task", id=job.id), operator="alice", reason="test done")

        async def ended() -> Agent | None:
            snap = await backend.snapshot()
            agent = next((a for a in snap.agents if a.name == name), None)
            return (
                agent
                if agent is not None
                and agent.dead
                and not figures(agent)["tasks_running"] + figures(agent)["tasks_queued"]
                else None
            )

        # its job stopped, the actor is history: the two slow calls died with it, and its counts stay
        dead = await until(ended, "the actor dies with its job and its calls end")
        assert figures(dead) == {
            "tasks_finished_total": 5,
            "tasks_failed_total": 5,
            "tasks_running": 0,
            "tasks_queued": 0,
        }
        assert "task figures" not in (await backend.snapshot()).node.labels
