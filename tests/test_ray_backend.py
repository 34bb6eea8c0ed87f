"""The ray backend on responses recorded from a real Ray 2.60 dashboard (and hand-edited variants), served
by a real uvicorn. The live-cluster tests are in tests/ray/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backends.errors import AuthFailed, Conflict, Invalid, NotFound, Unreachable, Unsupported
from backends.model import DispatchRequest, NodeSnapshot, Target, from_json, to_json
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.actions import ROLLBACK_WORDS
from backends.ray.settings import RayOptions
from tests.ray_dashboard import Dashboard, recorded
from tests.serving import free_port, serve_asgi

MIB = 1024 * 1024


def make(url: str, tmp_path: Path, **extra: Any) -> RayBackend:
    read_only = bool(extra.pop("read_only", False))  # the node's; the rest are the entry's keys
    options = RayOptions(url=url, options={"state_dir": str(tmp_path / "ray")}, **extra)
    node = NodeSettings(name="cluster", backend_options=options, read_only=read_only)
    return RayBackend.from_config(node, clock=time.time)


async def snapshot_of(dashboard: Dashboard, tmp_path: Path) -> NodeSnapshot:
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path) as backend:
            snap = await backend.snapshot()
    assert from_json(to_json(snap), NodeSnapshot) == snap  # the wire model round-trips
    return snap


async def test_recorded_cluster_becomes_one_node(tmp_path: Path) -> None:
    snap = await snapshot_of(Dashboard(), tmp_path)
    assert snap.node.backend == "ray" and snap.node.version == "2.60.0"
    assert snap.node.labels["machines"] == "1 alive of 1"
    assert snap.system.cpu_count == 2
    assert snap.system.mem_total == 25276514304 and snap.system.mem_used == 801615872
    assert snap.gpu_status.status == "no_driver" and snap.gpus == ()
    # the job supervisors are Ray's plumbing; the user's detached actor is the agent
    assert [(a.name, a.state, a.health, a.pid) for a in snap.agents] == [
        ("fleetdeck-worker", "running", "healthy", 10353)
    ]
    assert snap.agents[0].labels["class"] == "Worker" and snap.agents[0].kind == "actor"
    assert {p.id: p.status for p in snap.phases} == {
        "rec-print": "done",
        "rec-actor": "active",
        "rec-fail": "failed",
    }
    tasks = {t.id: t for t in snap.tasks}
    assert tasks["rec-print"].status == "succeeded" and tasks["rec-print"].submitted_by == "alice"
    assert tasks["rec-fail"].error is not None and "exit code 3" in tasks["rec-fail"].error
    assert tasks["rec-fail"].result == {"exit_code": 3}


async def test_gpus_are_listed_per_machine_in_bytes_and_watts(tmp_path: Path) -> None:
    dashboard = Dashboard()
    dashboard.routes["/nodes"] = recorded("nodes_summary_gpus")
    dashboard.routes["/api/v0/nodes"] = recorded("nodes_three")
    snap = await snapshot_of(dashboard, tmp_path)
    assert [g.index for g in snap.gpus] == [0, 1, 2]  # unique across machines
    a100, idle, h100 = snap.gpus
    assert a100.name == "192.0.2.2 · NVIDIA A100-SXM4-80GB" and h100.name == "192.0.2.3 · NVIDIA H100"
    assert a100.mem_used == 40960 * MIB and a100.mem_total == 81920 * MIB
    assert a100.power_w == 312.0 and a100.temperature_c == 71 and a100.util_percent == 87
    assert idle.util_percent is None and idle.temperature_c is None and idle.power_w is None
    # a GPU process is joined to the actor with that pid; the actor gets its GPU memory
    by_pid = {p.pid: p for p in a100.processes}
    assert by_pid[10353].agent_id == "6c3bdab5e2e2410c8c0f3fa202000000" and by_pid[4242].agent_id is None
    assert snap.agents[0].gpu_mem_bytes == 20480 * MIB
    # cluster totals, and each machine in words
    assert snap.system.cpu_count == 2 + 8
    assert snap.system.load_avg is not None and snap.system.load_avg.m15 > 3.0
    assert snap.node.labels["machines"] == "2 alive of 3"
    assert snap.node.labels["machines down"] == "192.0.2.4"
    assert (
        "gpu-b" in snap.node.labels["machine 192.0.2.3"] and "1 GPU" in snap.node.labels["machine 192.0.2.3"]
    )
    assert snap.gpu_status.status == "ok"


async def test_missing_fields_are_unknown_not_zero(tmp_path: Path) -> None:
    dashboard = Dashboard()
    dashboard.routes["/nodes"] = recorded("nodes_summary_sparse")
    dashboard.routes["/api/jobs/"] = recorded("jobs_sparse")
    dashboard.routes["/api/v0/actors"] = recorded("actors_sparse")
    snap = await snapshot_of(dashboard, tmp_path)
    assert snap.system.cpu_percent is None and snap.system.mem_total is None and snap.system.load_avg is None
    states = {a.id: (a.state, a.health, a.restarts, a.pid) for a in snap.agents}
    assert states["ab12"] == ("starting", "degraded", 2, None)
    assert states["ef56"] == ("starting", "unknown", 0, None)
    assert states["cd34"][:2] == ("failed", "unhealthy")
    assert next(a for a in snap.agents if a.id == "cd34").health_reason == "ValueError: boom"
    # a plain driver is a phase but not a dispatched task
    assert {p.id for p in snap.phases} == {"bare", "05000000"}
    assert [t.id for t in snap.tasks] == ["bare"]


async def test_a_failing_summary_keeps_actors_and_jobs(tmp_path: Path) -> None:
    from starlette.responses import PlainTextResponse

    dashboard = Dashboard()
    dashboard.routes["/nodes"] = PlainTextResponse("reporter down", status_code=500)
    snap = await snapshot_of(dashboard, tmp_path)
    assert snap.gpu_status.status == "error" and "reporter down" in (snap.gpu_status.reason or "")
    assert snap.agents and snap.phases


async def test_unsupported_version_is_said_in_words(tmp_path: Path) -> None:
    dashboard = Dashboard()
    dashboard.routes["/api/version"] = {"version": "3", "ray_version": "2.5.1"}
    refused = pytest.raises(Unreachable, match=r"runs Ray 2\.5\.1, which this backend does not support")
    with serve_asgi(dashboard.app()) as url, refused:
        async with make(url, tmp_path) as backend:
            await backend.snapshot()


async def test_not_a_dashboard(tmp_path: Path) -> None:
    dashboard = Dashboard()
    dashboard.routes["/api/version"] = {"hello": "world"}
    with serve_asgi(dashboard.app()) as url, pytest.raises(Unreachable, match="Ray dashboard"):
        async with make(url, tmp_path) as backend:
            await backend.snapshot()


async def test_nobody_listening_is_unreachable(tmp_path: Path) -> None:
    backend = make(f"http://127.0.0.1:{free_port()}", tmp_path)
    with pytest.raises(Unreachable, match="connection refused"):
        await backend.snapshot()
    await backend.close()


@pytest.mark.parametrize("configured", [None, "wrong-token"])
async def test_a_wrong_or_missing_token_is_auth_failed(
    configured: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dashboard = Dashboard(token="s3cret-token")
    extra = {}
    if configured is not None:
        monkeypatch.setenv("RAY_TEST_TOKEN", configured)
        extra["token_env"] = "RAY_TEST_TOKEN"
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path, **extra) as backend:
            with pytest.raises(AuthFailed) as caught:
                await backend.snapshot()
    message = str(caught.value)
    assert "wrong-token" not in message and "s3cret" not in message
    assert ("$RAY_TEST_TOKEN" in message) if configured else ("none is configured" in message)


async def test_the_right_token_is_sent_as_bearer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_TEST_TOKEN", "s3cret-token")
    dashboard = Dashboard(token="s3cret-token")
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path, token_env="RAY_TEST_TOKEN") as backend:
            snap = await backend.snapshot()
    assert snap.agents


async def test_a_lost_answer_is_retried_without_a_second_job(tmp_path: Path) -> None:
    dashboard = Dashboard(lose_first_submissions=1)
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path) as backend:
            task = await backend.dispatch(
                DispatchRequest(
                    command=("python", "-c", "print(42)"), payload={"runtime_env": {"pip": ["x"]}}
                ),
                operator="alice",
                reason="why not",
            )
            audit = await backend.audit()
    assert len(dashboard.submitted) == 1
    body = dashboard.submitted[0]
    assert task.id == body["submission_id"] and task.status == "queued"
    assert body["entrypoint"] == "python -c 'print(42)'" and body["runtime_env"] == {"pip": ["x"]}
    assert body["metadata"] == {"fleetdeck_operator": "alice", "fleetdeck_reason": "why not"}
    assert [(e.action, e.outcome, e.operator) for e in audit] == [("dispatch", "ok", "alice")]


async def test_the_same_idempotency_key_is_one_job(tmp_path: Path) -> None:
    request = DispatchRequest(command=("sleep", "1"), payload={"idempotency_key": "k-1"})
    with serve_asgi((dashboard := Dashboard()).app()) as url:
        async with make(url, tmp_path) as backend:
            first = await backend.dispatch(request, operator="alice")
            again = await backend.dispatch(request, operator="alice")
            other = await backend.dispatch(DispatchRequest(command=("sleep", "1")), operator="alice")
    assert first.id == again.id != other.id
    assert len(dashboard.submitted) == 2


async def test_refusals_are_in_words_and_audited(tmp_path: Path) -> None:
    with serve_asgi(Dashboard().app()) as url:
        async with make(url, tmp_path) as backend:
            with pytest.raises(Unsupported, match="no call to stop one actor"):
                await backend.stop(Target(kind="agent", id="x"), operator="bob")
            with pytest.raises(Unsupported, match="--command"):
                await backend.dispatch(DispatchRequest(agent_id="a", payload={}), operator="bob")
            with pytest.raises(NotFound, match="does not exist"):
                await backend.stop(Target(kind="task", id="nope"), operator="bob")
            with pytest.raises(Unsupported, match="Ray has no pause"):
                await backend.pause(Target(kind="task", id="x"), operator="bob")
            with pytest.raises(NotFound):
                await backend.rollback("ckpt-none", operator="bob")
            audit = await backend.audit()
            assert backend.capability_note("pause") == backend.capability_note("resume")
            assert "Ray has no pause" in (backend.capability_note("pause") or "")
            assert not backend.supports("pause") and backend.supports("rollback")
    assert [(e.action, e.outcome) for e in audit] == [("stop", "failed")]


async def test_stop_of_a_finished_job_is_a_conflict(tmp_path: Path) -> None:
    from starlette.responses import JSONResponse

    dashboard = Dashboard()
    dashboard.routes["/api/jobs/rec-print/stop"] = JSONResponse({"stopped": False})
    with serve_asgi(dashboard.app()) as url:
        async with make(url, tmp_path) as backend:
            with pytest.raises(Conflict, match=r"not running \(it is SUCCEEDED"):
                await backend.stop(Target(kind="task", id="rec-print"), operator="bob")


async def test_logs_are_numbered_and_resume(tmp_path: Path) -> None:
    with serve_asgi(Dashboard().app()) as url:
        async with make(url, tmp_path) as backend:
            records = [r async for r in backend.logs()]
            seqs = [r.seq for r in records]
            assert seqs == sorted(set(seqs))
            assert any(r.source == "rec-print" and r.message == "42" for r in records)
            assert any(r.message.startswith("job rec-print SUCCEEDED") for r in records)
            middle = seqs[len(seqs) // 2]
            resumed = [r async for r in backend.logs(since_seq=middle)]
    assert [r.seq for r in resumed] == [s for s in seqs if s > middle]


async def test_read_only_refuses_actions(tmp_path: Path) -> None:
    backend = make("http://127.0.0.1:9", tmp_path, read_only=True)
    assert not backend.supports("dispatch") and backend.supports("logs")
    assert backend.capability_note("dispatch") == "node cluster is configured read_only"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="needs the dashboard url"):
        make("", tmp_path)
    with pytest.raises(Invalid, match="unknown ray option 'bogus'"):
        RayBackend.from_config(
            NodeSettings(name="c", backend_options=RayOptions(url="http://h:1", options={"bogus": 1})),
            clock=time.time,
        )
    with pytest.raises(Invalid, match=r"\$NOPE_TOKEN"):
        RayBackend.from_config(
            NodeSettings(name="c", backend_options=RayOptions(url="http://h:1", token_env="NOPE_TOKEN")),
            clock=time.time,
        )


def test_rollback_words_are_exact() -> None:
    assert ROLLBACK_WORDS == (
        "a checkpoint records the specs of the jobs running now; "
        "rollback stops what is running and resubmits the recorded specs"
    )
