"""The phase board: each phase with its progress bar, milestones (PASS/FAIL), criteria and the gate.

A criterion bound to a KPI is judged live by the node: it is marked ⟳ and names its KPI. The gate's line
is the decision the node computed from its criteria, with the reasons; an operator's sign-off goes on the
line under it, never in its place.

A phase the node explains (``Phase.status_reason``: why a Ray job failed, how it was stopped) gets that line
under its bar. A phase without a gate (the model's empty default, e.g. a Ray job) gets no gate row: "gate
PENDING" would promise a decision nobody is going to take.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from backends.model import Criterion, Gate, Milestone, Phase

from .format import NA, bar, fmt_ago, fmt_fraction, has_gate
from .kpi_view import clock_time
from .safe import safe_text
from .steady import update_steady

PHASE_MARK: dict[str, tuple[str, str]] = {
    "done": ("✔", "green"),
    "active": ("▶", "bold cyan"),
    "paused": ("‖", "yellow"),
    "blocked": ("■", "bold yellow"),
    "failed": ("✖", "bold red"),
    "stopped": ("□", "yellow"),  # ended on request: over, but not done
    "pending": ("·", "dim"),
}
ENDED = frozenset({"done", "failed", "stopped"})  # no due date is shown for a phase that is over
MILESTONE_MARK: dict[str, tuple[str, str]] = {
    "passed": ("PASS", "bold green"),
    "failed": ("FAIL", "bold red"),
    "active": ("ACTV", "cyan"),
    "pending": ("    ", "dim"),
}
GATE_MARK: dict[str, tuple[str, str]] = {
    "go": ("GO", "bold green"),
    "no-go": ("NO-GO", "bold red"),
    "pending": ("PENDING", "dim"),
}


NOT_MEASURED = "not measured"


LIVE_MARK = "⟳"  # a criterion the node judges from live KPI figures, not one someone reported


def criterion_line(criterion: Criterion) -> Text:
    """ "PASS ⟳ P95 latency: 97 ms  (target < 120 ms · latency_p95_ms live since 12:04:05)": a criterion
    bound to a KPI is marked live and says which KPI and since when its verdict holds."""
    verdict = {True: ("PASS", "green"), False: ("FAIL", "bold red"), None: ("----", "dim")}[criterion.verdict]
    text = Text("      ")
    text.append(verdict[0], style=verdict[1])
    if criterion.kpi:
        text.append(f" {LIVE_MARK}", style="cyan")
    actual = criterion.actual if criterion.measured else NOT_MEASURED
    text.append_text(safe_text(f" {criterion.name}: {actual or NA}"))
    detail = f"target {criterion.target}"
    if criterion.kpi:
        detail += f" · {criterion.kpi} live"
    if criterion.since is not None:
        detail += f" since {clock_time(criterion.since)}"
    text.append_text(safe_text(f"  ({detail})", style="dim"))
    return text


def signoff_line(gate: Gate) -> Text | None:
    """ "signed GO by alice 12:04:05 — “load test reviewed”", beside the computed decision; it says so
    when the operator's word differs from what the figures decide."""
    signed = gate.signed
    if signed is None:
        return None
    word, style = GATE_MARK.get(signed.decision, ("?", ""))
    text = Text("        signed ")
    text.append(word, style=style)
    text.append_text(safe_text(f" by {signed.operator} {clock_time(signed.at)}"))
    if signed.reason:
        text.append_text(safe_text(f" — “{signed.reason}”", style="italic"))
    if gate.decision != "pending" and signed.decision != gate.decision:
        text.append(f"  (the figures say {GATE_MARK[gate.decision][0]})", style="bold")
    return text


def criteria_count(milestone: Milestone) -> str:
    """The count after a milestone's name: "3/3", or "2/3 passed · 1 not measured" once work on it has
    started and a criterion is still unmeasured, so it never reads as fully passed while one has no actual."""
    criteria = milestone.criteria
    passed = sum(c.verdict is True for c in criteria)
    unmeasured = sum(not c.measured for c in criteria)
    if not unmeasured or milestone.status == "pending":
        return f"{passed}/{len(criteria)}"
    return f"{passed}/{len(criteria)} passed · {unmeasured} {NOT_MEASURED}"


def milestone_lines(milestone: Milestone, with_criteria: bool) -> list[Text]:
    word, style = MILESTONE_MARK.get(milestone.status, ("?", ""))
    line = Text("   ")
    line.append(f"[{word}]", style=style)
    line.append_text(safe_text(f" {milestone.name}"))
    if milestone.criteria:
        line.append(f" {criteria_count(milestone)}", style="dim")
    lines = [line]
    if with_criteria and milestone.status in ("active", "failed"):
        lines.extend(criterion_line(c) for c in milestone.criteria)
    return lines


def phase_lines(phase: Phase, now: float, bar_width: int) -> list[Text]:
    mark, style = PHASE_MARK.get(phase.status, ("?", ""))
    head = Text()
    head.append(f"{mark} ", style=style)
    head.append_text(safe_text(f"{phase.order}. {phase.name}", style="bold"))
    head.append(f"  {phase.status.upper()}", style=style)
    lines = [head]
    progress = Text("   ")
    progress.append(bar(phase.progress, bar_width), style=style if phase.status != "pending" else "dim")
    progress.append(f" {fmt_fraction(phase.progress)}")
    if phase.due_at is not None and phase.status not in ENDED:
        overdue = phase.due_at < now
        progress.append(f"  due {fmt_ago(phase.due_at, now)}", style="bold red" if overdue else "dim")
        if overdue:
            progress.append(" OVERDUE", style="bold red")
    lines.append(progress)
    if phase.status_reason:
        why = Text("   ")
        why.append_text(safe_text(phase.status_reason, style="red" if phase.status == "failed" else ""))
        lines.append(why)
    expanded = phase.status in ("active", "blocked", "paused", "failed")
    for milestone in phase.milestones:
        lines.extend(milestone_lines(milestone, with_criteria=expanded))
    if not has_gate(phase):
        return lines
    word, gate_style = GATE_MARK.get(phase.gate.decision, ("?", ""))
    gate = Text("   gate ")
    gate.append(word, style=gate_style)
    if phase.gate.since is not None:
        gate.append(f" since {clock_time(phase.gate.since)}", style="dim")
    if phase.gate.reasons:
        reasons = safe_text(
            " — " + "; ".join(phase.gate.reasons), style="dim" if phase.gate.decision == "go" else ""
        )
        gate.append_text(reasons)
    lines.append(gate)
    signed = signoff_line(phase.gate)
    if signed is not None:
        lines.append(signed)
    return lines


class PhaseBoard(Static):
    DEFAULT_CSS = """
    PhaseBoard { height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(Text("no plan loaded", style="dim"), **kwargs)  # type: ignore[arg-type]
        self._shown: tuple[Sequence[Phase], int] | None = None
        self._lines: list[Text] = []

    def show(self, phases: Sequence[Phase], now: float) -> None:
        # due dates are shown relative to now, so minute resolution is enough to avoid needless repaints
        key = (tuple(phases), int(now // 60))
        if key == self._shown:
            return
        self._shown = key
        if not phases:
            self._lines = []
            update_steady(self, Text("no plan loaded — `fleetdeck plan apply FILE.toml`", style="dim"))
            return
        lines: list[Text] = []
        for phase in sorted(phases, key=lambda p: p.order):
            lines.extend(phase_lines(phase, now, bar_width=24))
            lines.append(Text(""))
        if lines == self._lines:
            return  # progress moved by less than the board shows: nothing to render again
        self._lines = lines
        update_steady(self, Group(*lines[:-1]))
