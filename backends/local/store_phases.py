"""Turn the stored plan into wire-model phases: derived status, progress and the go/no-go gate.

Derived phase status (when no operator pinned one):
  done     every milestone passed
  blocked  a milestone failed (the phase cannot finish until it is redone)
  active   a milestone is active or passed, or an agent of the phase is starting or running
  pending  otherwise
Progress is the fraction of passed milestones; a phase without milestones shows the mean progress its
agents report, or None (unknown) when none reports any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backends.model import Gate, Milestone, Phase, PhaseStatus

from .store_db import loads
from .store_health import AgentRecord
from .store_plan import PlanRows, build_milestones

_WORKING = frozenset(("starting", "running"))
_SHOWN = 3


def build_phases(
    rows: PlanRows, agents: Sequence[AgentRecord], assignment: Mapping[str, str | None]
) -> list[Phase]:
    """``assignment`` maps agent id to its phase id (see store_plan.assign_phase)."""
    by_phase: dict[str, list[AgentRecord]] = {}
    for agent in agents:
        phase_id = assignment.get(agent.id)
        if phase_id is not None:
            by_phase.setdefault(phase_id, []).append(agent)
    phases = []
    for row in rows.phases:
        phase_id = str(row["id"])
        milestones = build_milestones(rows, phase_id)
        members = by_phase.get(phase_id, [])
        status: PhaseStatus = row["status_override"] or derived_status(milestones, members)
        phases.append(
            Phase(
                id=phase_id,
                name=row["name"],
                order=row["ord"],
                status=status,
                progress=progress(milestones, members, status),
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                due_at=row["due_at"],
                milestones=milestones,
                gate=gate(milestones, loads(row["gate_requires"], [])),
            )
        )
    return phases


def derived_status(milestones: Sequence[Milestone], members: Sequence[AgentRecord]) -> PhaseStatus:
    statuses = [m.status for m in milestones]
    if statuses and all(s == "passed" for s in statuses):
        return "done"
    if "failed" in statuses:
        return "blocked"
    if "active" in statuses or "passed" in statuses or any(a.state in _WORKING for a in members):
        return "active"
    return "pending"


def progress(milestones: Sequence[Milestone], members: Sequence[AgentRecord], status: str) -> float | None:
    if status == "done":
        return 1.0
    if milestones:
        return round(sum(m.status == "passed" for m in milestones) / len(milestones), 4)
    reported = [a.progress for a in members if a.progress is not None]
    if not reported:
        return None
    return round(min(1.0, max(0.0, sum(reported) / len(reported))), 4)


def gate(milestones: Sequence[Milestone], requires: Sequence[str]) -> Gate:
    """Go when every required milestone passed; no-go naming what fails; pending otherwise.

    A passed milestone is taken as signed off even if a criterion's number would now judge otherwise.
    A milestone with an unmeasured criterion is never passed (store_plan.shown_status), so the gate
    cannot open on a number nobody reported; the reason says how many are still to measure.
    """
    wanted = set(requires)
    required = [m for m in milestones if not wanted or m.id in wanted]
    if not required:
        return Gate(decision="pending", reasons=("no milestones to judge",))
    failing: list[str] = []
    for milestone in required:
        if milestone.status == "passed":
            continue
        bad = [c for c in milestone.criteria if c.passed is False]
        failing.extend(
            f"{c.name}: {c.actual if c.actual is not None else 'n/a'} (target {c.target})" for c in bad
        )
        if milestone.status == "failed" and not bad:
            failing.append(f"{milestone.name} failed")
    if failing:
        return Gate(decision="no-go", reasons=tuple(failing))
    waiting = [_waiting_for(m) for m in required if m.status != "passed"]
    if not waiting:
        criteria = sum(len(m.criteria) for m in required)
        if criteria:
            return Gate(decision="go", reasons=(f"all {criteria} criteria passed",))
        return Gate(decision="go", reasons=(f"all {len(required)} milestones passed",))
    more = f" and {len(waiting) - _SHOWN} more" if len(waiting) > _SHOWN else ""
    return Gate(decision="pending", reasons=(f"waiting for {', '.join(waiting[:_SHOWN])}{more}",))


def _waiting_for(milestone: Milestone) -> str:
    unmeasured = sum(not c.measured for c in milestone.criteria)
    if milestone.status == "pending" or not unmeasured:
        return milestone.name
    return f"{milestone.name} ({unmeasured} not measured)"
