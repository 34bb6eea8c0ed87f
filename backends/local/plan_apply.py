"""``fleetdeck plan apply``: a plan file into the store, all or nothing, audited."""

from __future__ import annotations

from pathlib import Path

from backends.model import Phase

from .planfile import PlanSpec, load_plan
from .store import Store
from .store_plan import PlanCriterion, PlanMilestone, PlanPhase


def to_store_phases(plan: PlanSpec) -> list[PlanPhase]:
    return [
        PlanPhase(
            id=phase.id,
            name=phase.name,
            order=order,
            due_at=phase.due_at,
            agents_globs=tuple(phase.agents),
            milestones=tuple(
                PlanMilestone(
                    id=m.id,
                    name=m.name,
                    criteria=tuple(
                        PlanCriterion(name=c.name, target=c.target, op=c.op, value=c.value, unit=c.unit or "")
                        for c in m.criteria
                    ),
                )
                for m in phase.milestones
            ),
            gate_requires=tuple(phase.gate.requires or ()),
        )
        for order, phase in enumerate(plan.phases, start=1)
    ]


def apply_plan_file(store: Store, path: Path, operator: str) -> list[Phase]:
    """Parse first (a bad file raises PlanError and applies nothing), then apply in one transaction."""
    plan = load_plan(path)
    phases = store.apply_plan(to_store_phases(plan))
    store.audit(
        operator,
        "plan.apply",
        None,
        outcome="ok",
        params={"file": str(path), "name": plan.name},
        detail=f"{len(phases)} phase(s), {sum(len(p.milestones) for p in phases)} milestone(s)",
    )
    return phases
