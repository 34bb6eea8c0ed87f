"""The report card as Markdown (GitHub-flavoured) that reads well in a pull request or a wiki.

Everything the node said is text, never markup: control characters and terminal escapes are shown
(``terminal_safe``, so a newline cannot end a table row), and the characters Markdown would act on (a
pipe ending a cell, ``*`` emphasis, ``[links](...)``, backticks, raw HTML) are escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from backends.safe_text import terminal_safe

from . import alert_tables, words
from .card import MilestoneCard, PhaseCard, ReportCard
from .period import utc_text

_ALWAYS = re.compile(r"([\\`*\[\]|~#])")  # acted on wherever they stand
_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")  # emphasis only at a word's edge
_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # what could open raw HTML or an autolink
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
SEVERITY_MARKS = {"critical": "🔴 critical", "warning": "🟡 warning"}
VERDICT_MARKS = {"PASS": "✅ PASS", "FAIL": "❌ FAIL", "OPEN": "⏳ OPEN"}


def md(text: object) -> str:
    """``text`` from the node as one line of literal Markdown text."""
    safe = terminal_safe(text)
    safe = _ALWAYS.sub(r"\\\1", safe)
    safe = _UNDERSCORE.sub(r"\\_", safe)
    safe = _ENTITY.sub("&amp;", safe)  # first: the &lt; below is meant as an entity
    return _TAG.sub("&lt;", safe)


def render(card: ReportCard) -> str:
    out: list[str] = [f"# Report card: {md(card.node)}", ""]
    out += _table(
        ("", ""),
        [
            ("**Node**", f"{md(card.node)} ({md(card.backend)}, {md(card.environment)})"),
            ("**Generated**", utc_text(card.generated_at)),
            ("**Period**", words.period_text(card)),
            ("**Summary**", words.summary_line(card)),
        ],
    )
    out += ["", "## Plan", ""]
    if not card.phases:
        out += ["No plan loaded on this node.", ""]
    for phase in card.phases:
        out += _phase(phase)
    out += _kpis(card)
    out += _alerts(card)
    out += _actions(card)
    return "\n".join(out).rstrip("\n") + "\n"


def _phase(phase: PhaseCard) -> list[str]:
    out = [
        f"### {md(words.phase_title(phase))} (`{_code(phase.id)}`)",
        "",
        f"*{md(words.phase_status(phase))}*",
        "",
    ]
    gate = phase.gate
    if gate is not None:
        since = words.since_text(gate.since)
        out += [f"**Gate: {words.gate_word(gate)}**" + (f" ({since})" if since else ""), ""]
        if gate.reasons:
            out += [*(f"- {md(reason)}" for reason in gate.reasons), ""]
        signed = gate.signed
        line = f"Sign-off: {md(words.signed_text(signed))}"
        if signed is not None and signed.reason:
            line += f" — “{md(signed.reason)}”"
        out += [line, ""]
    for milestone in phase.milestones:
        out += _milestone(milestone)
    return out


def _milestone(milestone: MilestoneCard) -> list[str]:
    out = [f"#### {md(milestone.name)} (`{_code(milestone.id)}`): {md(milestone.status)}", ""]
    if not milestone.criteria:
        return [*out, "No criteria.", ""]
    rows = [
        (
            md(c.name) + (f" (`{_code(c.kpi)}`)" if c.kpi else ""),
            md(c.target),
            "n/a" if c.actual is None else md(c.actual),
            VERDICT_MARKS[c.verdict],
            utc_text(c.since) if c.since is not None else "",
        )
        for c in milestone.criteria
    ]
    return [*out, *_table(("Criterion", "Target", "Actual", "Verdict", "Since"), rows), ""]


def _kpis(card: ReportCard) -> list[str]:
    out = ["## KPIs over the period", ""]
    section = card.kpis
    if not section.kept:
        return [*out, f"{md(section.note or 'no history kept by this node').capitalize()}.", ""]
    if not section.summaries:
        return [*out, "No KPI figures were reported in the period.", ""]
    rows = [
        (f"`{_code(s.name)}`", md(words.who(s)), str(s.points), *words.figures(s)) for s in section.summaries
    ]
    out += _table(("KPI", "Agents", "Points", "Min", "P95", "Max", "Last"), rows)
    return [
        *out,
        "",
        words.LAST_NOTE,
        "",
    ]


def _alerts(card: ReportCard) -> list[str]:
    out = ["## Alerts that fired", ""]
    if not card.alerts:
        note = "" if card.audit.kept else f" (criterion and gate history: {card.audit.note})"
        return [*out, f"None in the period{md(note)}.", ""]
    out += [f"**{md(words.alerts_text(card))}**, {md(alert_tables.ORDER)}", ""]
    for part in alert_tables.section(card):
        if isinstance(part, alert_tables.Note):
            out += [f"*{md(part.text)}*", ""]
            continue
        rows = [[_cell(part, index, cell) for index, cell in enumerate(row)] for row in part.rows]
        out += [f"### {md(part.title)}", "", *_table(part.headers, rows), ""]
    return out


def _cell(table: alert_tables.Table, index: int, text: str) -> str:
    if index == table.severity:
        return SEVERITY_MARKS.get(text, md(text))
    if index == table.code:
        return f"`{_code(text)}`"
    return md(text)


def _actions(card: ReportCard) -> list[str]:
    out = ["## Operator actions", ""]
    if not card.audit.kept:
        return [*out, f"{md(card.audit.note or '').capitalize()}.", ""]
    if not card.actions:
        return [*out, "None in the period.", ""]
    rows = [
        (
            utc_text(a.ts),
            md(a.operator),
            md(a.action),
            md(a.target or ""),
            md(a.reason or ""),
            md(a.outcome) + (f": {md(a.detail)}" if a.detail else ""),
        )
        for a in card.actions
    ]
    return [*out, *_table(("When", "Who", "What", "Target", "Reason", "Outcome"), rows), ""]


def _code(text: str) -> str:
    """Text for inside a code span: ids and KPI names, which may hold no backtick (and lose one if so)."""
    return terminal_safe(text).replace("`", "'").replace("|", "\\|")


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return lines
