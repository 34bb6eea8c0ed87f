"""Turn the stored plan into wire-model phases: derived status, progress and the go/no-go gate.

Derived phase status (when no operator pinned one):
  done     every milestone passed
  blocked  a milestone failed (the phase cannot finish until it is redone)
  active   a milestone is active or passed, or an agent of the phase is starting or running
  pending  otherwise
Progress is the fraction of passed milestones; a phase without milestones shows the mean progress its
agents report, or None (unknown) when none reports any.

The gate decides itself: from the criteria it names (or, naming none, its required milestones) and its
no-go triggers. An operator's latest sign-off is carried beside the decision and never changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.model import Criterion, Gate, GateSignoff, Milestone, Phase, PhaseStatus

from .gate_triggers import Fired
from .store_db import loads
from .store_health import AgentRecord
from .store_plan import PlanRows, build_milestones

_WORKING = frozenset(("starting", "running"))
_SHOWN = 3


def gate_subject(phase_id: str) -> str:
    """The key of a gate's decision history (the verdicts table)."""
    return f"gate:{phase_id}"


@dataclass(frozen=True, slots=True)
class Live:
    """What the figures say now, for building phases: bound criteria's figures by (milestone id, name),
    each phase's triggers as judged, the latest sign-offs, and the verdict history (subject ->
    (verdict, since))."""

    now: float
    figures: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    fired: Mapping[str, Sequence[Fired]] = field(default_factory=dict)
    signoffs: Mapping[str, GateSignoff] = field(default_factory=dict)
    verdicts: Mapping[str, tuple[str, float]] = field(default_factory=dict)

    def since(self, subject: str, verdict: str) -> float | None:
        """Since when ``verdict`` stands: as recorded, or now for a change not recorded yet. A subject with
        no history that reads as it starts (not measured, pending) has no known since."""
        stored = self.verdicts.get(subject)
        if stored is None:
            return None if verdict in ("none", "pending") else self.now
        return stored[1] if stored[0] == verdict else self.now


def build_phases(
    rows: PlanRows,
    agents: Sequence[AgentRecord],
    assignment: Mapping[str, str | None],
    live: Live | None = None,
) -> list[Phase]:
    """``assignment`` maps agent id to its phase id (see store_plan.assign_phase)."""
    by_phase: dict[str, list[AgentRecord]] = {}
    for agent in agents:
        phase_id = assignment.get(agent.id)
        if phase_id is not None:
            by_phase.setdefault(phase_id, []).append(agent)
    since: Callable[[str, str], float | None] | None = live.since if live is not None else None
    phases = []
    for row in rows.phases:
        phase_id = str(row["id"])
        milestones = build_milestones(rows, phase_id, live.figures if live else None, since)
        members = by_phase.get(phase_id, [])
        status: PhaseStatus = row["status_override"] or derived_status(milestones, members)
        decided = gate(
            milestones,
            loads(row["gate_requires"], []),
            loads(row["gate_spec"], {}),
            live.fired.get(phase_id, ()) if live else (),
        )
        if live is not None:
            decided = Gate(
                decision=decided.decision,
                reasons=decided.reasons,
                since=live.since(gate_subject(phase_id), decided.decision),
                signed=live.signoffs.get(phase_id),
            )
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
                gate=decided,
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


def gate(
    milestones: Sequence[Milestone],
    requires: Sequence[str],
    spec: Mapping[str, Any] | None = None,
    fired: Sequence[Fired] = (),
) -> Gate:
    """NO-GO while a no-go trigger fires or a deciding criterion fails; GO when every deciding criterion
    holds (or every required milestone passed); PENDING otherwise, saying what it waits for.

    The deciding criteria are those the gate names (``spec["criteria"]``), else the required milestones'.
    A failing number outweighs a sign-off: a milestone reported passed whose number now fails is no-go.
    A milestone with an unmeasured criterion is never passed (store_plan.live_status), so the gate cannot
    open on a number nobody reported.
    """
    triggered = [f.reason for f in fired if f.triggered]
    calm = [f.reason for f in fired if not f.triggered]
    named = [tuple(ref) for ref in (spec or {}).get("criteria", [])]
    decided = _by_criteria(milestones, named) if named else _by_milestones(milestones, requires)
    if triggered:
        failing = list(decided.reasons) if decided.decision == "no-go" else []
        return Gate(decision="no-go", reasons=(*triggered, *failing))
    if decided.decision == "no-go":
        return decided
    return Gate(decision=decided.decision, reasons=(*decided.reasons, *calm))


def _failing(criterion: Criterion) -> str:
    actual = criterion.actual if criterion.actual is not None else "n/a"
    return f"{criterion.name}: {actual} (target {criterion.target})"


def _by_criteria(milestones: Sequence[Milestone], named: Sequence[tuple[Any, ...]]) -> Gate:
    found = {(m.id, c.name): c for m in milestones for c in m.criteria}
    deciding = [found[(m, n)] for m, n in named if (m, n) in found]
    if not deciding:
        return Gate(decision="pending", reasons=("none of the criteria it names is in the plan",))
    bad = [c for c in deciding if c.verdict is False]
    if bad:
        return Gate(decision="no-go", reasons=tuple(_failing(c) for c in bad))
    open_ = [c for c in deciding if c.verdict is None]
    if open_:
        names = [f"{c.name} ({'not measured' if not c.measured else 'not judged'})" for c in open_]
        more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
        return Gate(decision="pending", reasons=(f"waiting for {', '.join(names[:_SHOWN])}{more}",))
    return Gate(decision="go", reasons=tuple(_failing(c) for c in deciding))


def _by_milestones(milestones: Sequence[Milestone], requires: Sequence[str]) -> Gate:
    wanted = set(requires)
    required = [m for m in milestones if not wanted or m.id in wanted]
    if not required:
        return Gate(decision="pending", reasons=("no milestones to judge",))
    failing: list[str] = []
    for milestone in required:
        bad = [c for c in milestone.criteria if c.verdict is False]
        failing.extend(_failing(c) for c in bad)
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
