"""The node's KPI panel: for each KPI its agents report, the fleet-wide spread now (min, p50, p95, max of
the agents' latest figures), its threshold, how many agents breach it, and the trend of the fleet's figure.

    KPI               agents     min     p50     p95     max  breach  trend
    latency_p95_ms        12   81 ms   97 ms  162 ms  171 ms  ✖2 ▲1   ▂▃▃▅▇
      warn 120 ms · crit 150 ms, above, 60 s

The columns after p50 make way on a narrow panel (min first, then the trend's width); the numbers are
formatted by :mod:`backends.kpis`, the breach counts are the console's judgement, handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from backends.kpis import format_rate, format_value

from .kpi_view import ResolvedRule, grade_style, threshold_text, trend
from .safe import safe_text

NAME_MAX = 24
FIGURE_W = 8  # "1023 ms", "99.93%", "$12.34", "1.2k/h"
TREND_MIN = 6
MIN_COLUMN_FROM = 72  # columns from which the min is shown too


@dataclass(frozen=True)
class KpiSummary:
    """One KPI across a node's agents."""

    name: str
    unit: str  # the unit the figures below are in
    reporting: int  # agents reporting it
    rate_of: str | None = None  # a counter: the figures are its rate per second of this unit
    low: float | None = None
    p50: float | None = None
    p95: float | None = None
    high: float | None = None
    rule: ResolvedRule | None = None  # the node's rule for it (an agent's overrides may differ)
    rule_unit: str = "count"  # the judged figure's unit, for a rule that names none
    critical: int = 0  # agents breaching the critical line
    warning: int = 0  # agents past the warning line only
    trend: tuple[float, ...] = ()  # the fleet's figure over time, oldest first
    lines: tuple[float, ...] = ()  # the rule's lines in ``unit``, for the trend's scale


def breach_text(summary: KpiSummary) -> Text:
    """ "✖2 ▲1", "ok", or "—" where no threshold judges the KPI."""
    if summary.rule is None:
        return Text("—", style="dim")
    if not summary.critical and not summary.warning:
        return Text("ok", style="green")
    text = Text()
    if summary.critical:
        text.append(f"✖{summary.critical}", style=grade_style("critical"))
    if summary.warning:
        text.append(" " if summary.critical else "")
        text.append(f"▲{summary.warning}", style=grade_style("warning"))
    return text


def _figure(row: KpiSummary, value: float | None) -> str:
    """A gauge in its unit ("97 ms"); a counter's rate in the unit that reads best ("$1.20/h", "22/s")."""
    if value is None or row.rate_of is None:
        return format_value(value, row.unit)
    return format_rate(value, row.rate_of)


class KpiPanel(Widget):
    DEFAULT_CSS = """
    KpiPanel { height: auto; padding: 0 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._rows: tuple[KpiSummary, ...] = ()

    def show(self, rows: Sequence[KpiSummary]) -> None:
        new = tuple(rows)
        if new == self._rows:
            return
        layout = len(new) != len(self._rows)
        self._rows = new
        self.refresh(layout=layout)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # the lines depend on the width (a threshold beside its figure or under it): count them at it
        return self._text(width).plain.count("\n") + 1

    def render(self) -> Text:
        return self._text(self.content_size.width or 120)

    def _text(self, width: int) -> Text:
        rows = self._rows
        if not rows:
            return Text("no agent reports a KPI yet", style="dim")
        names = [safe_text(row.name) for row in rows]
        name_w = min(NAME_MAX, max(3, *(cell_len(n.plain) for n in names)))
        breaches = [breach_text(row) for row in rows]
        breach_w = max(6, *(cell_len(b.plain) for b in breaches))
        with_min = width >= MIN_COLUMN_FROM
        figures = ("low", "p50", "p95", "high") if with_min else ("p50", "p95", "high")
        used = name_w + 7 + (FIGURE_W + 1) * len(figures) + 2 + breach_w
        # the trend on the figures' line while it has room there, else after the threshold under them
        trend_w = width - used - 1
        inline = trend_w >= TREND_MIN
        head = Text(style="bold")
        head.append("KPI".ljust(name_w) + " agents")
        for what in figures:
            head.append(" " + {"low": "min", "high": "max"}.get(what, what).rjust(FIGURE_W))
        head.append("  " + "breach".ljust(breach_w) + (" trend" if inline else ""))
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append_text(head)
        for row, name, breach in zip(rows, names, breaches, strict=True):
            out.append("\n")
            if cell_len(name.plain) > name_w:
                name = name[: name_w - 1] + Text("…")
            out.append_text(name)
            out.append(" " * (name_w - cell_len(name.plain)))
            out.append(f" {row.reporting:>6}")
            for what in figures:
                out.append(" " + _figure(row, getattr(row, what)).rjust(FIGURE_W))
            out.append("  ")
            out.append_text(breach)
            threshold = f"  {threshold_text(row.rule, row.rule_unit)}"
            if inline:
                out.append(" " * (breach_w - cell_len(breach.plain) + 1))
                out.append(trend(row.trend, trend_w, row.lines), style="cyan")
            out.append("\n")
            out.append(threshold, style="dim")
            room = width - len(threshold) - 2
            if not inline and room >= TREND_MIN:
                out.append("  ")
                out.append(trend(row.trend, room, row.lines), style="cyan")
        return out
