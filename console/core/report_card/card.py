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
    worst: str | None = None  # a breach's worst figure alone: "peak 170 ms"
    # A KPI breach judged from samples: the wider of the gaps between samples at its two edges. Its start
    # lies between the sample before and the first one over the line, its end between the last one over
    # and the first one back, so its duration is known to within this; None for the audit trail's own.
    sampling_s: float | None = None
    to_nearest_sample: bool = False  # sampling_s is coarser than the rule's for_s: the duration is rough


class AlertGroup(Card, frozen=True, kw_only=True):
    """Every episode of one alert in the period taken together: one KPI on one agent, one criterion, one
    gate. A flapping KPI fires hundreds of times in a week; a reader wants how often, how long at worst and
    how long in all."""

    source: Literal["kpi", "criterion", "gate"]
    subject: str  # as its episodes name it
    kpi: str | None = None  # the KPI and the agent a breach is about (None for the audit trail's)
    agent: str | None = None
    severity: Severity  # the worst of its episodes
    fired: int  # episodes overlapping the period
    critical: int  # how many of them were critical
    first_start: float
    last_end: float | None  # None: the latest episode is still going on
    longest_s: float
    total_s: float  # of the parts inside the period
    worst: str | None = None  # a breach's worst figure, "peak 174 ms" or "low 99.45%"
    line: str | None = None  # the line its worst episode crossed: "crit >= 150 ms"
    lines: str | None = None  # the rule it broke: "warn >= 120 ms, crit >= 150 ms, for 60 s"
    detail: str | None = None  # the audit trail's words on its latest episode
    # A KPI's history: the median spacing of its samples in the period. Coarser than the rule's for_s
    # (``to_nearest_sample``), each episode's start and end are known only to within it.
    sampling_s: float | None = None
    to_nearest_sample: bool = False


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
    alerts: tuple[AlertCard, ...]  # every episode, oldest first
    alert_groups: tuple[AlertGroup, ...]  # the same by what fired: critical first, then longest in all
    actions: tuple[ActionCard, ...]
    audit: Section  # whether the node keeps an audit trail (alerts from it and the actions need one)
    version: int = 2  # of this document's layout: 2 added alert_groups and the episodes' sampling


def to_json(card: ReportCard) -> str:
    """The card as an indented JSON document ending in a newline."""
    return msgspec.json.format(msgspec.json.encode(card), indent=2).decode() + "\n"
