"""The demo backend: a deterministic, lively fleet where every operator action works and is audited."""

from __future__ import annotations

import asyncio
import itertools
import pathlib
import re
from collections import Counter
from collections.abc import AsyncGenerator

import pytest

from backends import errors
from backends.demo import DemoBackend, demo_fleet, genesis_for
from backends.demo.backend import DemoOptions
from backends.model import (
    ALL_CAPABILITIES,
    LOG_LEVELS,
    Agent,
    DispatchRequest,
    LogRecord,
    NodeSnapshot,
    Target,
    from_json,
    to_json,
)
from backends.plugin import NodeSettings
from backends.registry import resolve

T0 = 1767225600.0  # 2026-01-01 00:00 UTC, on the hour, as the snapshot tests freeze it


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def agent(snapshot: NodeSnapshot, agent_id: str) -> Agent:
    return next(a for a in snapshot.agents if a.id == agent_id)


async def read_logs(node: DemoBackend, since_seq: int = 0) -> list[LogRecord]:
    return [record async for record in node.logs(since_seq)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def prod(clock: ManualClock) -> DemoBackend:
    return demo_fleet(clock=clock)[0]


# --- determinism ---------------------------------------------------------------------------------------


async def test_same_seed_and_time_give_identical_snapshots_and_logs_whatever_was_read_before() -> None:
    quiet_clock, busy_clock = ManualClock(), ManualClock()
    quiet, busy = demo_fleet(clock=quiet_clock), demo_fleet(clock=busy_clock)
    for t in (T0 - 60, T0 + 59, T0 - 13.5, T0 + 4000, T0 + 7):  # step back and forth across history
        busy_clock.t = t
        for node in busy:
            await node.snapshot()
            await read_logs(node)
    quiet_clock.t = busy_clock.t = T0 + 42.5
    for a, b in zip(quiet, busy, strict=True):
        assert to_json(await a.snapshot()) == to_json(await b.snapshot())
        assert [to_json(r) for r in await read_logs(a)] == [to_json(r) for r in await read_logs(b)]


async def test_a_different_seed_gives_a_different_fleet(clock: ManualClock) -> None:
    seven, eight = demo_fleet(seed=7, clock=clock), demo_fleet(seed=8, clock=clock)
    for a, b in zip(seven, eight, strict=True):
        assert to_json(await a.snapshot()) != to_json(await b.snapshot())
    assert [to_json(r) for r in await read_logs(seven[0])] != [to_json(r) for r in await read_logs(eight[0])]


async def test_genesis_is_the_construction_time_floored_to_the_hour() -> None:
    early, late = ManualClock(T0 + 10), ManualClock(T0 + 3000)
    first, second = DemoBackend(clock=early), DemoBackend(clock=late)
    assert first.genesis == second.genesis == genesis_for(T0 + 3599.9) == T0
    assert DemoBackend(clock=ManualClock(T0 + 3600)).genesis == T0 + 3600
    early.t = late.t = T0 + 3500  # built at different moments of the same hour: the same picture
    assert to_json(await first.snapshot()) == to_json(await second.snapshot())
    assert DemoBackend(clock=early, genesis=T0 - 86400).genesis == T0 - 86400


# --- the fleet's shape ---------------------------------------------------------------------------------


async def test_the_default_fleet_has_three_distinct_nodes_and_80_agents(clock: ManualClock) -> None:
    fleet = demo_fleet(clock=clock)
    snaps = [await node.snapshot() for node in fleet]
    assert [s.node.name for s in snaps] == ["gpu-prod-01", "gpu-stage-02", "cpu-dev-03"]
    assert [s.node.environment for s in snaps] == ["production", "staging", "dev"]
    assert [len(s.gpus) for s in snaps] == [8, 4, 0]
    assert snaps[0].gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert [s.gpu_status.status for s in snaps] == ["ok", "ok", "no_driver"]
    assert snaps[2].gpu_status.reason == "NVML Shared Library Not Found"
    assert sum(len(s.agents) for s in snaps) == 80
    for s in snaps:
        assert s.node.capabilities == ALL_CAPABILITIES
        assert s.node.backend == "demo" and s.node.hostname and s.node.labels["region"]
        assert not s.node.read_only
        assert all(a.labels["role"] and a.labels["team"] for a in s.agents)
        assert all(re.fullmatch(r"[a-z-]+-\d\d", a.name) for a in s.agents)
    agents = [a for s in snaps for a in s.agents]
    roles = Counter(a.labels["role"] for a in agents)
    for role in (
        "planner",
        "coder",
        "reviewer",
        "tester",
        "model-manager",
        "obs-hub",
        "retriever",
        "embedder",
    ):
        assert roles[role] >= 1, role
    assert {a.kind for a in agents} == {"process", "reporting", "actor"}
    assert not [a for a in snaps[2].agents if a.gpu_mem_bytes]  # no GPUs, no GPU holders


async def test_the_plan_has_done_active_and_pending_phases_and_a_no_go_gate(prod: DemoBackend) -> None:
    snap = await prod.snapshot()
    phases = snap.phases
    assert 4 <= len(phases) <= 5
    assert [p.status for p in phases] == ["done", "done", "active", "pending", "pending"]
    assert all(p.due_at and p.milestones and all(m.criteria for m in p.milestones) for p in phases)
    active = phases[2]
    assert active.progress is not None and 0.5 < active.progress < 1
    assert active.due_at is not None and 0 < active.due_at - snap.observed_at < 3 * 86400
    criteria = [c for m in active.milestones for c in m.criteria]
    assert {c.passed for c in criteria} == {True, False, None}
    failing = [c for c in criteria if c.passed is False]
    assert active.gate.decision == "no-go"
    # the gate names each failing criterion with its live figure, then its no-go triggers
    for criterion, reason in zip(failing, active.gate.reasons, strict=False):
        assert reason == f"{criterion.name}: {criterion.actual}, target {criterion.target}"
    triggers = active.gate.reasons[len(failing) :]
    assert triggers[0].startswith("No-Go: any agent crash-looping — TRIGGERED (")
    assert len(triggers) == 2 and triggers[1].endswith("— clear")
    assert all(c.kpi for m in active.milestones if m.id == "p3-w7" for c in m.criteria)
    assert phases[0].gate.decision == "go" and phases[3].gate.decision == "pending"
    phase_ids = {p.id for p in phases}
    assert {a.phase_id for a in snap.agents} - {None} <= phase_ids
    assert any(a.phase_id == active.id for a in snap.agents)


async def test_the_active_phase_progresses_as_time_passes(prod: DemoBackend, clock: ManualClock) -> None:
    before = (await prod.snapshot()).phases[2].progress
    clock.advance(1800)
    after = (await prod.snapshot()).phases[2].progress
    assert before is not None and after is not None and after > before


async def test_gpu_processes_belong_to_the_gpu_agents_of_their_node(prod: DemoBackend) -> None:
    snap = await prod.snapshot()
    by_id = {a.id: a for a in snap.agents}
    held: Counter[str] = Counter()
    for gpu in snap.gpus:
        assert gpu.mem_used is not None and gpu.mem_total is not None and gpu.mem_used <= gpu.mem_total
        assert gpu.power_w is not None and gpu.power_limit_w is not None and gpu.power_w <= gpu.power_limit_w
        for process in gpu.processes:
            assert process.agent_id is not None
            owner = by_id[process.agent_id]
            assert owner.pid == process.pid
            assert owner.labels["role"] in ("model-manager", "embedder")
            held[owner.id] += process.used_memory or 0
    assert held, "an 8-GPU production node serves models"
    for agent_id, total in held.items():
        assert by_id[agent_id].gpu_mem_bytes == total


# --- trouble -------------------------------------------------------------------------------------------


async def test_trouble_is_visible_at_any_moment_and_every_kind_shows_up(clock: ManualClock) -> None:
    fleet = demo_fleet(clock=clock)
    seen: set[str] = set()
    for step in range(0, 1200, 7):
        clock.t = T0 + step
        snaps = [await node.snapshot() for node in fleet]
        agents = [a for s in snaps for a in s.agents]
        assert any(a.health in ("degraded", "unhealthy") for a in agents), f"nothing wrong at +{step}s"
        seen |= {a.state for a in agents if a.state in ("failed", "starting")}
        seen |= {"degraded" for a in agents if a.health == "degraded" and a.health_reason}
        seen |= {"stale" for a in agents if (a.health_reason or "").startswith("no heartbeat for")}
        seen |= {"hot" for s in snaps for g in s.gpus if (g.temperature_c or 0) > 85}
    assert seen == {"failed", "starting", "degraded", "stale", "hot"}


async def test_a_crashing_agent_fails_restarts_and_counts_its_restarts(
    prod: DemoBackend, clock: ManualClock
) -> None:
    crasher = prod.world.trouble.crash_id
    assert crasher is not None
    views = []
    for step in range(0, 600, 2):
        clock.t = T0 + step
        views.append(agent(await prod.snapshot(), crasher))
    states = [a.state for a in views]
    first_fail = states.index("failed")
    down = views[first_fail]
    assert down.health == "unhealthy" and down.pid is None
    assert down.health_reason and "exited with code 137" in down.health_reason
    after = states[first_fail:]
    starting = after.index("starting")
    assert {"running", "idle"} & set(after[starting:]), "it comes back up"
    assert "failed" in after[starting:], "and crashes again: a loop"
    back_up = views[first_fail + starting]
    assert back_up.pid is not None and back_up.restarts == down.restarts + 1
    restarts = [a.restarts for a in views]
    assert restarts == sorted(restarts) and restarts[-1] >= restarts[0] + 2


async def test_a_stalled_agent_stops_heartbeating_and_says_for_how_long(
    prod: DemoBackend, clock: ManualClock
) -> None:
    stalled = prod.world.trouble.stall_id
    assert stalled is not None
    for step in range(0, 600, 5):
        clock.t = T0 + step
        a = agent(await prod.snapshot(), stalled)
        if a.health == "unhealthy":
            break
    else:
        pytest.fail("the stalled agent never went unhealthy within one stall period")
    assert a.health_reason and re.fullmatch(r"no heartbeat for \d+ s", a.health_reason)
    clock.advance(10)
    later = agent(await prod.snapshot(), stalled)
    assert later.last_heartbeat == a.last_heartbeat
    age = int(later.health_reason.split()[3]) if later.health_reason else 0
    assert age > int(a.health_reason.split()[3])


async def test_metrics_move_smoothly_over_time(prod: DemoBackend, clock: ManualClock) -> None:
    first = await prod.snapshot()
    clock.advance(1)
    next_second = await prod.snapshot()
    clock.advance(59)
    minute = await prod.snapshot()
    assert first.system.cpu_percent != minute.system.cpu_percent
    assert first.system.mem_used != minute.system.mem_used
    assert [g.util_percent for g in first.gpus] != [g.util_percent for g in minute.gpus]
    assert [g.mem_used for g in first.gpus] != [g.mem_used for g in minute.gpus]
    assert [a.cpu_percent for a in first.agents] != [a.cpu_percent for a in minute.agents]
    for a, b in zip(first.gpus, next_second.gpus, strict=True):  # no jumps from one second to the next
        assert abs((a.temperature_c or 0) - (b.temperature_c or 0)) <= 3
    system = minute.system
    assert system.cpu_count and system.load_avg and system.mem_total and system.disk_total and system.uptime_s
    assert system.mem_used is not None and system.mem_used < system.mem_total
    assert system.uptime_s > 86400 and first.system.uptime_s is not None
    assert next_second.system.uptime_s == pytest.approx(first.system.uptime_s + 1)


# --- logs ----------------------------------------------------------------------------------------------


async def test_logs_show_every_level_at_a_realistic_rate(prod: DemoBackend, clock: ManualClock) -> None:
    clock.advance(600)
    records = [r for r in await read_logs(prod) if r.ts >= T0]
    first_minutes = [r for r in records if r.ts < T0 + 300]
    levels = Counter(r.level for r in first_minutes)
    assert set(levels) == set(LOG_LEVELS)
    assert levels["info"] + levels["debug"] > 0.7 * len(first_minutes)
    assert levels["error"] + levels["critical"] < 0.1 * len(first_minutes)
    assert 1 <= len(first_minutes) / 300 <= 10
    agent_ids = {a.id for a in (await prod.snapshot()).agents}
    assert {r.source for r in records} <= agent_ids | {"node"}
    assert sum(1 for r in records if r.fields) > 0.5 * len(records)
    messages = " | ".join(r.message for r in records)  # the simulated trouble is narrated too
    assert "exited with code 137" in messages and "no heartbeat from" in messages


async def test_log_seq_increases_and_since_seq_resumes_exactly(prod: DemoBackend, clock: ManualClock) -> None:
    records = await read_logs(prod)
    assert records, "a fresh node already has a backlog"
    assert records[0].ts >= T0 - 600  # the backlog starts 600 s before genesis
    seqs = [r.seq for r in records]
    assert all(a < b for a, b in itertools.pairwise(seqs))
    middle = seqs[len(seqs) // 2]
    assert await read_logs(prod, middle) == [r for r in records if r.seq > middle]
    clock.advance(20)
    newer = await read_logs(prod, seqs[-1])
    assert newer and all(r.seq > seqs[-1] for r in newer)
    assert all(r.ts <= clock.t for r in newer)


async def test_follow_yields_new_lines_as_the_clock_advances(prod: DemoBackend, clock: ManualClock) -> None:
    prod.poll_interval_s = 0.01
    last = (await read_logs(prod))[-1].seq
    stream = prod.logs(last, follow=True)
    assert isinstance(stream, AsyncGenerator)  # so it can be closed, like the console's log worker does
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not pending.done(), "nothing new until the clock moves"
    clock.advance(5)
    record = await asyncio.wait_for(pending, timeout=2)
    assert record.seq > last and T0 < record.ts <= clock.t
    more = await asyncio.wait_for(anext(stream), timeout=2)
    assert more.seq > record.seq
    await stream.aclose()


async def test_a_waiting_follower_can_be_cancelled(prod: DemoBackend) -> None:
    prod.poll_interval_s = 0.01
    last = (await read_logs(prod))[-1].seq
    waiting = asyncio.ensure_future(anext(prod.logs(last, follow=True)))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


# --- actions -------------------------------------------------------------------------------------------


async def test_dispatch_to_an_agent_runs_a_task_to_completion(prod: DemoBackend, clock: ManualClock) -> None:
    task = await prod.dispatch(
        DispatchRequest(agent_id="coder-01", payload={"pr": 512}, kind="review"),
        operator="alice",
        reason="demo",
    )
    assert (task.status, task.target, task.submitted_by, task.payload) == (
        "queued",
        "agent:coder-01",
        "alice",
        {"pr": 512},
    )
    clock.advance(3)
    snap = await prod.snapshot()
    assert next(t for t in snap.tasks if t.id == task.id).status == "running"
    assert agent(snap, "coder-01").current_task == task.id
    clock.advance(120)
    done = next(t for t in (await prod.snapshot()).tasks if t.id == task.id)
    assert done.status in ("succeeded", "failed") and done.attempts == 1
    entry = (await prod.audit())[-1]
    assert (entry.operator, entry.action, entry.target, entry.reason, entry.outcome) == (
        "alice",
        "dispatch",
        "agent:coder-01",
        "demo",
        "ok",
    )
    assert task.id in (entry.detail or "")


async def test_dispatching_a_command_starts_a_new_agent(prod: DemoBackend, clock: ManualClock) -> None:
    task = await prod.dispatch(
        DispatchRequest(command=("python", "train.py"), name="trainer-01"), operator="bob"
    )
    assert task.kind == "command" and task.target == "agent:trainer-01"
    assert agent(await prod.snapshot(), "trainer-01").state == "starting"
    clock.advance(30)
    snap = await prod.snapshot()
    assert agent(snap, "trainer-01").state == "running"
    assert next(t for t in snap.tasks if t.id == task.id).status == "succeeded"
    with pytest.raises(errors.Conflict, match=r"trainer-01.*already exists"):
        await prod.dispatch(DispatchRequest(command=("sleep", "1"), name="trainer-01"), operator="bob")
    unnamed = await prod.dispatch(DispatchRequest(command=("/usr/bin/python3", "-m", "x")), operator="bob")
    assert unnamed.target == "agent:python3-01"


async def test_unknown_ids_are_not_found_with_a_message_naming_what_exists(prod: DemoBackend) -> None:
    with pytest.raises(
        errors.NotFound, match=r"no agent 'coder-1' on node gpu-prod-01 .*did you mean coder-01"
    ):
        await prod.dispatch(DispatchRequest(agent_id="coder-1"), operator="alice")
    with pytest.raises(errors.NotFound, match=r"no phase 'p9' .*p3-scale-out"):
        await prod.pause(Target(kind="phase", id="p9"), operator="alice")
    with pytest.raises(errors.NotFound, match=r"no task 'task-9999' .*task-0401"):
        await prod.stop(Target(kind="task", id="task-9999"), operator="alice")
    with pytest.raises(errors.NotFound, match=r"no checkpoint 'ckpt-0999' .*ckpt-0011"):
        await prod.rollback("ckpt-0999", operator="alice")
    failed = [e for e in await prod.audit() if e.outcome == "failed"]
    assert [e.action for e in failed] == ["dispatch", "pause", "stop", "rollback"]
    assert all(e.operator == "alice" and e.detail and "no " in e.detail for e in failed)


async def test_pause_and_resume_an_agent(prod: DemoBackend) -> None:
    target = Target.parse("reviewer-01")
    await prod.pause(target, operator="alice", reason="noisy")
    paused = agent(await prod.snapshot(), "reviewer-01")
    assert paused.state == "paused" and "alice" in (paused.message or "")
    with pytest.raises(errors.Conflict, match="already paused"):
        await prod.pause(target, operator="alice")
    await prod.resume(target, operator="alice")
    assert agent(await prod.snapshot(), "reviewer-01").state in ("running", "idle")
    with pytest.raises(errors.Conflict, match=r"reviewer-01 is (running|idle), not paused"):
        await prod.resume(target, operator="alice")
    actions = [(e.action, e.outcome) for e in (await prod.audit())[-4:]]
    assert actions == [("pause", "ok"), ("pause", "failed"), ("resume", "ok"), ("resume", "failed")]


async def test_pausing_a_phase_pauses_the_phase_and_its_agents(prod: DemoBackend) -> None:
    phase = Target(kind="phase", id="p3-scale-out")
    await prod.pause(phase, operator="carol", reason="p95 over budget")
    snap = await prod.snapshot()
    assert next(p for p in snap.phases if p.id == "p3-scale-out").status == "paused"
    members = [a for a in snap.agents if a.phase_id == "p3-scale-out"]
    assert members and all(a.state == "paused" for a in members)
    assert all(a.state != "paused" for a in snap.agents if a.phase_id is None)
    with pytest.raises(errors.Conflict, match="resume phase:p3-scale-out"):
        await prod.resume(Target(kind="agent", id=members[0].id), operator="carol")
    with pytest.raises(errors.Conflict, match="only the active phase"):
        await prod.pause(Target(kind="phase", id="p1-foundation"), operator="carol")
    await prod.resume(phase, operator="carol")
    snap = await prod.snapshot()
    assert next(p for p in snap.phases if p.id == "p3-scale-out").status == "active"
    assert not [a for a in snap.agents if a.state == "paused"]


async def test_stopping_an_agent_frees_its_gpus_and_it_cannot_be_resumed(prod: DemoBackend) -> None:
    await prod.stop(Target.parse("model-manager-01"), operator="alice", reason="drain")
    snap = await prod.snapshot()
    stopped = agent(snap, "model-manager-01")
    assert (stopped.state, stopped.pid, stopped.gpu_mem_bytes) == ("stopped", None, None)
    assert not [p for g in snap.gpus for p in g.processes if p.agent_id == "model-manager-01"]
    task_0405 = next(t for t in snap.tasks if t.id == "task-0405")  # its running benchmark is cancelled
    assert task_0405.status == "cancelled"
    with pytest.raises(errors.Conflict, match="stopped agent cannot be resumed"):
        await prod.resume(Target.parse("model-manager-01"), operator="alice")
    with pytest.raises(errors.Conflict, match="cannot take work"):
        await prod.dispatch(DispatchRequest(agent_id="model-manager-01"), operator="alice")


async def test_pause_resume_and_stop_a_task(prod: DemoBackend, clock: ManualClock) -> None:
    task = await prod.dispatch(DispatchRequest(agent_id="tester-01"), operator="bob")
    target = Target(kind="task", id=task.id)
    await prod.pause(target, operator="bob")
    clock.advance(600)  # a paused task does not finish on its own
    assert next(t for t in (await prod.snapshot()).tasks if t.id == task.id).status == "paused"
    await prod.resume(target, operator="bob")
    assert next(t for t in (await prod.snapshot()).tasks if t.id == task.id).status in ("queued", "running")
    await prod.stop(target, operator="bob", reason="wrong suite")
    assert next(t for t in (await prod.snapshot()).tasks if t.id == task.id).status == "cancelled"
    with pytest.raises(errors.Conflict, match="already cancelled"):
        await prod.stop(target, operator="bob")
    with pytest.raises(errors.Conflict, match="not paused"):
        await prod.resume(Target(kind="task", id="task-0401"), operator="bob")


async def test_checkpoint_and_rollback_restore_what_operators_changed(
    prod: DemoBackend, clock: ManualClock
) -> None:
    checkpoint = await prod.checkpoint("before the experiment", operator="alice")
    assert not checkpoint.automatic and checkpoint.created_by == "alice"
    assert "phase:p3-scale-out" in checkpoint.covers and "agent:coder-01" in checkpoint.covers
    clock.advance(10)
    await prod.pause(Target.parse("coder-01"), operator="bob")
    task = await prod.dispatch(DispatchRequest(agent_id="tester-01"), operator="bob")
    await prod.dispatch(DispatchRequest(command=("sleep", "600"), name="sleeper"), operator="bob")
    clock.advance(10)
    safety = await prod.rollback(checkpoint.id, operator="carol", reason="experiment failed")
    assert safety.automatic and checkpoint.id in safety.label and safety.created_by == "carol"
    snap = await prod.snapshot()
    assert agent(snap, "coder-01").state != "paused"
    assert "sleeper" not in {a.id for a in snap.agents}
    assert next(t for t in snap.tasks if t.id == task.id).status == "rolled_back"
    assert [c.id for c in snap.checkpoints][-2:] == [checkpoint.id, safety.id]
    entry = (await prod.audit())[-1]
    assert (entry.action, entry.operator, entry.reason, entry.outcome) == (
        "rollback",
        "carol",
        "experiment failed",
        "ok",
    )
    assert safety.id in (entry.detail or "")
    await prod.rollback(safety.id, operator="carol")  # and the rollback itself can be undone
    snap = await prod.snapshot()
    assert agent(snap, "coder-01").state == "paused" and "sleeper" in {a.id for a in snap.agents}


async def test_a_read_only_node_denies_every_action(clock: ManualClock) -> None:
    node = demo_fleet(clock=clock, read_only=True)[0]
    assert node.info.read_only
    before = to_json(await node.snapshot())
    actions = [
        node.dispatch(DispatchRequest(agent_id="coder-01"), operator="eve"),
        node.pause(Target.parse("coder-01"), operator="eve"),
        node.resume(Target.parse("coder-01"), operator="eve"),
        node.stop(Target.parse("phase:p3-scale-out"), operator="eve"),
        node.checkpoint("x", operator="eve"),
        node.rollback("ckpt-0011", operator="eve"),
    ]
    for action in actions:
        with pytest.raises(errors.Forbidden, match="node gpu-prod-01 is read-only"):
            await action
    denied = [e for e in await node.audit() if e.operator == "eve"]
    assert [e.outcome for e in denied] == ["denied"] * 6
    assert [e.action for e in denied] == ["dispatch", "pause", "resume", "stop", "checkpoint", "rollback"]
    assert to_json(await node.snapshot()) == before


async def test_audit_since_seq_returns_only_later_entries(prod: DemoBackend) -> None:
    seeded = await prod.audit()
    assert seeded and [e.seq for e in seeded] == list(range(1, len(seeded) + 1))
    await prod.checkpoint("one", operator="alice")
    await prod.checkpoint("two", operator="bob", reason="nightly drill")
    later = await prod.audit(seeded[-1].seq)
    assert [(e.operator, e.params["label"], e.reason) for e in later] == [
        ("alice", "one", None),
        ("bob", "two", "nightly drill"),
    ]
    assert await prod.audit(later[-1].seq) == []


async def test_a_fresh_node_already_has_task_and_checkpoint_history(prod: DemoBackend) -> None:
    snap = await prod.snapshot()
    assert {"succeeded", "failed", "cancelled", "running", "queued"} <= {t.status for t in snap.tasks}
    assert any(c.automatic for c in snap.checkpoints) and any(not c.automatic for c in snap.checkpoints)
    assert all(t.created_at <= snap.observed_at for t in snap.tasks)


# --- scale and wiring ----------------------------------------------------------------------------------


async def test_a_hundred_node_fleet_builds_and_its_snapshots_round_trip() -> None:
    fleet = demo_fleet(nodes=100, agents=10_000, clock=ManualClock())
    assert len(fleet) == 100 and len({n.info.name for n in fleet}) == 100
    snaps = [n.snapshot_at(T0) for n in (fleet[0], fleet[57], fleet[99])]
    assert sum(len(n.world.roster) for n in fleet) == 10_000
    assert {n.info.environment for n in fleet} == {"production", "staging", "dev"}
    assert {len(n.snapshot_at(T0).gpus) for n in fleet} >= {0, 8}
    for snap in snaps:
        assert 40 <= len(snap.agents) <= 200
        assert from_json(to_json(snap), NodeSnapshot) == snap


def test_fleet_sizes_are_validated() -> None:
    with pytest.raises(errors.Invalid, match="1 to"):
        demo_fleet(nodes=0)
    with pytest.raises(errors.Invalid, match="-1 agents"):
        demo_fleet(agents=-1)


def test_the_registry_builds_a_demo_node_from_a_config_entry(clock: ManualClock) -> None:
    cls = resolve("demo")
    assert cls is DemoBackend
    entry = NodeSettings(  # a config [[nodes]] entry, as the backend is handed it
        name="lab-box",
        environment="staging",
        read_only=True,
        backend_options=DemoOptions(seed=3, options={"node_index": 1, "agents": 12}),
    )
    node = cls.from_config(entry, clock=clock)
    assert isinstance(node, DemoBackend)
    assert (node.info.name, node.info.environment, node.info.read_only, node.name) == (
        "lab-box",
        "staging",
        True,
        "demo",
    )
    assert len(node.snapshot_at(T0).agents) == 12 and len(node.snapshot_at(T0).gpus) == 4
    with pytest.raises(errors.Invalid, match="unknown demo option 'nodes'"):
        cls.from_config(
            NodeSettings(name="x", backend_options=DemoOptions(options={"nodes": 3})), clock=clock
        )
    with pytest.raises(errors.Invalid, match="'agents' must be a number"):
        cls.from_config(
            NodeSettings(name="x", backend_options=DemoOptions(options={"agents": "many"})), clock=clock
        )


def test_nothing_under_backends_demo_imports_textual() -> None:
    package = pathlib.Path(__file__).resolve().parents[1] / "backends" / "demo"
    sources = {path.name: path.read_text() for path in package.glob("*.py")}
    assert sources
    assert not [
        name for name, text in sources.items() if re.search(r"^\s*(import|from)\s+textual", text, re.M)
    ]
