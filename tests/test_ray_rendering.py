"""How a Ray cluster reads in fleetdeck, on answers recorded from a real Ray 2.60 head (tests/data/ray/:
``jobs_failed_stopped``, ``actors_named``, ``nodes_named``, and hand-made variants for what one CPU-only
head cannot show): a failed job's cause, actors by name, the dead apart from health, an actor waiting for a
GPU no machine has, a stopped job, jobs without gates; and that local and demo fleets read as before.
The same is checked against a live head in tests/ray/test_ray_truth.py."""

from __future__ import annotations

import asyncio
import copy
import time
from pathlib import Path
from typing import Any

import pytest

from backends.model import Agent, Gate, NodeInfo, NodeSnapshot, Phase
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.settings import RayOptions
from console.cli.text_table import format_table
from console.core.alerts import node_alerts
from console.core.clock import FrozenClock
from console.core.config import Thresholds
from console.core.fleet_setup import demo_links
from tests.ray_dashboard import Dashboard, recorded
from tests.serving import serve_asgi
from widgets.fleet_table import FleetRow, row_cells
from widgets.node_header import header_text
from widgets.phase_board import phase_lines

FAIL_ENDED = 1796192153.129  # fail-1's end_time in the recording, in seconds
GPU_ID = "d815aa06dd622105ba6ab1d302000000"  # gpu-trainer, pending on a GPU
CRASHER_ID = "45e2fa2f04db8127ffc0fcb602000000"


def cluster(**routes: Any) -> Dashboard:
    dashboard = Dashboard()
    dashboard.routes.update(
        {
            "/api/jobs/": recorded("jobs_failed_stopped"),
            "/api/v0/actors": recorded("actors_named"),
            "/api/v0/nodes": recorded("nodes_named"),
            **routes,
        }
    )
    return dashboard


async def snapshot_of(dashboard: Dashboard, tmp_path: Path) -> NodeSnapshot:
    with serve_asgi(dashboard.app()) as url:
        options = RayOptions(url=url, options={"state_dir": str(tmp_path / "ray")})
        node = NodeSettings(name="cluster", backend_options=options)
        async with RayBackend.from_config(node, clock=time.time) as backend:
            return await backend.snapshot()


def plain(lines: list[Any]) -> str:
    return "\n".join(line.plain for line in lines)


def by_id(items: Any) -> dict[str, Any]:
    return {item.id: item for item in items}


# --- why a job failed ----------------------------------------------------------------------------------


async def test_a_failed_jobs_cause_is_the_end_of_its_traceback(tmp_path: Path) -> None:
    snap = await snapshot_of(cluster(), tmp_path)
    tasks = by_id(snap.tasks)
    # not Ray's first line ("Job entrypoint command failed with exit code 1, last available logs ..."):
    # the exception, the line that raised it, and the exit code
    assert (
        tasks["fail-1"].error
        == 'RuntimeError: boom (at fail.py:3 in main: raise RuntimeError("boom"); exit code 1)'
    )
    # a runtime_env failure: Ray's words, then the exception of the traceback it quotes
    env_error = tasks["actors-1"].error
    assert env_error.startswith(
        "runtime_env setup failed: Failed to set up runtime environment — OSError: Failed to download"
    )
    assert env_error.endswith("(at packaging.py:957 in download_and_unpack_package: raise IOError()")
    assert tasks["sleeper-1"].error is None and tasks["actors-2"].error is None


async def test_without_a_traceback_the_cause_is_the_last_line_printed(tmp_path: Path) -> None:
    snap = await snapshot_of(Dashboard(), tmp_path)  # rec-fail: print("boom"); sys.exit(3)
    assert by_id(snap.tasks)["rec-fail"].error == "exit code 3; its last line: boom"


async def test_a_failed_jobs_phase_and_alert_say_why_and_date_from_its_end(tmp_path: Path) -> None:
    snap = await snapshot_of(cluster(), tmp_path)
    phase = by_id(snap.phases)["fail-1"]
    assert phase.status == "failed" and phase.finished_at == pytest.approx(FAIL_ENDED)
    assert phase.status_reason == by_id(snap.tasks)["fail-1"].error
    assert 'RuntimeError: boom (at fail.py:3 in main: raise RuntimeError("boom")' in plain(
        phase_lines(phase, FAIL_ENDED + 600, 24)
    )
    alerts = {a.subject: a for a in node_alerts(snap, Thresholds(), FAIL_ENDED + 600)}
    alert = alerts["phase:fail-1"]
    assert alert.severity == "critical" and alert.reason.startswith(
        "phase failed: RuntimeError: boom (at fail.py:3"
    )
    assert alert.since == pytest.approx(FAIL_ENDED)  # from the job's end, not from when it was first seen


# --- stopped jobs and gates ----------------------------------------------------------------------------


async def test_a_stopped_job_is_stopped_not_done_and_jobs_have_no_gate(tmp_path: Path) -> None:
    snap = await snapshot_of(cluster(), tmp_path)
    phases = by_id(snap.phases)
    stopped = phases["sleeper-1"]
    assert stopped.status == "stopped" and by_id(snap.tasks)["sleeper-1"].status == "cancelled"
    board = plain(phase_lines(stopped, time.time(), 24))
    assert "STOPPED" in board and "Job was intentionally stopped." in board
    assert "✔" not in board and "DONE" not in board
    for phase in snap.phases:
        assert "gate" not in plain(phase_lines(phase, time.time(), 24)), phase.id
    assert not [a for a in node_alerts(snap, Thresholds(), time.time()) if a.subject == "phase:sleeper-1"]


def test_a_judged_gate_is_still_shown_pending_or_not() -> None:
    waiting = Phase(id="p", name="Pilot", order=1, gate=Gate(decision="pending", reasons=("waiting for w2",)))
    go = Phase(
        id="q", name="Scale", order=2, status="done", progress=1.0, gate=Gate(decision="go", reasons=("ok",))
    )
    assert "gate PENDING — waiting for w2" in plain(phase_lines(waiting, 0.0, 10))
    assert "gate GO — ok" in plain(phase_lines(go, 0.0, 10))
    assert "✔" in plain(phase_lines(go, 0.0, 10))


# --- actors: names, the dead, needs the cluster cannot meet ----------------------------------------------


async def test_actors_are_named_and_the_dead_are_counted_apart(tmp_path: Path) -> None:
    snap = await snapshot_of(cluster(), tmp_path)
    agents = by_id(snap.agents)
    assert {a.name for a in snap.agents} == {"planner", "crasher", "gpu-trainer"}
    assert agents[CRASHER_ID].state == "failed"  # Ray: DEAD, the worker died
    # planner healthy; gpu-trainer alive but stuck; crasher is history
    assert "  1/2 alive healthy · 1 dead" in header_text("cluster", "dev", snap, False).plain
    healthy_cell = row_cells(FleetRow("cluster", "dev", "live", "live", snap))[3]
    assert healthy_cell.plain == "1/2 · 1 dead"
    subjects = {a.subject for a in node_alerts(snap, Thresholds(), time.time())}
    assert f"agent:{CRASHER_ID}" not in subjects  # a dead actor raises no alert


async def test_an_actor_needing_a_gpu_no_machine_has_is_an_alert_by_name(tmp_path: Path) -> None:
    snap = await snapshot_of(cluster(), tmp_path)
    gpu = by_id(snap.agents)[GPU_ID]
    assert (gpu.state, gpu.health) == ("starting", "unhealthy")
    assert gpu.health_reason == "cannot be scheduled: needs 1 GPU, the cluster has 0"
    alert = next(a for a in node_alerts(snap, Thresholds(), time.time()) if a.subject == f"agent:{GPU_ID}")
    assert alert.severity == "critical"
    assert alert.line() == (
        "✖ critical cluster agent:gpu-trainer: cannot be scheduled: needs 1 GPU, the cluster has 0"
    )


def _with_machines(*resources: dict[str, float]) -> dict[str, Any]:
    """The recorded node list with its one machine replaced by machines holding ``resources``."""
    nodes = copy.deepcopy(recorded("nodes_named"))
    template = nodes["data"]["result"]["result"][0]
    machines = []
    for index, extra in enumerate(resources):
        machine = copy.deepcopy(template)
        machine["node_id"] = f"{index:02d}" + template["node_id"][2:]
        machine["resources_total"] = {**template["resources_total"], **extra}
        machines.append(machine)
    nodes["data"]["result"]["result"] = machines
    return nodes


async def test_a_need_some_machine_can_meet_is_a_wait_not_an_alert(tmp_path: Path) -> None:
    dashboard = cluster(**{"/api/v0/nodes": _with_machines({}, {"GPU": 1.0})})
    gpu = by_id((await snapshot_of(dashboard, tmp_path)).agents)[GPU_ID]
    assert (gpu.state, gpu.health, gpu.health_reason) == ("starting", "unknown", "waiting to be scheduled")


def test_a_need_split_over_machines_or_of_a_placement_group_is_judged_in_words() -> None:
    from backends.ray.actors import unmet_need

    two = {"required_resources": {"GPU": 2.0}}
    assert (
        unmet_need(two, [{"GPU": 1.0}, {"GPU": 1.0}]) == "needs 2 GPU on one machine, the most one has is 1"
    )
    assert unmet_need(two, [{"GPU": 4.0}]) is None
    memory = {"required_resources": {"memory": 64 * 1024**3}}
    assert unmet_need(memory, [{"memory": 16 * 1024**3}]) == "needs 64.0 GiB memory, the cluster has 16.0 GiB"
    # a placement group's resources exist only once it is placed: not judged
    assert unmet_need({"required_resources": {"GPU_group_0_abc": 1.0}}, [{"CPU": 2.0}]) is None
    assert unmet_need(two, []) is None  # no machine known: nothing can be told


# --- the one rule for every backend ----------------------------------------------------------------------


def _agent(name: str, kind: str, state: str, health: str) -> Agent:
    return Agent(id=name, name=name, kind=kind, state=state, health=health)  # type: ignore[arg-type]


def test_a_failed_local_agent_counts_against_health_a_dead_actor_does_not() -> None:
    def header(*agents: Agent) -> str:
        snap = NodeSnapshot(node=NodeInfo(id="n", name="n", backend="x"), observed_at=0.0, agents=agents)
        return header_text("n", "dev", snap, False).plain

    ok = _agent("ok", "process", "running", "healthy")
    assert "  1/2 healthy" in header(ok, _agent("crashed", "process", "failed", "unhealthy"))
    assert "  1/2 healthy" in header(ok, _agent("looping", "process", "starting", "degraded"))
    assert "  1/2 healthy" in header(ok, _agent("stopped", "reporting", "stopped", "unknown"))
    assert "  1/1 alive healthy · 2 dead" in header(
        ok, _agent("gone", "actor", "failed", "unhealthy"), _agent("ended", "actor", "stopped", "unknown")
    )
    assert "  1/2 healthy" in header(ok, _agent("restarting", "actor", "starting", "degraded"))


def test_the_demo_fleet_reads_as_before(tmp_path: Path) -> None:
    link = demo_links(seed=7, nodes=1, agents=20, clock=FrozenClock(1_800_000_000.0))[0]
    snap = asyncio.run(link.backend.snapshot())
    healthy = sum(1 for a in snap.agents if a.health == "healthy")
    assert f"  {healthy}/{len(snap.agents)} healthy" in header_text("d", "dev", snap, False).plain
    assert "dead" not in header_text("d", "dev", snap, False).plain


def test_two_agents_of_one_name_are_told_apart_by_their_ids() -> None:
    agents = (
        Agent(id="aaaa1111" + "0" * 24, name="worker", kind="actor", state="running", health="degraded"),
        Agent(id="bbbb2222" + "0" * 24, name="worker", kind="actor", state="running", health="unhealthy"),
        Agent(id="cccc3333" + "0" * 24, name="solo", kind="actor", state="running", health="degraded"),
    )
    snap = NodeSnapshot(node=NodeInfo(id="n", name="n", backend="ray"), observed_at=0.0, agents=agents)
    shown = sorted(a.shown_subject for a in node_alerts(snap, Thresholds(), 0.0))
    assert shown == ["agent:solo", "agent:worker (aaaa1111)", "agent:worker (bbbb2222)"]


def test_a_task_with_a_line_break_is_one_line_of_the_tasks_table() -> None:
    lines = format_table(("TASK", "TARGET", "STATUS"), [("t1", "python -c 'print(1)\nprint(2)'", "queued")])
    assert lines[1:] == ["t1    python -c 'print(1)␤print(2)'  queued"]


# --- the console on a Ray node ---------------------------------------------------------------------------


async def test_the_console_names_actors_shows_the_cause_and_no_phantom_gates(tmp_path: Path) -> None:
    from console.app import FleetDeckApp
    from console.core.config import Config
    from console.core.node_link import NodeLink
    from console.screens.agent import AgentScreen
    from console.snapshot import screen_text
    from widgets.attention import AttentionList

    with serve_asgi(cluster().app()) as url:
        options = RayOptions(url=url, options={"state_dir": str(tmp_path / "ray")})
        backend = RayBackend.from_config(
            NodeSettings(name="cluster", backend_options=options), clock=time.time
        )
        link = NodeLink("cluster", backend, clock=time.time)
        app = FleetDeckApp([link], config=Config(refresh_s=0.2), clock=time.time, frozen=False)
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not app.alert_book.active("cluster"):
                await pilot.pause(0.1)
            await pilot.pause(0.3)
            screen = screen_text(app)
            assert "Agents 1/2 alive healthy · 1 dead" in screen
            assert "agent:gpu-trainer" in screen and GPU_ID not in screen
            # on the plan board (wrapped to its width) and in the failed job's alert
            assert "RuntimeError: boom (at fail.py:3 in main: raise" in screen
            assert "phase failed: RuntimeError: boom (at fail.py:3" in screen
            # the alert is on since the job ended, not since this console first saw it
            failed = next(e for e in app.alert_book.active("cluster") if e.subject == "phase:fail-1")
            assert failed.since == pytest.approx(FAIL_ENDED)
            assert "STOPPED" in screen and "gate" not in screen
            # enter on the actor's alert opens it, under its name
            alerts = app.screen.query_one(AttentionList)
            keys = alerts.row_keys
            alerts.focus()
            alerts.move_cursor(row=next(i for i, k in enumerate(keys) if GPU_ID in k))
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, AgentScreen) and app.screen.agent_id == GPU_ID
            detail = screen_text(app)
            assert "Agent gpu-trainer" in detail and "cannot be scheduled: needs 1 GPU" in detail
