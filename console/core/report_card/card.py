"""The report card as data: what every format writes, and the JSON document itself (msgspec, fields in
the order declared, so equal cards encode to equal bytes).

Strings here are as the node sent them; each renderer escapes them for its own format.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Verdict = Literal["PASS", "FAIL", "OPEN"]
Severity = Literal["warning", "critical"]


class Card(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """The base of every part of the card (frozen, keyword-only)."""


class Signoff(Card, frozen=True, kw_only=True):
    decision: str
    operator: str
    at: float
    reason: str | None = None


class GateCard(Card, frozen=True, kw_only=True):
    decision: str  # go | no-go | pending, as the node computed it
    reasons: tuple[str, ...] = ()
    since: float | None = None
    signed: Signoff | None = None


class CriterionCard(Card, frozen=True, kw_only=True):
    name: str
    target: str
    actual: str | None
    verdict: Verdict  # OPEN: not measured, or not judged yet
    kpi: str | None = None
    since: float | None = None


class MilestoneCard(Card, frozen=True, kw_only=True):
    id: str
    name: str
    status: str
    criteria: tuple[CriterionCard, ...] = ()


class PhaseCard(Card, frozen=True, kw_only=True):
    id: str
    name: str
    order: int
    status: str
    progress: float | None
    milestones: tuple[MilestoneCard, ...]
    gate: GateCard | None  # None: the phase has no gate (a Ray job)


class KpiSummary(Card, frozen=True, kw_only=True):
    """One KPI over the period: across every agent reporting it (``agent_id`` None), or one agent's."""

    name: str
    unit: str
    kind: str  # gauge | counter
    agent_id: str | None
    agents: int  # how many agents the figures come from
    points: int
    min: float
    p95: float
    max: float
    # the latest figure: one agent's; across agents, their latest figures averaged (gauges) or summed
    # (counters: the fleet's total)
    last: float
    increase: float | None = None  # a counter's growth over the period, resets read as restarts


class KpiSection(Card, frozen=True, kw_only=True):
    kept: bool  # False: the node keeps no KPI history (``note`` says why)
    note: str | None = None
    summaries: tuple[KpiSummary, ...] = ()


class AlertCard(Card, frozen=True, kw_only=True):
    """Something that went wrong in the period: a KPI over its threshold for its ``for_s``, a criterion
    turning FAIL, a gate turning NO-GO. ``end`` None: still so when the card was made."""

    source: Literal["kpi", "criterion", "gate"]
    subject: str  # what it is about: "latency_p95_ms on retriever-01", a criterion, a phase
    severity: Severity
    start: float
    end: float | None
    duration_s: float  # of the part inside the period (up to the card's time when still open)
    detail: str  # the peak and threshold, or the node's words


class ActionCard(Card, frozen=True, kw_only=True):
    seq: int
    ts: float
    operator: str
    action: str
    target: str | None
    reason: str | None
    outcome: str
    detail: str | None


class Section(Card, frozen=True, kw_only=True):
    """A part of the card a node may not keep: ``kept`` False and ``note`` say so."""

    kept: bool
    note: str | None = None


class ReportCard(Card, frozen=True, kw_only=True):
    node: str
    backend: str
    environment: str
    generated_at: float
    period: str  # as asked: "7d"
    period_start: float
    period_end: float
    phases: tuple[PhaseCard, ...]
    kpis: KpiSection
    alerts: tuple[AlertCard, ...]
    actions: tuple[ActionCard, ...]
    audit: Section  # whether the node keeps an audit trail (alerts from it and the actions need one)
    version: int = 1  # of this document's layout


def to_json(card: ReportCard) -> str:
    """The card as an indented JSON document ending in a newline."""
    return msgspec.json.format(msgspec.json.encode(card), indent=2).decode() + "\n"
