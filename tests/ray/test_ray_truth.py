"""What fleetdeck shows of a real Ray head must be what Ray says (issue 15, items 5-7): why a job failed,
actors by name, dead actors as history, an actor waiting for a GPU the cluster lacks as an alert, a stopped
job as stopped, and no gate for a job. Ray's own answers (``/api/v0/actors``, ``/api/jobs/``) are the truth
each view is checked against.

The failed job stays in the session head's list (Ray deletes a job only to list a ghost of it as FAILED
later): these tests run after test_live_cluster.py, whose status check wants no critical alert."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.model import Agent, DispatchRequest, NodeSnapshot, Target
from console.core.alerts import node_alerts
from console.core.config import Thresholds
from widgets.node_header import header_text
from widgets.phase_board import phase_lines

from .conftest import RayHead
from .test_live_cluster import make, until

HERE = Path(__file__).parent
FAILING_JOB = HERE / "failing_job.py"
TRUTH_JOB = HERE / "truth_job.py"


def ray_actors(head: RayHead) -> list[dict[str, Any]]:
    """Ray's own list of the user's actors (its job supervisors left out, as fleetdeck leaves them)."""
    answer = httpx.get(
        f"{head.url}/api/v0/actors",
        params={"detail": "1", "limit": "10000"},
        headers={"Authorization": f"Bearer {head.token}"},
        timeout=30,
    )
    answer.raise_for_status()
    rows = answer.json()["data"]["result"]["result"]
    return [a for a in rows if not str(a.get("name") or "").startswith("_ray_internal_")]


def plain(lines: list[Any]) -> str:
    return "\n".join(line.plain for line in lines)


async def test_a_failed_job_says_why_in_the_task_the_phase_and_its_alert(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make(ray_head, tmp_path, monkeypatch) as backend:
        task = await backend.dispatch(
            DispatchRequest(command=(sys.executable, str(FAILING_JOB)), name="failing"), operator="alice"
        )

        async def failed() -> NodeSnapshot | None:
            snap = await backend.snapshot()
            return snap if any(t.id == task.id and t.status == "failed" for t in snap.tasks) else None

        snap = await until(failed, "the job fails")
    error = next(t.error for t in snap.tasks if t.id == task.id) or ""
    # Ray's first line ("Job entrypoint command failed with exit code 1, last available logs ...") is not
    # the cause: the traceback's end is
    assert error.startswith("RuntimeError: boom from the truth test"), error
    assert 'failing_job.py:6 in main: raise RuntimeError("boom from the truth test")' in error
    assert "exit code 1" in error
    phase = next(p for p in snap.phases if p.id == task.id)
    assert phase.status == "failed" and phase.status_reason == error
    assert "RuntimeError: boom from the truth test" in plain(phase_lines(phase, time.time(), 24))
    alert = next(a for a in node_alerts(snap, Thresholds(), time.time()) if a.subject == f"phase:{task.id}")
    assert alert.severity == "critical" and "RuntimeError: boom from the truth test" in alert.reason
    # since the job ended, by Ray's clock, not since the console first saw it
    ended = next(j for j in httpx.get(f"{ray_head.url}/api/jobs/", headers=_auth(ray_head)).json()
                 if j.get("submission_id") == task.id)["end_time"] / 1000  # fmt: skip
    assert alert.since == pytest.approx(ended) and phase.finished_at == pytest.approx(ended)


def _auth(head: RayHead) -> dict[str, str]:
    return {"Authorization": f"Bearer {head.token}"}


async def test_actors_by_name_the_dead_apart_a_missing_gpu_an_alert_and_a_stopped_job_stopped(
    ray_head: RayHead,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fleetdeck: Any,
    cli_env: dict[str, str],
) -> None:
    tag = tmp_path.name[-12:].replace("_", "-")
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[[nodes]]\nname = "cluster"\nbackend = "ray"\nurl = "{ray_head.url}"\ntoken_env = "FD_RAY_TOKEN"\n',
        encoding="utf-8",
    )
    cli_env["FD_RAY_TOKEN"] = ray_head.token
    names = {f"alive-{tag}", f"crasher-{tag}", f"gpu-{tag}"}
    async with make(ray_head, tmp_path, monkeypatch) as backend:
        job = await backend.dispatch(
            DispatchRequest(command=(sys.executable, str(TRUTH_JOB), tag), name="truth"), operator="alice"
        )

        async def settled() -> dict[str, Agent] | None:
            agents = {a.name: a for a in (await backend.snapshot()).agents if a.name in names}
            states = {name: a.state for name, a in agents.items()}
            wanted = {f"alive-{tag}": "running", f"crasher-{tag}": "failed", f"gpu-{tag}": "starting"}
            return agents if states == wanted else None

        ours = await until(settled, "one actor alive, one crashed, one waiting for a GPU")
        snap = await backend.snapshot()
        truth = ray_actors(ray_head)

        # Dead actors are history: counted apart from health, as many as Ray calls DEAD
        ray_dead = sum(1 for a in truth if a["state"] == "DEAD")
        ray_alive = len(truth) - ray_dead
        assert len(snap.agents) == len(truth) and ray_dead >= 1
        header = header_text("cluster", "dev", snap, False).plain
        assert f"/{ray_alive} alive healthy · {ray_dead} dead" in header, header

        # an actor that needs a GPU the CPU-only head lacks is an alert, not "starting" for ever
        gpu = ours[f"gpu-{tag}"]
        assert (
            gpu.health == "unhealthy"
            and gpu.health_reason == "cannot be scheduled: needs 1 GPU, the cluster has 0"
        )
        alerts = {a.subject: a for a in node_alerts(snap, Thresholds(), time.time())}
        assert alerts[f"agent:{gpu.id}"].severity == "critical"
        assert alerts[f"agent:{gpu.id}"].line().endswith(f"cluster agent:gpu-{tag}: {gpu.health_reason}")
        assert f"agent:{ours[f'crasher-{tag}'].id}" not in alerts  # history raises none

        # the command line names actors as Ray does, each with the id commands take beside its name
        listed = fleetdeck("agents", "--node", "cluster")
        assert listed.returncode == 0, listed.stderr
        rows = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:]}
        for name in names:
            assert rows.get(name) == ours[name].id, listed.stdout
        status = fleetdeck("status", "--node", "cluster")
        assert f"agent:gpu-{tag}: cannot be scheduled: needs 1 GPU, the cluster has 0" in status.stdout
        assert gpu.id not in status.stdout and "alive agents healthy · " in status.stdout

        # a dispatched command with a line break stays one line of the tasks table
        two = fleetdeck(
            "dispatch", "--node", "cluster", "--command", "python -c 'print(1)\nprint(2)'", "--json"
        )
        assert two.returncode == 0, two.stderr
        two_id = json.loads(two.stdout)["id"]

        async def two_done() -> str | None:
            status = next((t.status for t in (await backend.snapshot()).tasks if t.id == two_id), None)
            return status if status in ("succeeded", "failed") else None

        assert await until(two_done, "the two-line job ends") == "succeeded"

        # stopped: the job's phase says so (not "done ✔"), and a job has no gate
        await backend.stop(Target(kind="task", id=job.id), operator="alice", reason="test")

        async def stopped() -> NodeSnapshot | None:
            snap = await backend.snapshot()
            return snap if any(p.id == job.id and p.status == "stopped" for p in snap.phases) else None

        snap = await until(stopped, "the job is stopped")
    phase = next(p for p in snap.phases if p.id == job.id)
    board = plain(phase_lines(phase, time.time(), 24))
    assert "STOPPED" in board and "✔" not in board and "DONE" not in board and "gate" not in board
    assert next(t.status for t in snap.tasks if t.id == job.id) == "cancelled"
    phases = fleetdeck("phases", "--node", "cluster")
    row = next(line for line in phases.stdout.splitlines() if line.startswith(job.id))
    assert row.split()[2] == "stopped" and "PENDING" not in phases.stdout, phases.stdout
    tasks = fleetdeck("tasks", "--node", "cluster")
    lines = tasks.stdout.splitlines()
    assert len(lines) == 1 + len(snap.tasks), tasks.stdout  # the header and one line per task
    assert any("print(1)␤print(2)" in line for line in lines)
