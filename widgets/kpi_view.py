"""How a KPI reads on screen, shared by the agents table, the agent's detail and the node's KPI panel: its
figure with the breach marked ("✖ 162 ms"), its threshold in words ("warn 120 ms · crit 150 ms, above,
60 s"), its state ("▲ warning since 12:04:05") and its trend as block characters.

Figures are formatted by :mod:`backends.kpis` only. The grade (``"warning"``, ``"critical"`` or None) is
the console's judgement, handed in: widgets do not judge. The symbol and the word carry the meaning, the
colour only reinforces it, so a breach is as plain with NO_COLOR.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, Protocol

from rich.text import Text

from backends.kpis import format_kpi, format_value
from backends.model import Kpi

from .format import NA
from .levels import LEVEL_SYMBOL, level_style

Grade = Literal["warning", "critical"] | None


class ResolvedRule(Protocol):
    """A KPI's threshold resolved for one agent or node, as ``console.core.kpi_rules.ResolvedRule`` is
    (widgets may not import the console, so the shape is named here): both lines are always set."""

    @property
    def name(self) -> str: ...
    @property
    def unit(self) -> str | None: ...  # None: the lines are in the unit the figure comes in
    @property
    def warn(self) -> float: ...
    @property
    def crit(self) -> float: ...
    @property
    def direction(self) -> str: ...  # "above": higher is worse; "below": lower is worse
    @property
    def for_s(self) -> float: ...


def grade_style(grade: str | None) -> str:
    return level_style("critical" if grade == "critical" else "warning" if grade == "warning" else "ok")


def grade_symbol(grade: str | None) -> str:
    return LEVEL_SYMBOL.get(grade or "ok", "?")


def figure_text(kpi: Kpi | None, grade: str | None, *, with_rate: bool = False) -> Text:
    """The latest figure, its breach marked before it: "162 ms", "▲ 127 ms", "✖ 98.2%"; "n/a" for none.
    ``with_rate``: a counter's rate after its value ("12.4k tok · 31/s")."""
    if kpi is None:
        return Text(NA, style="dim")
    shown = format_kpi(kpi) if with_rate else format_value(kpi.value, kpi.unit)
    if not grade:
        return Text(shown)
    return Text(f"{grade_symbol(grade)} {shown}", style=grade_style(grade))


def threshold_text(rule: ResolvedRule | None, unit: str = "count") -> str:
    """ "warn 120 ms · crit 150 ms, above, 60 s"; "no threshold" when the config sets none. ``unit``: the
    judged figure's, for a rule that names none."""
    if rule is None:
        return "no threshold"
    unit = rule.unit or unit
    shown = f"warn {format_value(rule.warn, unit)} · crit {format_value(rule.crit, unit)}"
    shown += f", {rule.direction}"
    if rule.for_s:
        shown += f", {format_value(rule.for_s, 's')}"
    return shown


def clock_time(ts: float) -> str:
    """HH:MM:SS in UTC, as the log and audit views show times."""
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def state_text(grade: str | None, since: float | None, *, judged: bool = True) -> Text:
    """ "ok", "▲ warning since 12:04:05", "✖ critical"; "—" for a KPI no threshold judges."""
    if not judged:
        return Text("—", style="dim")
    if not grade:
        return Text("ok", style="green")
    text = Text(f"{grade_symbol(grade)} {grade}", style=grade_style(grade))
    if since is not None:
        text.append(f" since {clock_time(since)}")
    return text


_BLOCKS = "▁▂▃▄▅▆▇█"  # never a blank for a figure: a blank is "no figure then"


def trend(values: Sequence[float], width: int, lines: Sequence[float] = ()) -> str:
    """The last ``width`` values as block characters, on a scale from the lowest to the highest of them
    and of the threshold ``lines`` (in the values' unit), so how near a figure runs to its line shows; a
    steady figure is a flat line, never a spike. Padded on the left where the history is short."""
    if width <= 0:
        return ""
    tail = list(values[-width:])
    if not tail:
        return " " * width
    low, high = min(tail + list(lines)), max(tail + list(lines))
    top = len(_BLOCKS) - 1
    if high == low:
        return " " * (width - len(tail)) + _BLOCKS[top // 2] * len(tail)
    span = high - low
    chars = (_BLOCKS[max(0, min(top, round((v - low) / span * top)))] for v in tail)
    return " " * (width - len(tail)) + "".join(chars)
