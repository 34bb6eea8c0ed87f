"""Gather what a node holds (snapshot, KPI history, audit trail) and make the report card of it.

:func:`gather` is the only part that talks to the node; :func:`make_card` is pure, so the same inputs
give the same card.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from backends.base import Backend
from backends.errors import Unsupported
from backends.model import AuditEntry, Criterion, Gate, KpiSeries, NodeSnapshot, Phase
from console.core.kpi_rules import KpiRule

from .alerts import NODE_OPERATOR, kpi_alerts, verdict_alerts
from .card import (
    ActionCard,
    AlertCard,
    CriterionCard,
    GateCard,
    KpiSection,
    MilestoneCard,
    PhaseCard,
    ReportCard,
    Section,
    Signoff,
    Verdict,
)
from .groups import kpi_group, sorted_groups, verdict_groups
from .summaries import summarise

NO_HISTORY = "no history kept by this node"
NO_AUDIT = "no audit trail kept by this node"


@dataclass(frozen=True, slots=True)
class Gathered:
    """What the node said; None for what it does not keep (``*_note`` says why)."""

    snapshot: NodeSnapshot
    history: list[KpiSeries] | None
    history_note: str | None
    audit: list[AuditEntry] | None
    audit_note: str | None


async def gather(backend: Backend, start: float) -> Gathered:
    """The snapshot, the KPI history since ``start`` and the audit trail. A node that keeps no history or
    no audit trail still gets a card, which says so; every other failure is the caller's to report."""
    snapshot = await backend.snapshot()
    history: list[KpiSeries] | None = None
    history_note: str | None = NO_HISTORY
    if backend.supports("kpi_history"):
        with contextlib.suppress(Unsupported):
            history, history_note = await backend.kpi_history(start), None
    audit: list[AuditEntry] | None = None
    audit_note: str | None = NO_AUDIT
    with contextlib.suppress(Unsupported):
        audit, audit_note = await backend.audit(0), None
    return Gathered(snapshot, history, history_note, audit, audit_note)


def make_card(
    gathered: Gathered,
    *,
    node: str,
    rules: Sequence[KpiRule],
    period: str,
    start: float,
    end: float,
    phase_id: str | None = None,
) -> ReportCard:
    """The card for [start, end] (``end`` is when it is made); only ``phase_id`` when given (the caller
    checks it names a phase)."""
    snapshot = gathered.snapshot
    phases = sorted(snapshot.phases, key=lambda p: (p.order, p.id))
    if phase_id is not None:
        phases = [p for p in phases if p.id == phase_id]
    series = [_until(one, end) for one in gathered.history or ()]
    agents = {a.id: a for a in snapshot.agents}
    entries = [e for e in gathered.audit or () if e.ts <= end]
    breaches = kpi_alerts(series, rules, node, agents, start, end)
    verdicts = sorted(verdict_alerts(entries, start, end), key=_alert_order)
    alerts = sorted([a for b in breaches for a in b.episodes] + verdicts, key=_alert_order)
    groups = sorted_groups([*(kpi_group(b) for b in breaches), *verdict_groups(verdicts)])
    return ReportCard(
        node=node,
        backend=snapshot.node.backend,
        environment=snapshot.node.environment,
        generated_at=end,
        period=period,
        period_start=start,
        period_end=end,
        phases=tuple(_phase(p) for p in phases),
        kpis=KpiSection(
            kept=gathered.history is not None,
            note=gathered.history_note,
            summaries=summarise(series, start, end),
        ),
        alerts=tuple(alerts),
        alert_groups=groups,
        actions=tuple(_action(e) for e in entries if e.ts >= start and e.operator != NODE_OPERATOR),
        audit=Section(kept=gathered.audit is not None, note=gathered.audit_note),
    )


def _alert_order(alert: AlertCard) -> tuple[float, str, str]:
    return (alert.start, alert.source, alert.subject)


def _until(one: KpiSeries, end: float) -> KpiSeries:
    points = tuple(p for p in one.points if p[0] <= end)
    if len(points) == len(one.points):
        return one
    return KpiSeries(agent_id=one.agent_id, name=one.name, unit=one.unit, kind=one.kind, points=points)


def verdict_of(criterion: Criterion) -> Verdict:
    verdict = criterion.verdict
    return "OPEN" if verdict is None else "PASS" if verdict else "FAIL"


def _phase(phase: Phase) -> PhaseCard:
    return PhaseCard(
        id=phase.id,
        name=phase.name,
        order=phase.order,
        status=phase.status,
        progress=phase.progress,
        milestones=tuple(
            MilestoneCard(
                id=m.id,
                name=m.name,
                status=m.status,
                criteria=tuple(
                    CriterionCard(
                        name=c.name,
                        target=c.target,
                        actual=c.actual,
                        verdict=verdict_of(c),
                        kpi=c.kpi,
                        since=c.since,
                    )
                    for c in m.criteria
                ),
            )
            for m in phase.milestones
        ),
        gate=_gate(phase.gate),
    )


def _gate(gate: Gate) -> GateCard | None:
    if gate.decision == "pending" and not gate.reasons and gate.signed is None:
        return None  # what a phase without a gate carries (a Ray job): no decision to report
    signed = gate.signed
    return GateCard(
        decision=gate.decision,
        reasons=gate.reasons,
        since=gate.since,
        signed=None
        if signed is None
        else Signoff(decision=signed.decision, operator=signed.operator, at=signed.at, reason=signed.reason),
    )


def _action(entry: AuditEntry) -> ActionCard:
    return ActionCard(
        seq=entry.seq,
        ts=entry.ts,
        operator=entry.operator,
        action=entry.action,
        target=entry.target,
        reason=entry.reason,
        outcome=entry.outcome,
        detail=entry.detail,
    )
