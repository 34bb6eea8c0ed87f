"""The words every format of the card uses alike, so Markdown, HTML and a reader's eye agree."""

from __future__ import annotations

from collections import Counter

from backends.kpis import format_value

from .card import AlertCard, GateCard, KpiSummary, PhaseCard, ReportCard, Signoff
from .period import duration_text, utc_text

GATE_WORDS = {"go": "GO", "no-go": "NO-GO", "pending": "PENDING"}
SIGNED_WORDS = {"go": "GO", "no-go": "NO-GO"}


def verdict_counts(card: ReportCard) -> Counter[str]:
    return Counter(c.verdict for p in card.phases for m in p.milestones for c in m.criteria)


def summary_line(card: ReportCard) -> str:
    counts = verdict_counts(card)
    criteria = ", ".join(f"{counts[v]} {v}" for v in ("PASS", "FAIL", "OPEN"))
    alerts = len(card.alerts)
    actions = len(card.actions)
    return (
        f"{len(card.phases)} phase{'s' * (len(card.phases) != 1)} · criteria {criteria} · "
        f"{alerts} alert{'s' * (alerts != 1)} · {actions} operator action{'s' * (actions != 1)}"
    )


def period_text(card: ReportCard) -> str:
    return f"last {card.period}: {utc_text(card.period_start)} – {utc_text(card.period_end)}"


def phase_title(phase: PhaseCard) -> str:
    return f"Phase {phase.order} — {phase.name}"


def phase_status(phase: PhaseCard) -> str:
    done = sum(1 for m in phase.milestones if m.status == "passed")
    progress = "" if phase.progress is None else f", {round(phase.progress * 100)}%"
    return f"{phase.status}{progress}, {done}/{len(phase.milestones)} milestones passed"


def gate_word(gate: GateCard) -> str:
    return GATE_WORDS.get(gate.decision, gate.decision.upper())


def since_text(ts: float | None) -> str:
    return "" if ts is None else f"since {utc_text(ts)}"


def signed_text(signed: Signoff | None) -> str:
    """ "Signed NO-GO by alice at 2026-12-01 16:00 UTC" (the reason apart); "not signed off" for none."""
    if signed is None:
        return "not signed off"
    word = SIGNED_WORDS.get(signed.decision, signed.decision.upper())
    return f"signed {word} by {signed.operator} at {utc_text(signed.at)}"


def who(summary: KpiSummary) -> str:
    if summary.agent_id is not None:
        return summary.agent_id
    return f"all {summary.agents} agents"


def figures(summary: KpiSummary) -> tuple[str, str, str, str]:
    """min, p95, max, last for people; a counter's last is followed by its growth over the period. Across
    agents, a counter's min/p95/max would mix one agent's count with another's, so none is shown (the JSON
    keeps them)."""
    shown = [format_value(v, summary.unit) for v in (summary.min, summary.p95, summary.max, summary.last)]
    if summary.kind == "counter" and summary.agent_id is None:
        shown[:3] = ["—", "—", "—"]
    if summary.increase is not None:
        shown[3] += f" (+{format_value(summary.increase, summary.unit)})"
    return shown[0], shown[1], shown[2], shown[3]


def alert_end(alert: AlertCard) -> str:
    return "ongoing" if alert.end is None else utc_text(alert.end)


def alert_duration(alert: AlertCard) -> str:
    text = duration_text(alert.duration_s)
    return f"{text}+" if alert.end is None else text


LAST_NOTE = (
    "Last: one agent's latest figure; for all agents, their latest averaged, or a counter's summed "
    "(+ its growth in the period)."
)
SOURCE_WORDS = {"kpi": "KPI breach", "criterion": "Criterion FAIL", "gate": "Gate NO-GO"}
