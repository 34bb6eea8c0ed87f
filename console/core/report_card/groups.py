"""Alert episodes taken together by what fired (one KPI on one agent, one criterion, one gate), so that a
KPI flapping all week is one line saying how often, how long at worst and how long in all, not hundreds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from .alerts import Breaches
from .card import AlertCard, AlertGroup, ReportCard

VERDICTS_LISTED_UP_TO = 20  # criterion FAIL and gate NO-GO episodes are few: listed one by one up to this
LATEST_EPISODES = 10  # the most recent KPI breach episodes shown under their groups


def kpi_group(breaches: Breaches) -> AlertGroup:
    return msgspec.structs.replace(
        _group(breaches.episodes),
        kpi=breaches.kpi,
        agent=breaches.agent,
        worst=breaches.worst,
        line=breaches.line,
        lines=breaches.lines,
        sampling_s=breaches.sampling_s,
        to_nearest_sample=breaches.to_nearest_sample,
    )


def verdict_groups(alerts: Iterable[AlertCard]) -> list[AlertGroup]:
    """One group per criterion or gate (the audit trail's alerts, oldest first)."""
    by_subject: dict[tuple[str, str], list[AlertCard]] = {}
    for alert in alerts:
        by_subject.setdefault((alert.source, alert.subject), []).append(alert)
    return [msgspec.structs.replace(_group(group), detail=group[-1].detail) for group in by_subject.values()]


def _group(episodes: Sequence[AlertCard]) -> AlertGroup:
    """What every group holds, from its episodes (oldest first, at least one)."""
    first, latest = episodes[0], episodes[-1]
    critical = sum(1 for e in episodes if e.severity == "critical")
    return AlertGroup(
        source=first.source,
        subject=first.subject,
        severity="critical" if critical else "warning",
        fired=len(episodes),
        critical=critical,
        first_start=first.start,
        last_end=latest.end,
        longest_s=max(e.duration_s for e in episodes),
        total_s=math.fsum(e.duration_s for e in episodes),
    )


def sorted_groups(groups: Iterable[AlertGroup]) -> tuple[AlertGroup, ...]:
    """Critical first, then the longest over the line in all, then by name (for equal cards, equal bytes)."""
    return tuple(sorted(groups, key=lambda g: (g.severity != "critical", -g.total_s, g.source, g.subject)))


@dataclass(frozen=True, slots=True)
class AlertView:
    """What the Markdown and HTML cards show of the alerts: the KPI breach groups; the audit trail's
    episodes one by one where few (``verdicts``), else their groups (``verdict_groups``); and the latest KPI
    breach episodes, newest first, where there are more episodes than groups."""

    kpi_groups: tuple[AlertGroup, ...]
    verdicts: tuple[AlertCard, ...]
    verdict_groups: tuple[AlertGroup, ...]
    latest: tuple[AlertCard, ...]
    kpi_episodes: int


def alert_view(card: ReportCard) -> AlertView:
    kpi_groups = tuple(g for g in card.alert_groups if g.source == "kpi")
    breaches = [a for a in card.alerts if a.source == "kpi"]
    verdicts = tuple(a for a in card.alerts if a.source != "kpi")
    few = len(verdicts) <= VERDICTS_LISTED_UP_TO
    latest = tuple(reversed(breaches[-LATEST_EPISODES:])) if len(breaches) > len(kpi_groups) else ()
    return AlertView(
        kpi_groups=kpi_groups,
        verdicts=verdicts if few else (),
        verdict_groups=() if few else tuple(g for g in card.alert_groups if g.source != "kpi"),
        latest=latest,
        kpi_episodes=len(breaches),
    )
