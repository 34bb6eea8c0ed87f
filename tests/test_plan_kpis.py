"""Plan criteria bound to KPIs, gates that decide themselves, their history and operators' sign-offs: a
real plan file applied to a real SQLite store, figures reported as agents report them, a frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.errors import Forbidden, Invalid
from backends.local.backend import LocalBackend
from backends.local.plan_apply import apply_plan_file
from backends.local.planfile import PlanError, load_plan
from backends.local.store import Store
from backends.model import Phase

T0 = 1_796_000_000.0

PLAN = """
name = "Scale-out"

[[phases]]
id = "p3"
name = "Scale-out"
agents = ["retriever-*", "coder-*"]

  [[phases.milestones]]
  id = "w7-load"
  name = "W7 Load test"

    [[phases.milestones.criteria]]
    name = "P95 latency"
    kpi = "latency_p95_ms"
    target = "< 120 ms"
    over = "10m"
    agents = {role = "retriever"}

    [[phases.milestones.criteria]]
    name = "Success rate"
    kpi = "success_ratio"
    target = "≥ 99.9%"
    over = "10m"

  [phases.gate]
  criteria = ["w7-load/P95 latency", "Success rate"]

    [[phases.gate.no_go]]
    name = "any agent crash-looping"
    when = "crash_looping"

    [[phases.gate.no_go]]
    name = "error rate > 1%"
    kpi = "error_ratio"
    target = "> 1%"
    over = "5m"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path, clock: Clock, plan: Path) -> Iterator[Store]:
    with Store(tmp_path / "node", clock=clock) as opened:
        apply_plan_file(opened, plan, "alice")
        for name, role in (("retriever-1", "retriever"), ("retriever-2", "retriever"), ("coder-1", "coder")):
            opened.register_agent(name, kind="reporting", state="running", labels={"role": role})
        yield opened


def report(store: Store, clock: Clock, latency: float, *, success: float = 0.9995) -> None:
    """A minute of figures from every agent: the retrievers' latency, everyone's success ratio."""
    for _ in range(6):
        clock.now += 10
        for agent in ("retriever-1", "retriever-2"):
            store.heartbeat(agent, kpis={"latency_p95_ms": latency, "success_ratio": success})
        store.heartbeat("coder-1", kpis={"latency_p95_ms": 5000.0, "success_ratio": success})


def phase(store: Store) -> Phase:
    (only,) = store.phases()
    return only


def transitions(store: Store) -> list[tuple[str, str | None]]:
    return [(e.action, e.detail) for e in store.audit_since() if e.operator == "node"]


def test_a_bound_criterion_is_judged_live_and_the_gate_decides_and_records_each_change(
    store: Store, clock: Clock
) -> None:
    p3 = phase(store)
    assert p3.gate.decision == "pending" and transitions(store) == []
    p95 = p3.milestones[0].criteria[0]
    assert (p95.kpi, p95.actual, p95.passed) == ("latency_p95_ms", None, None)

    report(store, clock, latency=162)
    p3 = phase(store)
    p95, success = p3.milestones[0].criteria
    # the coder's 5 s does not count: the criterion matches role = retriever only
    assert p95.actual == "162 ms (p95 of 2 agents, 10 min)" and p95.passed is False
    assert p95.since == clock.now and success.passed is True
    assert p3.milestones[0].status == "active"
    assert p3.gate.decision == "no-go" and p3.gate.since == clock.now
    assert p3.gate.reasons == ("P95 latency: 162 ms (p95 of 2 agents, 10 min) (target < 120 ms)",)
    gate_changes = [d for a, d in transitions(store) if a == "gate.decision"]
    assert (
        len(gate_changes) == 1
        and "NO-GO" in (gate_changes[0] or "")
        and "P95 latency" in (gate_changes[0] or "")
    )
    failed_at = clock.now

    # many readers, one record: reading again changes nothing
    for _ in range(3):
        phase(store)
    assert len([a for a, _ in transitions(store) if a == "gate.decision"]) == 1
    clock.now += 30
    assert phase(store).gate.since == failed_at, "since is when the decision changed, not when it was read"

    # ten minutes of good figures push the slow ones out of the window
    for _ in range(10):
        report(store, clock, latency=97)
    p3 = phase(store)
    p95 = p3.milestones[0].criteria[0]
    assert p95.actual == "97 ms (p95 of 2 agents, 10 min)" and p95.passed is True
    assert p3.milestones[0].status == "passed", "every criterion is a number and all hold"
    assert p3.gate.decision == "go" and p3.gate.since == clock.now
    assert "No-Go: any agent crash-looping — clear (no agent restarted 3 times in 10 min)" in p3.gate.reasons
    gate_changes = [d for a, d in transitions(store) if a == "gate.decision"]
    assert len(gate_changes) == 2 and (gate_changes[1] or "").startswith("GO: ")
    entry = [e for e in store.audit_since() if e.action == "gate.decision"][-1]
    assert (entry.target, entry.outcome, entry.params) == ("phase:p3", "ok", {
        "subject": "gate:p3", "from": "no-go", "to": "go"})  # fmt: skip


def test_a_kpi_trigger_turns_the_gate_no_go_whatever_the_criteria_say(store: Store, clock: Clock) -> None:
    report(store, clock, latency=97)
    assert phase(store).gate.decision == "go"
    clock.now += 5
    store.heartbeat("coder-1", kpis={"error_ratio": 0.03})
    gate = phase(store).gate
    assert gate.decision == "no-go"
    assert gate.reasons[0] == "No-Go: error rate > 1% — TRIGGERED (3% (min of 1 agent, 5 min), line > 1%)"


def test_reapplying_the_plan_keeps_history_and_sign_offs(store: Store, clock: Clock, plan: Path) -> None:
    report(store, clock, latency=162)
    before = phase(store)
    store.sign_gate("p3", "go", "alice", "accepting the latency for the pilot")
    apply_plan_file(store, plan, "alice")
    plan.write_text(PLAN.replace('name = "W7 Load test"', 'name = "W7 Load test at 2x"'), encoding="utf-8")
    apply_plan_file(store, plan, "alice")
    after = phase(store)
    assert after.milestones[0].name == "W7 Load test at 2x"
    assert after.gate.decision == "no-go" and after.gate.since == before.gate.since
    assert after.milestones[0].criteria[0].since == before.milestones[0].criteria[0].since
    assert after.gate.signed is not None and after.gate.signed.operator == "alice"
    assert len([a for a, _ in transitions(store) if a == "gate.decision"]) == 1, "no transition re-recorded"


def test_a_sign_off_is_audited_and_shown_beside_the_decision_it_never_overrides(
    store: Store, clock: Clock
) -> None:
    report(store, clock, latency=162)
    gate = store.sign_gate("p3", "go", "alice", "pilot only")
    assert gate.decision == "no-go", "the figures decide"
    assert gate.signed is not None
    assert (gate.signed.decision, gate.signed.operator, gate.signed.at, gate.signed.reason) == (
        "go", "alice", clock.now, "pilot only")  # fmt: skip
    assert phase(store).gate.signed == gate.signed
    (entry,) = [e for e in store.audit_since() if e.action == "gate.sign"]
    assert (entry.operator, entry.target, entry.outcome, entry.reason) == (
        "alice",
        "phase:p3",
        "ok",
        "pilot only",
    )
    assert entry.detail == "signed GO; the figures say NO-GO"
    with pytest.raises(Invalid, match="not one of go, no-go"):
        store.sign_gate("p3", "maybe", "alice")


def test_a_bound_criterion_takes_no_reported_actual(store: Store) -> None:
    with pytest.raises(Invalid, match="bound to the KPI latency_p95_ms"):
        store.set_milestone("w7-load", criteria={"P95 latency": 97})


def test_a_read_only_node_refuses_sign_offs_and_records_no_history(
    tmp_path: Path, clock: Clock, plan: Path
) -> None:
    state = tmp_path / "node"
    with Store(state, clock=clock) as store:
        apply_plan_file(store, plan, "alice")
        store.register_agent("retriever-1", kind="reporting", state="running", labels={"role": "retriever"})
        report_one = {"latency_p95_ms": 162.0, "success_ratio": 0.9995}
        store.heartbeat("retriever-1", kpis=report_one)

    async def go() -> None:
        backend = LocalBackend(state_dir=state, read_only=True, clock=clock)
        try:
            snapshot = await backend.snapshot()
            assert snapshot.phases[0].gate.decision == "no-go"
            with pytest.raises(Forbidden, match="read-only"):
                await backend.sign_gate("p3", "go", operator="bob", reason="ship it")
            audit = await backend.audit()
            assert [(e.action, e.outcome) for e in audit if e.operator == "bob"] == [("gate.sign", "denied")]
            assert not [e for e in audit if e.operator == "node"], "a read-only node records no transition"
        finally:
            await backend.close()

    asyncio.run(go())


# --- the plan file's new keys, each error one line with file:line: key ---------------------------------

BAD = [  # (the line it replaces, the bad line, its key, the problem)
    ('kpi = "latency_p95_ms"', 'kpi = "Latency"', "criteria[0].kpi", "expected a KPI name"),
    ('over = "10m"', 'over = "ten minutes"', "criteria[0].over", "expected a duration"),
    ('over = "10m"', 'aggregate = "p42"', "criteria[0].aggregate", "expected one of last, min, max"),
    ('target = "< 120 ms"', 'target = "< 120 %"', "criteria[0].target", "cannot be compared with"),
    ('target = "< 120 ms"', 'target = "fast"', "criteria[0].target", "a KPI's line"),
]


@pytest.mark.parametrize(("replaced", "line", "key", "problem"), BAD)
def test_bad_kpi_keys_name_file_line_and_key(
    tmp_path: Path, replaced: str, line: str, key: str, problem: str
) -> None:
    lines = PLAN.splitlines()
    first = next(i for i, text in enumerate(lines) if text.strip() == replaced)
    lines[first] = "    " + line
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{first + 1}: phases[0].milestones[0].{key}: "), message
    assert problem in message and "\n" not in message, message


def test_bad_gate_keys_name_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(PLAN.replace('"Success rate"]', '"Throughput"]'), encoding="utf-8")
    with pytest.raises(PlanError, match=r"gate.criteria\[1\]: 'Throughput' is not a criterion of this phase"):
        load_plan(path)
    path.write_text(PLAN.replace('when = "crash_looping"', 'when = "sometimes"'), encoding="utf-8")
    with pytest.raises(PlanError, match=r"gate.no_go\[0\].when: expected one of crash_looping"):
        load_plan(path)
    path.write_text(PLAN.replace('over = "5m"', 'over = "5m"\n    restarts = 2'), encoding="utf-8")
    with pytest.raises(PlanError, match=r"no_go\[1\].restarts: only for"):
        load_plan(path)


def test_targets_are_read_into_op_value_and_unit(plan: Path) -> None:
    (p3,) = load_plan(plan).phases
    p95, success = p3.milestones[0].criteria
    assert (p95.op, p95.value, p95.unit, p95.over_s, p95.how) == ("<", 120.0, "ms", 600.0, "p95")
    assert (success.op, success.value, success.unit, success.how) == (">=", 99.9, "%", "min")
    assert p3.gate.criteria == ("w7-load/P95 latency", "w7-load/Success rate")
