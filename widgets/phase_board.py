"""The phase board: each phase with its progress bar, milestones (PASS/FAIL), criteria and the gate.

A phase the node explains (``Phase.status_reason``: why a Ray job failed, how it was stopped) gets that line
under its bar. A phase without a gate (the model's empty default, e.g. a Ray job) gets no gate row: "gate
PENDING" would promise a decision nobody is going to take.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from backends.model import Criterion, Milestone, Phase

from .format import NA, bar, fmt_ago, fmt_fraction, has_gate
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


def criterion_line(criterion: Criterion) -> Text:
    verdict = {True: ("PASS", "green"), False: ("FAIL", "bold red"), None: ("----", "dim")}[criterion.verdict]
    text = Text("      ")
    text.append(verdict[0], style=verdict[1])
    actual = criterion.actual if criterion.measured else NOT_MEASURED
    text.append_text(safe_text(f" {criterion.name}: {actual or NA}"))
    text.append_text(safe_text(f"  (target {criterion.target})", style="dim"))
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
    if phase.gate.reasons:
        reasons = safe_text(
            " — " + "; ".join(phase.gate.reasons), style="dim" if phase.gate.decision == "go" else ""
        )
        gate.append_text(reasons)
    lines.append(gate)
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
