"""The words every format of the card uses alike, so Markdown, HTML and a reader's eye agree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from backends.kpis import format_value

from .card import AlertCard, AlertGroup, GateCard, KpiSummary, PhaseCard, ReportCard, Signoff
from .period import duration_text, short_utc_text, utc_text

GATE_WORDS = {"go": "GO", "no-go": "NO-GO", "pending": "PENDING"}
SIGNED_WORDS = {"go": "GO", "no-go": "NO-GO"}


def verdict_counts(card: ReportCard) -> Counter[str]:
    return Counter(c.verdict for p in card.phases for m in p.milestones for c in m.criteria)


def summary_line(card: ReportCard) -> str:
    counts = verdict_counts(card)
    criteria = ", ".join(f"{counts[v]} {v}" for v in ("PASS", "FAIL", "OPEN"))
    actions = len(card.actions)
    return (
        f"{plural(len(card.phases), 'phase')} · criteria {criteria} · {alerts_text(card)} · "
        f"{plural(actions, 'operator action')}"
    )


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def alerts_text(card: ReportCard) -> str:
    """ "12 alerts (3 critical, 9 warning) from 191 episodes": what fired, taken together by what it was."""
    groups = card.alert_groups
    if not groups:
        return "no alerts"
    critical = sum(1 for g in groups if g.severity == "critical")
    return (
        f"{plural(len(groups), 'alert')} ({critical} critical, {len(groups) - critical} warning) "
        f"from {plural(len(card.alerts), 'episode')}"
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
    """ "5m30s"; "30m00s ± 30 min" where the samples around it were further apart than its rule's for_s;
    a "+" while it is still going on."""
    text = duration_text(alert.duration_s) + ("+" if alert.end is None else "")
    if alert.to_nearest_sample and alert.sampling_s is not None:
        text += f" ± {step_text(alert.sampling_s)}"
    return text


def group_end(group: AlertGroup) -> str:
    return "ongoing" if group.last_end is None else short_utc_text(group.last_end)


def alert_end_short(alert: AlertCard) -> str:
    return "ongoing" if alert.end is None else short_utc_text(alert.end)


def rules_of(groups: Sequence[AlertGroup]) -> list[tuple[str, str]]:
    """Each (KPI, rule) the groups broke, once, by KPI: the rules are few and the same for many agents."""
    return sorted({(g.kpi, g.lines) for g in groups if g.kpi is not None and g.lines is not None})


def fired_text(group: AlertGroup) -> str:
    """ "57 (44 critical)", "3", "1"."""
    if group.critical and group.critical < group.fired:
        return f"{group.fired} ({group.critical} critical)"
    return str(group.fired)


def group_longest(group: AlertGroup) -> str:
    """The longest episode; ± the sampling step where the samples are coarser than the rule's for_s."""
    text = duration_text(group.longest_s)
    if group.to_nearest_sample and group.sampling_s is not None:
        text += f" ± {step_text(group.sampling_s)}"
    return text


def group_total(group: AlertGroup) -> str:
    """The time over the line in all; "≈" where each episode's part of it is known to a sample only."""
    text = duration_text(group.total_s) + ("+" if group.last_end is None else "")
    return f"≈ {text}" if group.to_nearest_sample else text


def step_text(seconds: float) -> str:
    """A sampling step as people say it: "30 min", "1 h", "30 s", "2m30s"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s" if seconds < 60 else duration_text(seconds)


def sampling_note(groups: Sequence[AlertGroup]) -> str | None:
    """What "±" and "≈" mean, where some group's samples were coarser than its rule's for_s; else None."""
    steps = sorted({g.sampling_s for g in groups if g.to_nearest_sample and g.sampling_s is not None})
    if not steps:
        return None
    every = " or ".join(step_text(s) for s in steps)
    return (
        f"± and ≈: durations to the nearest sample. The history keeps one sample every {every} here, "
        "coarser than the rules' for_s, so each breach's start and end are known only to within a sample: "
        "a duration is ± one step, a total is rough, and a breach shorter than a step may be missed or "
        "counted as a whole step."
    )


LAST_NOTE = (
    "Last: one agent's latest figure; for all agents, their latest averaged, or a counter's summed "
    "(+ its growth in the period)."
)
SOURCE_WORDS = {"kpi": "KPI breach", "criterion": "Criterion FAIL", "gate": "Gate NO-GO"}
