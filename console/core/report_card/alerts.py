"""What fired over the period: KPI breaches judged from the history by the config's rules (each episode
that held its ``for_s``), and the criterion FAIL and gate NO-GO transitions the node wrote into its audit
trail (operator "node"), each with how long it lasted."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import median
from typing import Any

from backends.kpis import format_value
from backends.model import Agent, AuditEntry, KpiSeries
from console.core.kpi_rules import COUNTER_UNIT, KpiRule, ResolvedRule, resolved_rule
from console.core.kpi_rules import episodes as episodes_of

from .card import AlertCard

NODE_OPERATOR = "node"  # who the audit trail names for what the node decided by itself
VERDICT_ACTIONS = ("criterion.verdict", "gate.decision")


@dataclass(frozen=True, slots=True)
class Breaches:
    """The breach episodes of one KPI on one agent in the period, with what a group of them reports."""

    kpi: str
    agent: str
    episodes: list[AlertCard]
    worst: str  # "peak 174 ms" / "low 99.45%": the worst figure of them all
    line: str  # the line the worst of them crossed: "crit >= 150 ms"
    lines: str  # "warn >= 120 ms, crit >= 150 ms, for 60 s"
    sampling_s: float | None  # the median spacing of the series' samples in the period
    to_nearest_sample: bool  # sampling_s is coarser than the rule's for_s


def kpi_alerts(
    series: Sequence[KpiSeries],
    rules: Sequence[KpiRule],
    node: str,
    agents: Mapping[str, Agent],
    start: float,
    end: float,
) -> list[Breaches]:
    """Each breach episode of each (agent, KPI) that overlaps [start, end], per series that has any. The
    whole series is judged (a breach that began before the period is still one), and an agent gone from
    the snapshot is judged by the rules that apply to an agent without labels."""
    found: list[Breaches] = []
    for one in series:
        agent = agents.get(one.agent_id) or Agent(id=one.agent_id, name=one.agent_id)
        rule = resolved_rule(rules, node, agent, one.name)
        if rule is None:
            continue
        times = [at for at, _ in one.points]
        unit = COUNTER_UNIT if one.kind == "counter" else one.unit
        lines = _lines(rule, unit)
        worst_word = "peak" if rule.direction == "above" else "low"
        episodes: list[AlertCard] = []
        peaks: list[float] = []
        for episode in episodes_of(one.points, rule, one.unit, kind=one.kind):
            finish = end if episode.end is None else episode.end
            if finish < start or episode.start > end:
                continue
            gap = edge_gap(times, episode.start, episode.end)
            peaks.append(episode.peak)
            episodes.append(
                AlertCard(
                    source="kpi",
                    subject=f"{one.name} on {agent.name}",
                    severity=episode.severity,
                    start=episode.start,
                    end=episode.end if episode.end is None or episode.end <= end else None,
                    duration_s=min(finish, end) - max(episode.start, start),
                    detail=f"{worst_word} {format_value(episode.peak, unit)} ({lines})",
                    worst=f"{worst_word} {format_value(episode.peak, unit)}",
                    sampling_s=gap,
                    to_nearest_sample=gap is not None and gap > rule.for_s,
                )
            )
        if not episodes:
            continue
        worst = max(peaks) if rule.direction == "above" else min(peaks)
        critical = any(e.severity == "critical" for e in episodes)
        side = ">=" if rule.direction == "above" else "<="
        crossed = (
            f"crit {side} {format_value(rule.crit, rule.unit or unit)}"
            if critical
            else (f"warn {side} {format_value(rule.warn, rule.unit or unit)}")
        )
        spacing = median_spacing([at for at in times if start <= at <= end])
        found.append(
            Breaches(
                kpi=one.name,
                agent=agent.name,
                episodes=episodes,
                worst=f"{worst_word} {format_value(worst, unit)}",
                line=crossed,
                lines=lines,
                sampling_s=spacing,
                to_nearest_sample=spacing is not None and spacing > rule.for_s,
            )
        )
    return found


def _lines(rule: ResolvedRule, unit: str) -> str:
    lines_unit = rule.unit or unit
    side = ">=" if rule.direction == "above" else "<="
    return (
        f"warn {side} {format_value(rule.warn, lines_unit)}, "
        f"crit {side} {format_value(rule.crit, lines_unit)}, for {rule.for_s:g} s"
    )


def edge_gap(times: Sequence[float], start: float, end: float | None) -> float | None:
    """The wider of the gaps between samples at an episode's two edges: before its first sample over the
    line, and before the first sample back (``times`` sorted; both edges are samples in it). None where
    neither edge has a sample before it."""
    gaps = []
    for edge in (start, end):
        if edge is None:
            continue
        index = bisect_left(times, edge)
        if 0 < index < len(times):
            gaps.append(times[index] - times[index - 1])
    return max(gaps) if gaps else None


def median_spacing(times: Sequence[float]) -> float | None:
    """The median gap between consecutive samples (``times`` sorted); None for fewer than two."""
    if len(times) < 2:
        return None
    return float(median(b - a for a, b in pairwise(times)))


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
