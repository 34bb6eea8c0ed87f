"""``fleetdeck plan apply``: a plan file into the store, all or nothing, audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backends.model import Phase

from .planfile import (
    DEFAULT_CRASH_OVER_S,
    DEFAULT_OVER_S,
    DEFAULT_RESTARTS,
    NoGoSpec,
    PlanSpec,
    load_plan,
)
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
                        PlanCriterion(
                            name=c.name,
                            target=c.target,
                            op=c.op,
                            value=c.value,
                            unit=c.unit or "",
                            kpi=c.kpi,
                            over_s=(c.over_s or DEFAULT_OVER_S) if c.kpi else None,
                            agents=c.agents,
                            aggregate=c.aggregate,
                        )
                        for c in m.criteria
                    ),
                )
                for m in phase.milestones
            ),
            gate_requires=tuple(phase.gate.requires or ()),
            gate_criteria=tuple(_split(ref) for ref in phase.gate.criteria or ()),
            gate_no_go=tuple(_trigger(t) for t in phase.gate.no_go),
        )
        for order, phase in enumerate(plan.phases, start=1)
    ]


def _split(ref: str) -> tuple[str, str]:
    milestone_id, _, name = ref.partition("/")  # load_plan wrote every ref as "MILESTONE-ID/name"
    return milestone_id, name


def _trigger(spec: NoGoSpec) -> dict[str, Any]:
    """A no-go trigger as the store keeps it (gate_triggers reads it)."""
    kind = spec.kind
    default_over = DEFAULT_CRASH_OVER_S if kind == "crash_looping" else DEFAULT_OVER_S
    trigger: dict[str, Any] = {"name": spec.name, "kind": kind, "over_s": spec.over_s or default_over}
    if kind == "crash_looping":
        trigger["restarts"] = spec.restarts or DEFAULT_RESTARTS
    if kind == "kpi":
        trigger.update(
            kpi=spec.kpi, op=spec.op, value=spec.value, unit=spec.unit, target=spec.target,
            agents=spec.agents, aggregate=spec.aggregate,
        )  # fmt: skip
    return trigger


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
