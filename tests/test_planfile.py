"""The plan file: examples/plan.toml loads, every error names file + line + key, criteria and gates judge."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from backends.local.planfile import (
    CriterionSpec,
    GateSpec,
    MilestoneSpec,
    PhaseSpec,
    PlanError,
    agent_matches,
    gate_decision,
    judge,
    load_plan,
    phase_progress,
)
from backends.model import Gate

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plan.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> PlanError:
    path = write(tmp_path, text)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{caught.value.line}"), message
    return caught.value


# --- the example ----------------------------------------------------------------------------------------


def test_example_plan_loads_with_the_expected_structure() -> None:
    plan = load_plan(EXAMPLE)
    assert plan.name == "Agent fleet rollout"
    assert [p.id for p in plan.phases] == [
        "p1-foundation", "p2-pilot", "p3-scale-out", "p4-hardening", "p5-ga",
    ]  # fmt: skip
    assert all(p.milestones and p.due_at for p in plan.phases)
    dues = [p.due_at or 0.0 for p in plan.phases]
    assert dues == sorted(dues)
    assert plan.phases[0].due_at == 1799427600.0  # 2027-01-08T17:00:00Z
    weeks = [m.name.split()[0] for p in plan.phases for m in p.milestones]
    assert weeks == [f"W{n}" for n in range(1, 13)]
    scale_out = plan.phases[2]
    assert scale_out.gate.requires == ("w5-second-node", "w6-third-node", "w7-load-test")
    assert plan.phases[0].gate.requires == ("w1-store", "w2-supervisor")  # default: all, made explicit
    load_test = {c.name: c for c in scale_out.milestones[2].criteria}
    p95 = load_test["P95 latency"]
    assert (p95.target, p95.op, p95.value, p95.unit) == ("P95 < 120 ms", "<", 120.0, "ms")
    assert load_test["Error rate"].target == "< 0.5%"  # derived from op/value/unit
    headroom = scale_out.milestones[1].criteria[1]
    assert (headroom.target, judge(headroom, "12%"), judge(headroom, "18 %")) == (">= 15%", False, True)
    assert judge(scale_out.milestones[0].criteria[0], "56/57") is True
    assert agent_matches(plan.phases[0], "planner-07") and not agent_matches(plan.phases[0], "coder-02")


# --- errors ---------------------------------------------------------------------------------------------

HEAD = """
name = "p"
[[phases]]
id = "a"
name = "A"
"""


def test_bad_toml_syntax_gives_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, HEAD + "due = \n")
    assert (error.line, error.column) == (5, 7)
    assert "invalid TOML" in str(error) and ":5:7:" in str(error)


def test_wrong_type_names_the_key_and_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, HEAD + '[[phases]]\nid = "b"\nname = 3\n')
    assert (error.line, error.key) == (7, "phases[1].name")
    assert "expected a string, got an integer" in str(error)


def test_unknown_key_is_refused_and_the_known_ones_listed(tmp_path: Path) -> None:
    text = f"""{HEAD}
      [[phases.milestones]]
      id = "m"
      name = "M"
        [[phases.milestones.criteria]]
        name = "c"
        tagret = "< 3"
    """
    error = load_error(tmp_path, text)
    assert (error.line, error.key) == (11, "phases[0].milestones[0].criteria[0].tagret")
    assert "unknown key" in str(error) and "target" in str(error)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, HEAD + '[[phases]]\nid = "a"\nname = "B"\n')
    assert (error.line, error.key) == (6, "phases[1].id")
    assert "duplicate phase id 'a'" in str(error)
    # Milestone ids are unique across the plan, not only within a phase.
    text = HEAD + '[[phases.milestones]]\nid = "m"\nname = "M"\n'
    text += '[[phases]]\nid = "b"\nname = "B"\n[[phases.milestones]]\nid = "m"\nname = "M2"\n'
    error = load_error(tmp_path, text)
    assert (error.line, error.key) == (12, "phases[1].milestones[0].id")
    assert "duplicate milestone id 'm' (also phases[0].milestones[0])" in str(error)


def test_gate_requiring_an_unknown_milestone(tmp_path: Path) -> None:
    text = f"""{HEAD}
      [[phases.milestones]]
      id = "w1"
      name = "W1"
      [phases.gate]
      requires = ["w1", "w9"]
    """
    error = load_error(tmp_path, text)
    assert (error.line, error.key) == (10, "phases[0].gate.requires[1]")
    assert "'w9' is not a milestone of this phase (its milestones: w1)" in str(error)


def test_bad_op_is_located_in_the_nth_criterion(tmp_path: Path) -> None:
    text = f"""{HEAD}
      [[phases.milestones]]
      id = "w1"
      name = "W1"
        [[phases.milestones.criteria]]
        name = "fine"
        op = "<"
        value = 1
        [[phases.milestones.criteria]]
        name = "bad"
        op = "=<"
        value = 1
    """
    error = load_error(tmp_path, text)
    assert (error.line, error.key) == (15, "phases[0].milestones[0].criteria[1].op")
    assert "expected one of <, <=, >, >=, ==, !=; got '=<'" in str(error)


CRITERION = '[[phases.milestones]]\nid = "m"\nname = "M"\n[[phases.milestones.criteria]]\nname = "c"\n'
FIRST = "phases[0].milestones[0].criteria[0]"


@pytest.mark.parametrize(
    ("tail", "key", "line", "problem"),
    [
        ('[[phases]]\nname = "B"\n', "phases[1].id", 5, "required, but missing"),
        ('due = 2026-12-01\n', "phases[0].due", 5, "UTC offset"),
        ('due = 2026-12-01T00:00:00\n', "phases[0].due", 5, "UTC offset"),
        ('due = "tomorrow"\n', "phases[0].due", 5, "epoch seconds"),
        ('[[phases.milestones]]\nid = "has space"\nname = "M"\n', "phases[0].milestones[0].id", 6, "an id"),
        (f'{CRITERION}op = "<"\n', f"{FIRST}.value", 8, "required when `op` is given"),
        (CRITERION, f"{FIRST}.target", 8, "required (or give `op` and `value`"),
        (f'{CRITERION}value = 1\n', f"{FIRST}.op", 8, "required when `value` is given"),
        (f'{CRITERION}op = "<"\nvalue = nan\n', f"{FIRST}.value", 11, "finite"),
        ('[phases.gate]\nrequires = []\n', "phases[0].gate.requires", 6, "must not be empty"),
    ],
)  # fmt: skip
def test_each_problem_names_key_line_and_cause(
    tmp_path: Path, tail: str, key: str, line: int, problem: str
) -> None:
    error = load_error(tmp_path, HEAD + tail)
    assert (error.key, error.line) == (key, line)
    assert problem in error.problem


def test_a_plan_without_phases_and_an_unreadable_file(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'name = "p"\n')
    assert error.key == "phases" and "required" in str(error)
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "missing.toml")


def test_inline_tables_still_get_a_line(tmp_path: Path) -> None:
    text = 'name = "p"\n\nphases = [{id = "a", name = 5}]\n'
    assert load_error(tmp_path, text).line == 3


def test_epoch_seconds_and_offsets_give_the_same_instant(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, HEAD + "due = 2026-12-01T02:00:00+02:00\n"))
    assert plan.phases[0].due_at == 1796083200.0
    plan = load_plan(write(tmp_path, HEAD + "due = 1796083200\n"))
    assert plan.phases[0].due_at == 1796083200.0


# --- judging --------------------------------------------------------------------------------------------


def criterion(op: str | None = "<", value: float | None = 120, unit: str | None = "ms") -> CriterionSpec:
    return CriterionSpec(name="P95 latency", op=op, value=value, unit=unit)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("crit", "actual", "verdict"),
    [
        (criterion(), 97.0, True),
        (criterion(), 97, True),
        (criterion(), "97", True),
        (criterion(), "97 ms", True),
        (criterion(), "135 ms", False),
        (criterion(), "P95 = 131 ms", False),  # the 95 of "P95" is a name, not the number
        (criterion(), "120 ms", False),  # strictly below
        (criterion("<="), "120ms", True),
        (criterion(), "0.1 s", True),  # converted: 100 ms
        (criterion(), "0.2 min", False),  # 12,000 ms
        (criterion("==", 700), "0.7 s", True),  # 699.9999999999999 ms: conversion dust is not a FAIL
        (criterion(">=", 700), "0.7 s", True),
        (criterion(), "5 GiB", None),  # another family: no verdict
        (criterion(), "n/a", None),
        (criterion(), None, None),
        (criterion(), True, None),
        (criterion(), float("nan"), None),
        (criterion(op=None, value=None), "97 ms", None),  # text-only criterion
        (criterion(">=", 15, "%"), "12%", False),
        (criterion(">=", 15, "%"), "15 percent", True),
        (criterion("<", 0.5, "%"), "0.42 %", True),
        (criterion(">=", 55, "agents"), "56/57", True),
        (criterion(">=", 55, "agents"), "54 healthy", False),
        (criterion(">=", 55, "agents"), "56 ms", None),
        (criterion(">=", 1200, "rps"), "1,340 rps", True),
        (criterion("!=", 0, None), "3 findings", True),
    ],
)
def test_judge(crit: CriterionSpec, actual: str | float | None, verdict: bool | None) -> None:
    assert judge(crit, actual) is verdict


# --- gates and progress ---------------------------------------------------------------------------------

P95 = CriterionSpec(name="P95 latency", target="< 120 ms", op="<", value=120, unit="ms")
ERRORS = CriterionSpec(name="Error rate", target="< 0.5%", op="<", value=0.5, unit="%")
PHASE = PhaseSpec(
    id="p3",
    name="Scale-out",
    milestones=(
        MilestoneSpec(id="w7", name="W7 Load test", criteria=(P95, ERRORS)),
        MilestoneSpec(id="w8", name="W8 Soak"),
    ),
    gate=GateSpec(requires=("w7",)),
)


def test_gate_go_when_every_required_milestone_passed() -> None:
    gate = gate_decision(PHASE, {"w7": "passed", "w8": "active"}, {("w7", "P95 latency"): True})
    assert gate == Gate(decision="go", reasons=("all 1 required milestones passed",))
    everything = msgspec.structs.replace(PHASE, gate=GateSpec())  # no requires: every milestone
    assert gate_decision(everything, {"w7": "passed", "w8": "active"}, {}).decision == "pending"


def test_gate_no_go_names_the_failing_criteria() -> None:
    verdicts = {("w7", "P95 latency"): False, ("w7", "Error rate"): True}
    gate = gate_decision(PHASE, {"w7": "active"}, verdicts, {("w7", "P95 latency"): "135 ms"})
    assert gate == Gate(decision="no-go", reasons=("P95 latency: 135 ms (target < 120 ms)",))
    # A failing number outweighs a sign-off; without the actual the reason still names the criterion.
    gate = gate_decision(PHASE, {"w7": "passed"}, verdicts)
    assert gate.reasons == ("P95 latency: failed (target < 120 ms)",)
    gate = gate_decision(PHASE, {"w7": "failed"}, {})
    assert gate == Gate(decision="no-go", reasons=("W7 Load test: failed",))
    # The failing criterion explains a failed milestone: it is not listed twice.
    assert gate_decision(PHASE, {"w7": "failed"}, verdicts).reasons == (
        "P95 latency: failed (target < 120 ms)",
    )
    # One failure is NO-GO even while other required milestones are still open.
    both = msgspec.structs.replace(PHASE, gate=GateSpec(requires=("w7", "w8")))
    assert gate_decision(both, {"w7": "active", "w8": "pending"}, verdicts).decision == "no-go"


def test_gate_pending_lists_what_is_open() -> None:
    gate = gate_decision(PHASE, {"w7": "active"}, {("w7", "P95 latency"): True})
    assert gate == Gate(decision="pending", reasons=("W7 Load test: active (1/2 criteria passed)",))
    assert gate_decision(PHASE, {}, {}).reasons == ("W7 Load test: pending (0/2 criteria passed)",)
    empty = PhaseSpec(id="p9", name="Empty")
    assert gate_decision(empty, {}, {}).decision == "pending"


def test_phase_progress() -> None:
    assert phase_progress([]) is None
    assert phase_progress(["passed", "active", "pending", "failed"]) == 0.25
    assert phase_progress(["passed", "passed"]) == 1.0
    assert phase_progress(("pending",)) == 0.0


def test_agent_matches_globs_case_sensitively() -> None:
    phase = PhaseSpec(id="p", name="P", agents=("planner-*", "coder-0[1-3]"))
    assert agent_matches(phase, "planner-x") and agent_matches(phase, "coder-02")
    assert not agent_matches(phase, "coder-04") and not agent_matches(phase, "Planner-x")
    assert not agent_matches(PhaseSpec(id="q", name="Q"), "planner-x")
