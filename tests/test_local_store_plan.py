"""The local store's plan, tasks and checkpoints, on real SQLite files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.errors import Conflict, Invalid, NotFound
from backends.local.store import PlanCriterion, PlanMilestone, PlanPhase, Store

T0 = 1_767_225_600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store(tmp_path / "node", clock=clock) as opened:
        yield opened


# --- plan ----------------------------------------------------------------------------------------------


def _plan(target: float = 120.0, *, with_w2: bool = True, name: str = "W1 Load test") -> list[PlanPhase]:
    w1 = PlanMilestone(
        "m1",
        name,
        [
            PlanCriterion("P95 latency", op="<", value=target, unit="ms"),
            PlanCriterion("Sign-off", target="ops"),
        ],
    )
    w2 = PlanMilestone("m2", "W2 Failover", [PlanCriterion("Rollback time", op="<", value=5, unit="s")])
    return [
        PlanPhase("p1", "Scale-out", 1, due_at=T0 + 86400, milestones=[w1, w2] if with_w2 else [w1]),
        PlanPhase("p2", "Hardening", 2, agents_globs=["hard-*"]),
    ]


def test_reapplying_the_plan_updates_shape_and_keeps_progress(store: Store, clock: Clock) -> None:
    store.apply_plan(_plan())
    store.set_milestone("m1", "passed", {"P95 latency": 97, "Sign-off": "alice"})
    # over its line: a milestone whose every criterion is a number passes only once they all hold
    store.set_milestone("m2", criteria={"Rollback time": "6.2 s"})
    started = store.phases()[0].started_at
    clock.now += 100
    phases = store.apply_plan(_plan(target=100, name="W1 Load test at 2x"))
    m1 = phases[0].milestones[0]
    assert (m1.name, m1.status, m1.criteria[0].target, m1.criteria[0].actual) == (
        "W1 Load test at 2x",
        "passed",
        "< 100 ms",
        "97 ms",
    )
    assert phases[0].milestones[1].status == "active" and phases[0].started_at == started == T0
    assert phases[0].progress == 0.5 and phases[0].status == "active"
    phases = store.apply_plan(_plan(with_w2=False)[:1])
    assert [p.id for p in phases] == ["p1"] and [m.id for m in phases[0].milestones] == ["m1"]
    assert phases[0].status == "done" and phases[0].finished_at == clock.now and phases[0].progress == 1.0
    with pytest.raises(Invalid, match="twice"):
        store.apply_plan([PlanPhase("x", "X", 1), PlanPhase("x", "Y", 2)])
    with pytest.raises(NotFound, match="no criterion"):
        store.set_milestone("m1", criteria={"Nope": 1})


def test_criteria_are_judged_and_the_gate_names_what_fails(store: Store) -> None:
    store.apply_plan(_plan())
    assert store.phases()[0].gate.reasons == ("waiting for W1 Load test, W2 Failover",)
    store.set_milestone("m1", criteria={"P95 latency": "P95 = 135 ms"})
    phase = store.phases()[0]
    assert [c.passed for c in phase.milestones[0].criteria] == [False, None]
    assert (phase.gate.decision, phase.gate.reasons) == (
        "no-go",
        ("P95 latency: P95 = 135 ms (target < 120 ms)",),
    )
    store.set_milestone("m1", "passed", {"P95 latency": 97.5, "Sign-off": "alice"})
    store.set_milestone("m2", "failed")
    phase = store.phases()[0]
    assert [c.passed for c in phase.milestones[0].criteria] == [True, True]
    assert (phase.status, phase.gate.reasons) == ("blocked", ("W2 Failover failed",))
    store.set_milestone("m2", "passed", {"Rollback time": 3.1})
    phase = store.phases()[0]
    assert (phase.status, phase.gate.decision, phase.gate.reasons) == (
        "done",
        "go",
        ("all 3 criteria passed",),
    )


def test_phase_status_from_agents_and_operator(store: Store) -> None:
    store.apply_plan(_plan())
    store.register_agent("hard-1", kind="reporting", state="idle")
    assert store.phases()[1].status == "pending" and store.phases()[1].progress is None
    store.heartbeat("hard-1", state="running", progress=0.4)
    phase = store.phases()[1]
    assert (phase.status, phase.progress, phase.gate.decision) == ("active", 0.4, "pending")
    assert store.get_agent("hard-1").phase_id == "p2"
    store.set_phase_status("p2", "paused")
    assert store.phases()[1].status == "paused"
    store.set_phase_status("p2", None)
    assert store.phases()[1].status == "active"
    with pytest.raises(NotFound, match="known: p1, p2"):
        store.set_phase_status("p9", "paused")


# --- tasks and checkpoints -----------------------------------------------------------------------------


def test_tasks_are_claimed_oldest_first_and_finished_once(store: Store, clock: Clock) -> None:
    store.register_agent("a1", kind="reporting")
    first = store.create_task("train", "a1", {"lr": 0.1}, "alice")
    clock.now += 1
    second = store.create_task("eval", "agent:a1", {}, "alice")
    assert first.target == second.target == "agent:a1" and first.status == "queued"
    claimed = store.claim_task("a1")
    assert claimed is not None and (claimed.id, claimed.status, claimed.attempts) == (first.id, "running", 1)
    done = store.finish_task(first.id, result={"loss": 0.1})
    assert (done.status, done.result) == ("succeeded", {"loss": 0.1})
    with pytest.raises(Conflict, match="already succeeded"):
        store.finish_task(first.id, error="late")
    assert store.claim_task("a1").id == second.id  # type: ignore[union-attr]
    assert store.claim_task("a1") is None
    assert store.finish_task(second.id, error="OOM").status == "failed"
    assert [t.id for t in store.tasks()] == [second.id, first.id]
    clock.now += 1
    waiting = store.create_task("train", "a1", {}, "alice")
    clock.now += 1
    store.finish_task(store.create_task("train", "a1", {}, "bob").id, result=1)
    assert [t.id for t in store.tasks(limit=1)] == [waiting.id]  # unfinished work is never crowded out
    with pytest.raises(NotFound, match="no agent 'ghost'"):
        store.create_task("train", "ghost", {}, "alice")
    with pytest.raises(Invalid):
        store.create_task("train", "node:x", {}, "alice")


def test_checkpoint_capture_and_restore(store: Store, clock: Clock) -> None:
    store.apply_plan(_plan())
    for name in ("a1", "a2"):
        store.register_agent(name, kind="reporting")
    store.set_agent_state("a2", "paused")
    store.set_milestone("m1", "passed", {"P95 latency": 97, "Sign-off": "alice"})
    kept = store.create_task("train", "a1", {}, "alice")
    checkpoint = store.add_checkpoint("before load test", "alice", phase_id="p1", covers=["a1", "a2"])
    assert re.fullmatch(r"cp-\d{8}-\d{6}-[0-9a-f]{4}", checkpoint.id)
    clock.now += 60
    store.set_milestone("m1", "failed", {"P95 latency": 180})
    store.claim_task("a1")
    later = store.create_task("eval", "a1", {}, "bob")
    store.set_agent_state("a2", "running")
    automatic = store.add_checkpoint("auto", "bob", automatic=True)
    assert [c.id for c in store.checkpoints()] == [automatic.id, checkpoint.id]
    record = store.checkpoint_record(checkpoint.id)
    assert record.checkpoint == store.get_checkpoint(checkpoint.id) and record.checkpoint.covers == (
        "a1",
        "a2",
    )
    holds = store.restore_state(record.state)
    assert holds == {"a2": "paused"}
    m1 = store.phases()[0].milestones[0]
    assert (m1.status, m1.criteria[0].actual) == ("passed", "97 ms")
    assert store.get_task(kept.id).status == "queued" and store.get_task(later.id).status == "rolled_back"
    with pytest.raises(NotFound, match="no checkpoint"):
        store.get_checkpoint("cp-nope")


def test_snapshot_parts_reads_everything_at_once(store: Store) -> None:
    store.apply_plan(_plan())
    store.register_agent("a1", kind="reporting")
    store.create_task("train", "a1", {}, "alice")
    store.add_checkpoint("one", "alice")
    agents, phases, tasks, checkpoints = store.snapshot_parts()
    assert ([a.id for a in agents], [p.id for p in phases], len(tasks), len(checkpoints)) == (
        ["a1"],
        ["p1", "p2"],
        1,
        1,
    )
