"""The ray backend against a real local Ray head (see conftest.py): what an operator sees and does."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from backends.base import Backend
from backends.errors import AuthFailed
from backends.model import DispatchRequest, LogRecord, Target, Task
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.settings import RayOptions

from .conftest import RayHead

T = TypeVar("T")
ACTOR_JOB = Path(__file__).parent / "actor_job.py"
WAIT_S = 90.0  # a bound for a job to get going on two busy cores, not a speed claim


def make(
    head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str | None = None
) -> RayBackend:
    monkeypatch.setenv("FD_RAY_TOKEN", token or head.token)
    options = RayOptions(url=head.url, token_env="FD_RAY_TOKEN", options={"state_dir": str(tmp_path / "ray")})
    return RayBackend.from_config(NodeSettings(name="cluster", backend_options=options), clock=time.time)


async def until(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if (found := await check()) is not None:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"never happened: {what}")


async def task_status(backend: Backend, task_id: str) -> str:
    snap = await backend.snapshot()
    return next(t.status for t in snap.tasks if t.id == task_id)


async def log_lines(backend: Backend, source: str) -> list[LogRecord]:
    return [r async for r in backend.logs() if r.source == source]


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def test_nodes_actors_jobs_logs_and_stop(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make(ray_head, tmp_path, monkeypatch) as backend:
        snap = await backend.snapshot()
        assert snap.node.version and snap.node.labels["auth"] == "token"
        assert (
            snap.system.cpu_count
            and snap.system.cpu_count >= 1
            and snap.node.labels["machines"].startswith("1 alive")
        )
        # a job that makes a detached actor: the actor appears as an agent
        job = await backend.dispatch(
            DispatchRequest(command=(sys.executable, str(ACTOR_JOB)), name="actor job"), operator="alice"
        )

        async def actor_alive() -> Any:
            agents = (await backend.snapshot()).agents
            return next(
                (a for a in agents if a.name == "fleetdeck-test-worker" and a.state == "running"), None
            )

        actor = await until(actor_alive, "the actor is alive")
        assert actor.kind == "actor" and actor.health == "healthy" and actor.pid
        assert actor.phase_id == job.id  # the actor belongs to the job that made it
        snap = await backend.snapshot()
        assert next(p for p in snap.phases if p.id == job.id).name == "actor job"
        # stop the job: it ends as cancelled
        await backend.stop(Target(kind="task", id=job.id), operator="alice", reason="test")

        async def stopped() -> str | None:
            status = await task_status(backend, job.id)
            return status if status == "cancelled" else None

        await until(stopped, "the job is stopped")
        assert [(e.action, e.outcome) for e in await backend.audit()] == [("dispatch", "ok"), ("stop", "ok")]


async def test_dispatched_output_appears_in_logs_and_a_retry_is_not_doubled(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = DispatchRequest(command=py("print(42)"), payload={"idempotency_key": f"k-{tmp_path.name}"})
    async with make(ray_head, tmp_path, monkeypatch) as backend:
        task = await backend.dispatch(request, operator="alice")
        again = await backend.dispatch(request, operator="alice")
        assert again.id == task.id
        snap = await backend.snapshot()
        assert [t.id for t in snap.tasks].count(task.id) == 1

        async def printed() -> list[LogRecord] | None:
            lines = await log_lines(backend, task.id)
            return lines if any(r.message == "42" for r in lines) else None

        lines = await until(printed, "print(42) shows in the logs")
        assert [r.seq for r in lines] == sorted({r.seq for r in lines})

        async def succeeded() -> str | None:
            status = await task_status(backend, task.id)
            return status if status == "succeeded" else None

        await until(succeeded, "the job succeeded")


async def test_checkpoint_and_rollback_resubmit(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make(ray_head, tmp_path, monkeypatch) as backend:
        sleeper = await backend.dispatch(
            DispatchRequest(command=py("import time; time.sleep(120)")), operator="alice"
        )

        async def running() -> Task | None:
            snap = await backend.snapshot()
            return next((t for t in snap.tasks if t.id == sleeper.id and t.status == "running"), None)

        await until(running, "the sleeper runs")
        checkpoint = await backend.checkpoint("before", operator="alice")
        assert sleeper.id in checkpoint.covers
        preview = await backend.rollback_preview(checkpoint.id)
        assert preview[0] == (
            "a checkpoint records the specs of the jobs running now; "
            "rollback stops what is running and resubmits the recorded specs"
        )
        safety = await backend.rollback(checkpoint.id, operator="alice", reason="test")
        assert safety.automatic and sleeper.id in safety.covers
        snap = await backend.snapshot()
        statuses = {t.id: t for t in snap.tasks}
        resubmitted = [
            t
            for t in snap.tasks
            if t.id != sleeper.id and t.payload["entrypoint"] == sleeper.payload["entrypoint"]
        ]
        assert len(resubmitted) == 1 and resubmitted[0].status in ("queued", "running")
        assert {c.id for c in snap.checkpoints} >= {checkpoint.id, safety.id}

        async def rolled_back() -> str | None:
            status = await task_status(backend, sleeper.id)
            return status if status == "rolled_back" else None

        await until(rolled_back, "the old sleeper is stopped")
        assert statuses  # the snapshot had tasks
        await backend.stop(Target(kind="task", id=resubmitted[0].id), operator="alice")
        actions = [(e.action, e.outcome) for e in await backend.audit()]
        assert ("rollback", "ok") in actions and actions.count(("checkpoint", "ok")) == 2


async def test_a_wrong_token_is_auth_failed(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make(ray_head, tmp_path, monkeypatch, token="not-the-token")
    try:
        # the real head guards /api/version too, so the connect itself is refused
        with pytest.raises(AuthFailed, match=r"rejected the token from \$FD_RAY_TOKEN") as caught:
            await backend.snapshot()
        assert "not-the-token" not in str(caught.value) and ray_head.token not in str(caught.value)
    finally:
        await backend.close()


def test_cli_status_dispatch_and_logs(ray_head: RayHead, fleetdeck: Any, cli_env: dict[str, str]) -> None:
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'operator = "carol"\n[[nodes]]\nname = "cluster"\nbackend = "ray"\nurl = "{ray_head.url}"\n'
        'token_env = "FD_RAY_TOKEN"\n',
        encoding="utf-8",
    )
    cli_env["FD_RAY_TOKEN"] = ray_head.token
    status = fleetdeck("status", "--node", "cluster", "--json")
    assert status.returncode in (0, 1), status.stdout + status.stderr  # 2 would be critical, 3 unreachable
    report = json.loads(status.stdout)
    assert [(n["name"], n["error"]) for n in report["nodes"]] == [("cluster", None)]
    dispatched = fleetdeck("dispatch", "--node", "cluster", "--command", "python -c 'print(42)'", "--json")
    assert dispatched.returncode == 0, dispatched.stderr
    task_id = json.loads(dispatched.stdout)["id"]
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        logs = fleetdeck("logs", "--node", "cluster", "--agent", task_id)
        assert logs.returncode == 0, logs.stderr
        if any(line.endswith(f"{task_id}: 42") for line in logs.stdout.splitlines()):
            return
        time.sleep(1)
    raise AssertionError(f"print(42) never showed in fleetdeck logs: {shlex.quote(logs.stdout[-500:])}")
