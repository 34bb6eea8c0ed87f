"""The host panel: CPU, load, memory, swap and disk of the node, with CPU and memory history."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from backends.model import SystemMetrics

from .format import NA, fmt_bytes, fmt_duration, fmt_percent, ratio
from .levels import LEVEL_SYMBOL, level_for, level_style
from .sparkline_history import HistorySparkline
from .steady import update_steady


def host_table(system: SystemMetrics, mem_levels: tuple[float, float] | None) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    load = system.load_avg
    load_text = NA if load is None else f"{load.m1:.2f} {load.m5:.2f} {load.m15:.2f}"
    cores = NA if system.cpu_count is None else str(system.cpu_count)
    table.add_row("CPU", f"{fmt_percent(system.cpu_percent, 1)} of {cores} cores · load {load_text}")
    mem_pct = ratio(system.mem_used, system.mem_total)
    level = level_for(mem_pct, mem_levels)
    mem = Text(
        f"{fmt_bytes(system.mem_used)} / {fmt_bytes(system.mem_total)} ({fmt_percent(mem_pct)})",
        style=level_style(level),
    )
    if level != "ok":
        mem.append(f" {LEVEL_SYMBOL[level]} {level}")
    table.add_row("Memory", mem)
    table.add_row("Available", fmt_bytes(system.mem_available))
    table.add_row("Swap", f"{fmt_bytes(system.swap_used)} / {fmt_bytes(system.swap_total)}")
    table.add_row("Disk", disk_text(system))
    table.add_row("Uptime", fmt_duration(system.uptime_s))
    return table


def disk_text(system: SystemMetrics) -> str:
    """Used / size (Use% as df computes it) · what is still free to write, as df's Avail; a node that does
    not send the available space gets no "free" part, and its percent is used / size."""
    used, size = fmt_bytes(system.disk_used), fmt_bytes(system.disk_total)
    text = f"{used} / {size} ({fmt_percent(system.disk_use_percent)})"
    if system.disk_available is not None:
        text += f" · {fmt_bytes(system.disk_available)} free"
    return text


class HostPanel(Vertical):
    DEFAULT_CSS = """
    HostPanel { height: auto; padding: 0 1; }
    HostPanel > Static { height: auto; margin-bottom: 1; }
    """

    def __init__(self, *, mem_levels: tuple[float, float] | None = (85.0, 95.0), **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.mem_levels = (
            mem_levels  # (warning, critical) percent, from the config: fixed for the panel's life
        )
        self._shown: SystemMetrics | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("waiting for data…", style="dim"), classes="metrics")
        yield HistorySparkline("cpu", classes="cpu")
        yield HistorySparkline("mem", classes="mem")

    def show(self, system: SystemMetrics, cpu_history: Sequence[float], mem_history: Sequence[float]) -> None:
        if system != self._shown:
            self._shown = system
            update_steady(self.query_one(".metrics", Static), host_table(system, self.mem_levels))
        self.query_one(".cpu", HistorySparkline).show(cpu_history, fmt_percent(system.cpu_percent))
        self.query_one(".mem", HistorySparkline).show(
            mem_history, fmt_percent(ratio(system.mem_used, system.mem_total))
        )
