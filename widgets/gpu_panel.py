"""The GPU panel: one card per GPU with utilisation, memory, temperature, power and fan, plus history
sparklines; or a clear "No NVIDIA GPU" with the driver's reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from backends.model import Gpu, GpuStatus

from .format import NA, fmt_bytes, fmt_number, fmt_percent, ratio
from .levels import LEVEL_SYMBOL, level_for, level_style
from .safe import safe_text
from .sparkline_history import HistorySparkline
from .steady import update_steady

GpuHistory = Mapping[str, Sequence[float]]  # "util" and "mem" -> percentages, oldest first


def gpu_summary_line(gpu: Gpu, temp_levels: tuple[float, float] | None) -> Text:
    """ "GPU 3 · NVIDIA H100 80GB HBM3 · 81°C ▲ · 412/700 W · fan 45% · 3 procs" """
    level = level_for(gpu.temperature_c, temp_levels)
    text = Text()
    text.append(f"GPU {gpu.index}", style="bold")
    text.append_text(safe_text(f" {_short_name(gpu.name)}", style="dim"))  # as the driver (or node) names it
    text.append(" · ")
    text.append(
        f"{fmt_number(gpu.temperature_c, '°C')}{' ' + LEVEL_SYMBOL[level] if level != 'ok' else ''}",
        style=level_style(level),
    )
    power = f"{fmt_number(gpu.power_w, '')}/{fmt_number(gpu.power_limit_w, ' W')}"
    text.append(f" · {power} · fan {fmt_percent(gpu.fan_percent)} · {len(gpu.processes)} proc")
    return text


def _short_name(name: str | None) -> str:
    """ "NVIDIA H100 80GB HBM3" -> "H100 80GB HBM3": the vendor is the same on every card."""
    if not name:
        return NA
    return name.removeprefix("NVIDIA ").removeprefix("Tesla ")


class GpuCard(Vertical):
    DEFAULT_CSS = """
    GpuCard { height: auto; margin-bottom: 1; }
    GpuCard > Static { height: auto; }
    """

    def __init__(self, index: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.gpu_index = index
        self._shown: Gpu | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="summary")
        yield HistorySparkline("util", classes="util")
        yield HistorySparkline("mem", classes="mem")

    def show(self, gpu: Gpu, history: GpuHistory, temp_levels: tuple[float, float] | None) -> None:
        if gpu != self._shown:
            self._shown = gpu
            update_steady(self.query_one(".summary", Static), gpu_summary_line(gpu, temp_levels))
        mem_pct = ratio(gpu.mem_used, gpu.mem_total)
        self.query_one(".util", HistorySparkline).show(history.get("util", ()), fmt_percent(gpu.util_percent))
        self.query_one(".mem", HistorySparkline).show(
            history.get("mem", ()),
            f"{fmt_bytes(gpu.mem_used)} / {fmt_bytes(gpu.mem_total)}" if mem_pct is not None else NA,
        )


class GpuPanel(VerticalScroll):
    """All GPUs of a node. ``show`` reuses cards by index and adds or removes only what changed."""

    DEFAULT_CSS = """
    GpuPanel { height: 1fr; padding: 0 1; }
    GpuPanel > .no-gpu { color: $text-muted; padding: 1 0; }
    """

    def __init__(self, *, temp_levels: tuple[float, float] | None = (80.0, 90.0), **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.temp_levels = temp_levels  # (warning, critical) °C, from the config: fixed for the panel's life
        self._status: GpuStatus | None = None

    def show(self, gpus: Sequence[Gpu], status: GpuStatus, history: Mapping[int, GpuHistory]) -> None:
        if not gpus:
            if status != self._status or not self.query(".no-gpu"):
                self.remove_children()
                self.mount(Static(self._no_gpu_text(status), classes="no-gpu"))
            self._status = status
            return
        self._status = status
        self.query(".no-gpu").remove()
        cards = {card.gpu_index: card for card in self.query(GpuCard)}
        wanted = {gpu.index for gpu in gpus}
        for index, card in cards.items():
            if index not in wanted:
                card.remove()
        for gpu in gpus:
            existing = cards.get(gpu.index)
            if existing is None:
                card = GpuCard(gpu.index)
                self.mount(card)
                # a freshly mounted card composes on the next tick; fill it then
                self.call_after_refresh(card.show, gpu, history.get(gpu.index, {}), self.temp_levels)
            else:
                existing.show(gpu, history.get(gpu.index, {}), self.temp_levels)

    @staticmethod
    def _no_gpu_text(status: GpuStatus) -> Text:
        text = Text("No NVIDIA GPU", style="bold")
        if status.status == "error":
            text = Text("GPU metrics unavailable", style="bold")
        if status.reason:
            text.append("\n")
            text.append_text(safe_text(status.reason, style="italic", multiline=True))
        return text
