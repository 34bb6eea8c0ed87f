"""The alert tables as plain text cells, the same for Markdown and HTML: each renderer escapes every cell
for its format and dresses up the columns named below (a severity's mark, a KPI name as code)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import words
from .card import AlertCard, AlertGroup, ReportCard
from .groups import alert_view
from .period import short_utc_text


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    severity: int | None = None  # the column holding a severity word, if any
    code: int | None = None  # the column holding a KPI name, if any
    numeric: frozenset[int] = frozenset()  # columns of counts and durations, right-aligned in HTML


def kpi_groups(groups: Sequence[AlertGroup]) -> Table:
    return Table(
        title="KPI breaches",
        headers=(
            "Severity",
            "KPI",
            "Agent",
            "Fired",
            "First (UTC)",
            "Last ended (UTC)",
            "Longest",
            "In all",
            "Worst",
            "Line crossed",
        ),
        rows=[
            (
                g.severity,
                g.kpi or "",
                g.agent or "",
                words.fired_text(g),
                short_utc_text(g.first_start),
                words.group_end(g),
                words.group_longest(g),
                words.group_total(g),
                g.worst or "",
                g.line or "",
            )
            for g in groups
        ],
        severity=0,
        code=1,
        numeric=frozenset({3, 6, 7}),
    )


VERDICTS_TITLE = "Criteria that failed and gates that closed"


def verdicts(alerts: Sequence[AlertCard]) -> Table:
    return Table(
        title=VERDICTS_TITLE,
        headers=("Alert", "About", "Started (UTC)", "Ended (UTC)", "Duration", "Detail"),
        rows=[
            (
                words.SOURCE_WORDS[a.source],
                a.subject,
                short_utc_text(a.start),
                words.alert_end_short(a),
                words.alert_duration(a),
                a.detail,
            )
            for a in alerts
        ],
        numeric=frozenset({4}),
    )


def verdict_groups(groups: Sequence[AlertGroup]) -> Table:
    return Table(
        title=VERDICTS_TITLE,
        headers=("Alert", "About", "Fired", "First (UTC)", "Last ended (UTC)", "Longest", "In all", "Latest"),
        rows=[
            (
                words.SOURCE_WORDS[g.source],
                g.subject,
                words.fired_text(g),
                short_utc_text(g.first_start),
                words.group_end(g),
                words.group_longest(g),
                words.group_total(g),
                g.detail or "",
            )
            for g in groups
        ],
        numeric=frozenset({2, 5, 6}),
    )


def latest(alerts: Sequence[AlertCard], of: int) -> Table:
    return Table(
        title=f"The latest {len(alerts)} of {of} KPI breach episodes, newest first",
        headers=("About", "Severity", "Started (UTC)", "Ended (UTC)", "Duration", "Worst"),
        rows=[
            (
                a.subject,
                a.severity,
                short_utc_text(a.start),
                words.alert_end_short(a),
                words.alert_duration(a),
                a.worst or a.detail,
            )
            for a in alerts
        ],
        severity=1,
        numeric=frozenset({4}),
    )


def rules(groups: Sequence[AlertGroup]) -> Table:
    return Table(
        title="The rules they broke",
        headers=("KPI", "Rule"),
        rows=list(words.rules_of(groups)),
        code=0,
    )


@dataclass(frozen=True, slots=True)
class Note:
    """A paragraph under a table, set smaller."""

    text: str


def section(card: ReportCard) -> list[Table | Note]:
    """The alerts section's parts in order, after its summary line (a card with alerts only)."""
    view = alert_view(card)
    parts: list[Table | Note] = []
    if view.kpi_groups:
        parts.append(kpi_groups(view.kpi_groups))
        note = words.sampling_note(view.kpi_groups)
        if note is not None:
            parts.append(Note(note))
        parts.append(rules(view.kpi_groups))
    if view.verdicts:
        parts.append(verdicts(view.verdicts))
    if view.verdict_groups:
        parts.append(verdict_groups(view.verdict_groups))
    if view.latest:
        parts.append(latest(view.latest, view.kpi_episodes))
    return parts


ORDER = "listed critical first, then by time over the line."
