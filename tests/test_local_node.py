"""The local node through LocalBackend and the reporting API: many real processes on one real SQLite store,
health from heartbeats, a supervisor that vanished, GPUs through (fake) NVML and the real no-driver path,
and the console running on this machine.

The one stand-in is NVML (tests/fake_pynvml.py); everything else is real: processes, signals, SQLite, psutil.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import re
import signal
import sys
import time
import traceback
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from backends.local.backend import LocalBackend
from backends.local.reporter import AgentReporter
from backends.local.store_health import HealthThresholds
from backends.model import Agent, DispatchRequest, NodeSnapshot, Task, from_json, to_json

from .agents.local_node import LocalNode, wait_for
from .fake_pynvml import GIB, FakeGpu, make_fake_nvml

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals")


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


@pytest.fixture(autouse=True)
def _leave_nothing_behind(node: LocalNode) -> None:
    """Every test here ends with the processes of its node reaped, whether it asked for the node or not."""


async def snapshot_of(state_dir: Path, **options: Any) -> NodeSnapshot:
    backend = LocalBackend(state_dir=state_dir, **options)
    try:
        return await backend.snapshot()
    finally:
        await backend.close()


def agent_in(snapshot: NodeSnapshot, name: str) -> Agent:
    return next(a for a in snapshot.agents if a.id == name)


def nvidia_driver_present() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


# --- 6. twenty reporters and the console at once -----------------------------------------------------------

WORKERS = 20
BEATS = 100  # heartbeats and log lines per reporter
AUDITS = 10  # audit entries per reporter
DISPATCHES = 60  # tasks the console hands out while the reporters run


def _reporting_agent(state_dir: str, index: int, barrier: Any, results: Any) -> None:
    """One agent process: reports through AgentReporter, takes the tasks the console dispatches to it."""
    try:
        name = f"rep-{index:02d}"
        with AgentReporter(name, state_dir=state_dir, labels={"index": str(index)}) as agent:
            barrier.wait(timeout=120)  # all twenty write at once, not one after another
            for i in range(BEATS):
                agent.heartbeat(progress=(i + 1) / BEATS, message=f"beat {i}")
                agent.log("info", f"line {i}", i=i)
                if i % (BEATS // AUDITS) == 0:
                    agent.store.audit(name, "report", f"agent:{name}", outcome="ok", params={"i": i})
                task = agent.next_task()
                if task is not None:
                    agent.complete(task.id, {"by": name})
        results.put((index, ""))
    except BaseException:
        results.put((index, traceback.format_exc()))


async def test_twenty_reporters_and_the_console_lose_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "node"
    backend = LocalBackend(state_dir=state_dir)
    await backend.open()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_reporting_agent, args=(str(state_dir), i, barrier, results))
        for i in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    try:
        followed: list[int] = []
        reported: dict[int, str] = {}
        dispatched: list[Task] = []
        snapshots = 0
        deadline = time.monotonic() + 180
        while len(reported) < WORKERS:
            assert time.monotonic() < deadline, f"reporters did not finish: {sorted(reported)}"
            snapshot = await backend.snapshot()
            assert from_json(to_json(snapshot), NodeSnapshot) == snapshot, "a snapshot failed validation"
            snapshots += 1
            async for record in backend.logs(followed[-1] if followed else 0, follow=False):
                followed.append(record.seq)
            names = sorted(a.id for a in snapshot.agents)
            if names and len(dispatched) < DISPATCHES:
                target = names[len(dispatched) % len(names)]
                request = DispatchRequest(agent_id=target, payload={"n": len(dispatched)})
                dispatched.append(await backend.dispatch(request, operator="console"))
            while True:
                try:
                    index, error = results.get_nowait()
                except queue.Empty:
                    break
                reported[index] = error
            if all(not p.is_alive() for p in procs) and len(reported) < WORKERS:
                await asyncio.sleep(0.2)  # the queue's feeder may still be flushing
                if results.empty():
                    break
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    assert {i: e for i, e in reported.items() if e} == {}, "a reporter failed"
    assert sorted(reported) == list(range(WORKERS))
    assert all(proc.exitcode == 0 for proc in procs)
    assert snapshots >= 1

    async for record in backend.logs(followed[-1] if followed else 0, follow=False):
        followed.append(record.seq)
    everything = [record async for record in backend.logs(0, follow=False)]
    assert len(everything) == WORKERS * BEATS, "every log line is there, once"
    assert followed == [r.seq for r in everything], "following by cursor missed or repeated a line"
    assert all(a < b for a, b in pairwise(followed))
    for index in range(WORKERS):
        own = [r.fields["i"] for r in everything if r.source == f"rep-{index:02d}"]
        assert own == list(range(BEATS)), f"rep-{index:02d}: lines lost or out of order"

    audit = await backend.audit(0)
    assert len([e for e in audit if e.action == "report"]) == WORKERS * AUDITS
    assert [e.outcome for e in audit if e.action == "dispatch"] == ["ok"] * len(dispatched)
    for row in backend.store.agent_rows():
        assert (row.heartbeats, row.message, row.progress) == (BEATS, f"beat {BEATS - 1}", 1.0)

    final = await backend.snapshot()
    assert from_json(to_json(final), NodeSnapshot) == final
    assert {a.id: a.state for a in final.agents} == {f"rep-{i:02d}": "stopped" for i in range(WORKERS)}
    tasks = {t.id: t for t in final.tasks}
    assert sorted(tasks) == sorted(t.id for t in dispatched)
    for task in tasks.values():
        assert task.status in ("queued", "succeeded")
        if task.status == "succeeded":  # taken once, by the agent it was meant for
            assert (task.attempts, task.result) == (1, {"by": task.target.removeprefix("agent:")})
    await backend.close()


# --- 7. the reporting API -----------------------------------------------------------------------------------


def test_a_reporting_agent_reports_takes_work_and_honours_pause(node: LocalNode) -> None:
    node.ok("plan", "apply", str(Path(__file__).resolve().parent.parent / "examples" / "plan.toml"))
    agent = AgentReporter("planner-01", state_dir=node.state_dir, labels={"role": "planner"})
    try:
        agent.heartbeat(state="running", progress=0.25, message="planning W1")
        shown = node.agent("planner-01")
        assert shown is not None
        assert (shown["kind"], shown["state"], shown["health"]) == ("reporting", "running", "healthy")
        assert (shown["progress"], shown["message"], shown["pid"]) == (0.25, "planning W1", os.getpid())
        assert shown["phase_id"] == "p1-foundation" and shown["labels"] == {"role": "planner"}
        assert shown["last_heartbeat"] is not None

        agent.log("warning", "disk is slow", disk="sda")
        (line,) = node.logs("--agent", "planner-01")
        assert (line["level"], line["message"], line["fields"]) == (
            "warning",
            "disk is slow",
            {"disk": "sda"},
        )

        agent.milestone(
            "w1-store", passed=True, criteria={"Schema round trip": "100% exact", "Store write latency": 7}
        )
        agent.milestone("w2-supervisor", passed=None, criteria={"Heartbeat interval": 2})
        phase = next(p for p in node.json("phases") if p["id"] == "p1-foundation")
        w1, w2 = phase["milestones"]
        assert w1["status"] == "passed"
        assert {c["name"]: c["actual"] for c in w1["criteria"]}["Schema round trip"] == "100% exact"
        interval = next(c for c in w2["criteria"] if c["name"] == "Heartbeat interval")
        assert interval["actual"].startswith("2") and interval["passed"] is True  # 2 s <= 5 s
        assert w2["status"] != "passed", "criteria actuals alone do not pass a milestone"

        first = node.json("dispatch", "--agent", "planner-01", "--payload", '{"prompt": "one"}')
        second = node.json("dispatch", "--agent", "planner-01", "--payload", '{"prompt": "two"}')
        task = agent.next_task()
        assert task is not None and (task.id, task.payload, task.status) == (
            first["id"],
            {"prompt": "one"},
            "running",
        )
        agent.complete(task.id, {"answer": 1})
        task = agent.next_task()
        assert task is not None and task.id == second["id"]
        agent.fail(task.id, "model refused")
        assert agent.next_task() is None
        tasks = {t["id"]: t for t in node.json("tasks")}
        assert (tasks[first["id"]]["status"], tasks[first["id"]]["result"]) == ("succeeded", {"answer": 1})
        assert (tasks[second["id"]]["status"], tasks[second["id"]]["error"]) == ("failed", "model refused")

        node.ok("pause", "planner-01")
        assert agent.paused is True
        third = node.json("dispatch", "--agent", "planner-01", "--payload", '{"prompt": "three"}')
        assert agent.next_task() is None, "a paused agent is handed no work"
        agent.heartbeat(message="waiting")
        assert node.state("planner-01") == "paused"
        node.ok("resume", "planner-01")
        assert agent.paused is False
        task = agent.next_task()
        assert task is not None and task.id == third["id"]
        assert node.state("planner-01") == "running"
    finally:
        agent.close()
    assert node.state("planner-01") == "stopped"


# --- 8. health from heartbeats ----------------------------------------------------------------------------


async def test_an_agent_that_stops_heartbeating_turns_degraded_then_unhealthy(tmp_path: Path) -> None:
    state_dir = tmp_path / "node"
    agent = AgentReporter("quiet", state_dir=state_dir)
    try:
        agent.heartbeat(message="hello")
        beat = agent.store.agent_record("quiet").last_heartbeat
        assert beat is not None

        async def judged(seconds_later: float, **options: Any) -> tuple[str, str | None]:
            seen = agent_in(
                await snapshot_of(state_dir, clock=lambda: beat + seconds_later, **options), "quiet"
            )
            return seen.health, seen.health_reason

        assert await judged(1) == ("healthy", None)
        assert await judged(20.5) == ("degraded", "no heartbeat for 20 s")
        assert await judged(75) == ("unhealthy", "no heartbeat for 75 s")
        tight = HealthThresholds(heartbeat_stale_s=(5.0, 10.0))
        assert await judged(7, thresholds=tight) == ("degraded", "no heartbeat for 7 s")

        # and on the real clock, with thresholds small enough to wait for
        quick = HealthThresholds(heartbeat_stale_s=(0.4, 1.2))

        async def health_now() -> tuple[str, str | None]:
            seen = agent_in(await snapshot_of(state_dir, thresholds=quick), "quiet")
            return seen.health, seen.health_reason

        deadline = time.monotonic() + 30
        while (health := await health_now())[0] != "unhealthy":
            assert time.monotonic() < deadline, health
            await asyncio.sleep(0.1)
        assert re.fullmatch(r"no heartbeat for \d+ s", health[1] or ""), health
        agent.heartbeat()
        assert await health_now() == ("healthy", None), "a heartbeat makes it healthy again"
    finally:
        agent.close()


# --- 9. a supervisor that vanished ---------------------------------------------------------------------


async def test_an_agent_whose_supervisor_was_killed_does_not_stay_running(node: LocalNode) -> None:
    run = node.start_python("orphan", "sleeper.py")
    node.wait_running("orphan")
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    seen = agent_in(await snapshot_of(node.state_dir), "orphan")
    assert seen.state not in ("running", "starting", "idle"), seen
    assert seen.health == "unhealthy"
    assert f"supervisor gone (pid {run.pid})" in (seen.health_reason or "")
    shown = node.agent("orphan")
    assert shown is not None and shown["state"] == seen.state and shown["health_reason"] == seen.health_reason


# --- 10. GPUs -------------------------------------------------------------------------------------------


async def test_gpu_processes_are_joined_to_the_agent_that_owns_them(node: LocalNode) -> None:
    node.start_python("trainer", "sleeper.py", "--child")
    agent_pid = node.wait_running("trainer")["pid"]
    ready = wait_for(
        lambda: [r["message"] for r in node.logs("--agent", "trainer") if r["message"].startswith("ready")],
        "the trainer's ready line",
    )
    child = int(ready[0].rpartition("child=")[2])
    node.ok("report", "--agent", "idle", "--state", "running")  # an agent with no GPU process
    stranger = os.getpid()  # on the GPU, but no agent's process nor a descendant of one
    fake = make_fake_nvml(
        [
            FakeGpu(
                name=b"NVIDIA H100 80GB HBM3",
                uuid="GPU-aaaa",
                util=87,
                mem_total=80 * GIB,
                mem_used=40 * GIB,
                temperature=71,
                power_mw=612_345,
                power_limit_mw=700_000,
                fan=55,
                compute_procs=[(child, 30 * GIB), (stranger, 2 * GIB)],
            ),
            FakeGpu(
                name="NVIDIA A100-SXM4-40GB",
                uuid="GPU-bbbb",
                util=3,
                mem_total=40 * GIB,
                mem_used=5 * GIB,
                graphics_procs=[(agent_pid, 4 * GIB)],
            ),
        ]
    )
    backend = LocalBackend(state_dir=node.state_dir, nvml_module=fake)
    snapshot = await backend.snapshot()
    await backend.close()
    assert fake.shutdown_calls == 1

    assert snapshot.gpu_status.status == "ok"
    h100, a100 = snapshot.gpus
    assert (h100.index, h100.name, h100.uuid, h100.util_percent) == (
        0,
        "NVIDIA H100 80GB HBM3",
        "GPU-aaaa",
        87,
    )
    assert (h100.mem_total, h100.mem_used, h100.temperature_c) == (80 * GIB, 40 * GIB, 71.0)
    assert (h100.power_w, h100.power_limit_w, h100.fan_percent) == (612.345, 700.0, 55)
    assert (a100.index, a100.name, a100.mem_used) == (1, "NVIDIA A100-SXM4-40GB", 5 * GIB)
    owners = {p.pid: (p.agent_id, p.used_memory) for gpu in snapshot.gpus for p in gpu.processes}
    assert owners == {
        child: ("trainer", 30 * GIB),  # the agent's child: joined through its parent
        stranger: (None, 2 * GIB),
        agent_pid: ("trainer", 4 * GIB),
    }
    assert agent_in(snapshot, "trainer").gpu_mem_bytes == 34 * GIB, "summed over both GPUs"
    assert agent_in(snapshot, "idle").gpu_mem_bytes is None


async def test_without_an_nvidia_driver_the_snapshot_says_no_driver(tmp_path: Path) -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        reason = str(exc)
    else:
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present: the no-driver path cannot be taken here")
    snapshot = await snapshot_of(tmp_path / "node")
    assert snapshot.gpus == ()
    assert (snapshot.gpu_status.status, snapshot.gpu_status.reason) == ("no_driver", reason)
    assert snapshot.system.cpu_count == os.cpu_count()


# --- 12. the console on this machine ---------------------------------------------------------------------


async def test_the_console_on_the_local_node_shows_how_to_start_and_no_gpu(tmp_path: Path) -> None:
    if nvidia_driver_present():
        pytest.skip("this machine has an NVIDIA driver: the GPU tab shows real GPUs")
    from console.app import FleetDeckApp
    from console.core.clock import SystemClock
    from console.core.config import Config
    from console.core.fleet_setup import local_link
    from console.snapshot import screen_text
    from widgets.gpu_panel import GpuPanel

    clock = SystemClock()
    link = local_link(clock, state_dir=str(tmp_path / "node"))
    app = FleetDeckApp([link], config=Config(), clock=clock, frozen=False)
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 30
        while link.snapshot is None:
            assert time.monotonic() < deadline, "the local node was never polled"
            await pilot.pause(0.1)
        await pilot.pause()
        text = screen_text(app)
        assert "local" in text
        assert "No agents on this node yet" in text and "fleetdeck run --name NAME" in text
        await pilot.press("2")
        await pilot.pause()
        panel = app.screen.query_one(GpuPanel)
        assert panel.query(".no-gpu"), "the GPU panel shows its no-GPU state"
        text = screen_text(app)
        assert "No NVIDIA GPU" in text
        assert (link.snapshot.gpu_status.reason or "")[:20] in text.replace("\n", " ")
    await link.backend.close()


def test_config_thresholds_reach_the_local_nodes_health_judgement(tmp_path) -> None:
    from console.core.config import Config, Thresholds
    from console.core.fleet_setup import local_link

    config = Config(thresholds=Thresholds(heartbeat_stale_s=(1.0, 2.0), error_log_rate_per_min=(3.0, 4.0)))
    link = local_link(lambda: 0.0, state_dir=str(tmp_path), config=config)
    assert link.backend.thresholds.heartbeat_stale_s == (1.0, 2.0)  # type: ignore[attr-defined]
    assert link.backend.thresholds.error_rate_per_min == (3.0, 4.0)  # type: ignore[attr-defined]
