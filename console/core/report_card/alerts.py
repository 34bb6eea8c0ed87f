"""What fired over the period: KPI breaches judged from the history by the config's rules (each episode
that held its ``for_s``), and the criterion FAIL and gate NO-GO transitions the node wrote into its audit
trail (operator "node"), each with how long it lasted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.kpis import format_value
from backends.model import Agent, AuditEntry, KpiSeries
from console.core.kpi_rules import COUNTER_UNIT, KpiRule, ResolvedRule, episodes, resolved_rule

from .card import AlertCard

NODE_OPERATOR = "node"  # who the audit trail names for what the node decided by itself
VERDICT_ACTIONS = ("criterion.verdict", "gate.decision")


def kpi_alerts(
    series: Sequence[KpiSeries],
    rules: Sequence[KpiRule],
    node: str,
    agents: Mapping[str, Agent],
    start: float,
    end: float,
) -> list[AlertCard]:
    """Each breach episode of each (agent, KPI) that overlaps [start, end]. The whole series is judged
    (a breach that began before the period is still one), and an agent gone from the snapshot is judged
    by the rules that apply to an agent without labels."""
    found: list[AlertCard] = []
    for one in series:
        agent = agents.get(one.agent_id) or Agent(id=one.agent_id, name=one.agent_id)
        rule = resolved_rule(rules, node, agent, one.name)
        if rule is None:
            continue
        for episode in episodes(one.points, rule, one.unit, kind=one.kind):
            finish = end if episode.end is None else episode.end
            if finish < start or episode.start > end:
                continue
            found.append(
                AlertCard(
                    source="kpi",
                    subject=f"{one.name} on {agent.name}",
                    severity=episode.severity,
                    start=episode.start,
                    end=episode.end if episode.end is None or episode.end <= end else None,
                    duration_s=min(finish, end) - max(episode.start, start),
                    detail=_breach_detail(rule, one, episode.peak),
                )
            )
    return found


def _breach_detail(rule: ResolvedRule, one: KpiSeries, peak: float) -> str:
    unit = COUNTER_UNIT if one.kind == "counter" else one.unit
    lines_unit = rule.unit or unit
    side = ">=" if rule.direction == "above" else "<="
    worst = "peak" if rule.direction == "above" else "low"
    return (
        f"{worst} {format_value(peak, unit)} (warn {side} {format_value(rule.warn, lines_unit)}, "
        f"crit {side} {format_value(rule.crit, lines_unit)}, for {rule.for_s:g} s)"
    )


def verdict_alerts(entries: Sequence[AuditEntry], start: float, end: float) -> list[AlertCard]:
    """Each criterion FAIL and gate NO-GO the node recorded, lasting until the same criterion or gate
    was next recorded otherwise, that overlaps [start, end]."""
    found: list[AlertCard] = []
    open_since: dict[tuple[str, str], AuditEntry] = {}  # subject -> the entry that made it bad

    def close(key: tuple[str, str], until: float | None) -> None:
        entry = open_since.pop(key)
        finish = end if until is None else until
        if finish < start or entry.ts > end:
            return
        found.append(
            AlertCard(
                source="gate" if entry.action == "gate.decision" else "criterion",
                subject=key[1],
                severity="critical",
                start=entry.ts,
                end=until if until is None or until <= end else None,
                duration_s=min(finish, end) - max(entry.ts, start),
                detail=entry.detail or entry.reason or _bad_word(entry),
            )
        )

    for entry in entries:
        if entry.operator != NODE_OPERATOR or entry.action not in VERDICT_ACTIONS:
            continue
        key = (entry.action, _subject(entry))
        bad = _is_bad(entry)
        if key in open_since and not bad:
            close(key, entry.ts)
        elif bad and key not in open_since:
            open_since[key] = entry
    for key in list(open_since):
        close(key, None)
    return found


def _subject(entry: AuditEntry) -> str:
    """What a verdict entry is about: its ``subject`` (``criterion:MILESTONE/NAME``, ``gate:PHASE``) as
    people read it, else its target and the criterion's name."""
    params: Mapping[str, Any] = entry.params
    subject = params.get("subject")
    if isinstance(subject, str) and subject:
        kind, _, rest = subject.partition(":")
        if kind == "gate" and rest:
            return f"phase {rest}"
        return rest if kind == "criterion" and rest else subject
    name = params.get("criterion") or params.get("name")
    target = entry.target or ""
    if isinstance(name, str) and name:
        return f"{target} · {name}" if target else name
    return target or entry.action


def _is_bad(entry: AuditEntry) -> bool:
    """Whether the entry records a FAIL or a NO-GO (``to``, as the node writes it, or ``passed`` /
    ``decision`` / ``verdict``)."""
    params = entry.params
    word = str(params.get("to", params.get("decision", params.get("verdict", "")))).casefold()
    if entry.action == "gate.decision":
        return word == "no-go"
    return params.get("passed") is False or word in ("fail", "failed")


def _bad_word(entry: AuditEntry) -> str:
    return "gate NO-GO" if entry.action == "gate.decision" else "criterion FAIL"
