"""The report card as one self-contained HTML page: inline CSS, no scripts, fonts or images, so it can be
mailed, attached or archived as it is, and printed (each phase on its own page, no dark backgrounds).

Every string from the node is text: made terminal-safe (control characters and bidi overrides shown, not
obeyed) and then ``html.escape``d, so a criterion named ``<script>`` is shown, never run. Verdicts carry
their word as well as their colour (PASS, FAIL, OPEN), for printers and readers who cannot tell colours.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from backends.safe_text import terminal_safe

from . import alert_tables, words
from .card import GateCard, MilestoneCard, PhaseCard, ReportCard
from .period import utc_text

VERDICT_MARKS = {"PASS": "✔ PASS", "FAIL": "✘ FAIL", "OPEN": "… OPEN"}
GATE_CLASSES = {"go": "pass", "no-go": "fail"}

CSS = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --head: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #b42318; --fail-bg: #ffebe9; --open: #6e5600;
  --open-bg: #fff8c5; }
@media screen and (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --bg: #0d1117; --head: #161b22;
    --pass: #3fb950; --pass-bg: #12261e; --fail: #f85149; --fail-bg: #2d1214; --open: #d29922;
    --open-bg: #272115; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 28px 0 4px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); }
.muted { color: var(--muted); margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
table.criteria { table-layout: fixed; }
table.criteria th:nth-child(1) { width: 34%; }
table.criteria th:nth-child(2), table.criteria th:nth-child(3) { width: 20%; }
table.criteria th:nth-child(4) { width: 10%; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.mark { display: inline-block; padding: 0 6px; border-radius: 4px; font-weight: 700; white-space: nowrap;
  border: 1px solid currentColor; }
.pass { color: var(--pass); background: var(--pass-bg); }
.fail { color: var(--fail); background: var(--fail-bg); }
.open, .pending { color: var(--open); background: var(--open-bg); }
.gate { border: 1px solid var(--line); border-left: 6px solid var(--open); padding: 8px 12px;
  margin: 8px 0 12px; }
.gate.pass { border-left-color: var(--pass); background: none; color: inherit; }
.gate.fail { border-left-color: var(--fail); background: none; color: inherit; }
.gate ul { margin: 4px 0; padding-left: 20px; }
.gate p { margin: 4px 0 0; }
table.alerts th, table.alerts td { font-size: 12.5px; padding: 4px 6px; }
table.alerts td { white-space: nowrap; }  /* a date or an agent's name broken in two reads as two */
.note { font-size: 12px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  :root { --fg: #000; --muted: #444; --line: #999; --bg: #fff; --head: #eee; }
  body { max-width: none; padding: 0; font-size: 11pt; background: #fff; color: #000; }
  .phase ~ .phase { break-before: page; }  /* the first shares page one with the header */
  h2, h3 { break-after: avoid; }
  tr, .gate { break-inside: avoid; }
  thead { display: table-header-group; }
  .mark, .pass, .fail, .open, .pending { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def esc(text: object) -> str:
    """Text from the node, safe as HTML text or an attribute value."""
    return html.escape(terminal_safe(text), quote=True)


def render(card: ReportCard) -> str:
    title = f"Report card: {esc(card.node)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title} · {esc(words.period_text(card))}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{title}</h1>",
        '<dl class="facts">',
        f"<dt>Node</dt><dd>{esc(card.node)} ({esc(card.backend)}, {esc(card.environment)})</dd>",
        f"<dt>Generated</dt><dd>{esc(utc_text(card.generated_at))}</dd>",
        f"<dt>Period</dt><dd>{esc(words.period_text(card))}</dd>",
        f"<dt>Summary</dt><dd>{esc(words.summary_line(card))}</dd>",
        "</dl>",
        "</header>",
        "<main>",
    ]
    if not card.phases:
        parts.append('<section class="plan"><h2>Plan</h2><p>No plan loaded on this node.</p></section>')
    parts += [line for phase in card.phases for line in _phase(phase)]
    parts += [
        '<section class="phase summaries">',
        *_kpis(card),
        *_alerts(card),
        *_actions(card),
        "</section>",
    ]
    parts += ["</main>", "<footer>Written by fleetdeck report-card.</footer>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _phase(phase: PhaseCard) -> list[str]:
    out = [
        f'<section class="phase" id="phase-{esc(phase.id)}">',
        f"<h2>{esc(words.phase_title(phase))} <code>{esc(phase.id)}</code></h2>",
        f'<p class="muted">{esc(words.phase_status(phase))}</p>',
    ]
    if phase.gate is not None:
        out += _gate(phase.gate)
    for milestone in phase.milestones:
        out += _milestone(milestone)
    return [*out, "</section>"]


def _gate(gate: GateCard) -> list[str]:
    css = GATE_CLASSES.get(gate.decision, "pending")
    since = words.since_text(gate.since)
    out = [
        f'<div class="gate {css}">',
        f'<strong>Gate: <span class="mark {css}">{esc(words.gate_word(gate))}</span></strong>'
        + (f' <span class="muted">{esc(since)}</span>' if since else ""),
    ]
    if gate.reasons:
        out += ["<ul>", *(f"<li>{esc(reason)}</li>" for reason in gate.reasons), "</ul>"]
    signed = gate.signed
    line = f"Sign-off: {esc(words.signed_text(signed))}"
    if signed is not None and signed.reason:
        line += f" — “{esc(signed.reason)}”"
    return [*out, f"<p>{line}</p>", "</div>"]


def _milestone(milestone: MilestoneCard) -> list[str]:
    out = [f"<h3>{esc(milestone.name)} <code>{esc(milestone.id)}</code>: {esc(milestone.status)}</h3>"]
    if not milestone.criteria:
        return [*out, "<p>No criteria.</p>"]
    rows = [
        (
            esc(c.name) + (f" <code>{esc(c.kpi)}</code>" if c.kpi else ""),
            esc(c.target),
            "n/a" if c.actual is None else esc(c.actual),
            f'<span class="mark {c.verdict.lower()}">{VERDICT_MARKS[c.verdict]}</span>',
            esc(utc_text(c.since)) if c.since is not None else "",
        )
        for c in milestone.criteria
    ]
    return [*out, *_table("criteria", ("Criterion", "Target", "Actual", "Verdict", "Since"), rows)]


def _kpis(card: ReportCard) -> list[str]:
    out = ["<h2>KPIs over the period</h2>"]
    section = card.kpis
    if not section.kept:
        return [*out, f"<p>{esc((section.note or 'no history kept by this node').capitalize())}.</p>"]
    if not section.summaries:
        return [*out, "<p>No KPI figures were reported in the period.</p>"]
    rows = [
        (f"<code>{esc(s.name)}</code>", esc(words.who(s)), str(s.points), *(esc(f) for f in words.figures(s)))
        for s in section.summaries
    ]
    numeric = {2, 3, 4, 5, 6}
    out += _table("kpis", ("KPI", "Agents", "Points", "Min", "P95", "Max", "Last"), rows, numeric)
    return [*out, f'<p class="muted">{esc(words.LAST_NOTE)}</p>']


def _alerts(card: ReportCard) -> list[str]:
    out = ["<h2>Alerts that fired</h2>"]
    if not card.alerts:
        note = "" if card.audit.kept else f" (criterion and gate history: {card.audit.note})"
        return [*out, f"<p>None in the period{esc(note)}.</p>"]
    out.append(f"<p><strong>{esc(words.alerts_text(card))}</strong>, {esc(alert_tables.ORDER)}</p>")
    for part in alert_tables.section(card):
        if isinstance(part, alert_tables.Note):
            out.append(f'<p class="muted note">{esc(part.text)}</p>')
            continue
        rows = [[_cell(part, index, cell) for index, cell in enumerate(row)] for row in part.rows]
        out += [f"<h3>{esc(part.title)}</h3>", *_table("alerts", part.headers, rows, set(part.numeric))]
    return out


def _cell(table: alert_tables.Table, index: int, text: str) -> str:
    if index == table.severity:
        css = "fail" if text == "critical" else "open"
        return f'<span class="mark {css}">{esc(text)}</span>'
    if index == table.code:
        return f"<code>{esc(text)}</code>"
    return esc(text)


def _actions(card: ReportCard) -> list[str]:
    out = ["<h2>Operator actions</h2>"]
    if not card.audit.kept:
        return [*out, f"<p>{esc((card.audit.note or '').capitalize())}.</p>"]
    if not card.actions:
        return [*out, "<p>None in the period.</p>"]
    rows = [
        (
            esc(utc_text(a.ts)),
            esc(a.operator),
            esc(a.action),
            esc(a.target or ""),
            esc(a.reason or ""),
            f'<span class="mark {"pass" if a.outcome == "ok" else "fail"}">{esc(a.outcome)}</span>'
            + (f" {esc(a.detail)}" if a.detail else ""),
        )
        for a in card.actions
    ]
    return [*out, *_table("actions", ("When", "Who", "What", "Target", "Reason", "Outcome"), rows)]


def _table(
    css: str, headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int] | None = None
) -> list[str]:
    """A table of cells already escaped."""
    numeric = numeric or set()
    out = [
        f'<table class="{css}">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in headers) + "</tr></thead>",
    ]
    out.append("<tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="num">{cell}</td>' if index in numeric else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    return [*out, "</tbody>", "</table>"]
