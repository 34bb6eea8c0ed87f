"""Every KPI of one agent: its figure, its state against its threshold (and since when it breaches), the
threshold itself and a trend of its recent history.

Wide, one line per KPI::

    latency_p95_ms   ✖ 162 ms    ✖ critical since 12:04:05   warn 120 ms · crit 150 ms, above, 60 s   ▂▃▅▇
    success_ratio    99.93%      ok                          warn 99.9% · crit 99%, below             ▇▇▇▇

Narrow (an 80-column terminal), the threshold goes on a second line under its KPI. KPI names are validated
by the wire model; they go through ``safe_text`` all the same, as everything a node sends does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from backends.model import Kpi

from .kpi_view import Grade, ResolvedRule, figure_text, state_text, threshold_text, trend
from .safe import safe_text

ONE_LINE_MIN = 110  # columns from which a KPI and its threshold share a line
NAME_MAX = 28  # a longer name is cut (the whole name is in `fleetdeck agents --json`)
TREND_MIN = 8


@dataclass(frozen=True)
class KpiLine:
    """One KPI of an agent, with what the console made of it."""

    kpi: Kpi
    rule: ResolvedRule | None = None
    unit: str = "count"  # the judged figure's unit: the value's, a counter's rate's (per_s)
    grade: Grade = None
    since: float | None = None  # when the breach began, while it breaches
    history: tuple[float, ...] = ()  # its recent judged figures, oldest first
    lines: tuple[float, ...] = ()  # the rule's warn and crit lines in ``unit``, for the trend's scale


def _cut(text: Text, width: int) -> Text:
    if cell_len(text.plain) <= width:
        return text
    return text[: width - 1] + Text("…")


def _pad(text: Text, width: int) -> Text:
    text = _cut(text, width)
    return text + Text(" " * (width - cell_len(text.plain)))


class KpiList(Widget):
    DEFAULT_CSS = """
    KpiList { height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: tuple[KpiLine, ...] = ()

    def show(self, lines: Sequence[KpiLine]) -> None:
        new = tuple(lines)
        if new == self._lines:
            return
        layout = len(new) != len(self._lines)
        self._lines = new
        self.refresh(layout=layout)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # the lines depend on the width (a threshold beside its figure or under it): count them at it
        return self._text(width).plain.count("\n") + 1

    def render(self) -> Text:
        return self._text(self.content_size.width or 160)

    def _text(self, width: int) -> Text:
        lines = self._lines
        if not lines:
            return Text("no KPIs reported", style="dim")
        names = [safe_text(line.kpi.name) for line in lines]
        figures = [figure_text(line.kpi, line.grade, with_rate=True) for line in lines]
        states = [state_text(line.grade, line.since, judged=line.rule is not None) for line in lines]
        thresholds = [threshold_text(line.rule, line.unit) for line in lines]
        name_w = min(NAME_MAX, max(cell_len(n.plain) for n in names))
        figure_w = max(cell_len(f.plain) for f in figures)
        state_w = max(cell_len(s.plain) for s in states)
        one_line = width >= ONE_LINE_MIN
        threshold_w = max(len(t) for t in thresholds) if one_line else 0
        used = name_w + figure_w + state_w + 6 + (threshold_w + 2 if one_line else 0)
        # the trend on the KPI's line while it has room there, else after the threshold under it
        trend_w = width - used
        inline = trend_w >= TREND_MIN
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, line in enumerate(lines):
            if i:
                out.append("\n")
            out.append_text(_pad(names[i], name_w))
            out.append("  ")
            out.append_text(_pad(figures[i], figure_w))
            out.append("  ")
            out.append_text(_pad(states[i], state_w) if inline or not one_line else states[i])
            if one_line:
                out.append("  ")
                out.append(thresholds[i].ljust(threshold_w) if inline else thresholds[i], style="dim")
            if inline:
                out.append("  ")
                out.append(trend(line.history, trend_w, line.lines), style="cyan")
            if one_line and inline:
                continue
            out.append("\n  ")
            rest = width - 2
            if not one_line:
                out.append(thresholds[i], style="dim")
                rest -= len(thresholds[i]) + 2
                out.append("  ")
            if not inline and rest >= TREND_MIN:
                out.append(trend(line.history, rest, line.lines), style="cyan")
        return out
