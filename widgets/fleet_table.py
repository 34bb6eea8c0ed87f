"""The Fleet screen's table: one row per node with its data age, agent health, GPU and host summary,
active phase and alert count. The console fills :class:`FleetRow` values; this widget only renders them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from backends.model import NodeSnapshot

from .format import NA, fmt_percent, ratio
from .safe import safe_text
from .synced_table import ROW_JUMP_BINDINGS

_FRESH_STYLE = {"live": "green", "stale": "yellow", "offline": "bold red", "connecting": "dim", "frozen": ""}
_ENV_STYLE = {"production": "bold red", "staging": "yellow", "dev": "dim"}


@dataclass(frozen=True)
class FleetRow:
    name: str
    environment: str
    freshness: str  # live | stale | offline | connecting | frozen
    freshness_text: str
    snapshot: NodeSnapshot | None
    warnings: int = 0
    criticals: int = 0


def _agents_cell(snapshot: NodeSnapshot | None) -> Text:
    if snapshot is None:
        return Text(NA, style="dim")
    total = len(snapshot.agents)
    healthy = sum(1 for a in snapshot.agents if a.health == "healthy")
    style = "green" if healthy == total else ("bold red" if healthy < total * 0.8 else "yellow")
    return Text(f"{healthy}/{total} healthy", style=style)


def _gpu_cell(snapshot: NodeSnapshot | None) -> str:
    if snapshot is None:
        return NA
    if not snapshot.gpus:
        return "no GPU" if snapshot.gpu_status.status == "no_driver" else f"GPU {snapshot.gpu_status.status}"
    utils = [g.util_percent for g in snapshot.gpus if g.util_percent is not None]
    temps = [g.temperature_c for g in snapshot.gpus if g.temperature_c is not None]
    util = fmt_percent(sum(utils) / len(utils)) if utils else NA
    temp = f"{max(temps):.0f}°C" if temps else NA
    return f"{len(snapshot.gpus)}× {util} max {temp}"


def _phase_cell(snapshot: NodeSnapshot | None) -> str | Text:
    if snapshot is None:
        return NA
    active = [p for p in snapshot.phases if p.status in ("active", "blocked", "paused")]
    if not active:
        return "—"
    phase = min(active, key=lambda p: p.order)
    progress = NA if phase.progress is None else f"{phase.progress * 100:.0f}%"
    return safe_text(f"{phase.name} {progress}")


def _alerts_cell(row: FleetRow) -> Text:
    if row.criticals:
        return Text(
            f"✖ {row.criticals} crit" + (f" ▲ {row.warnings}" if row.warnings else ""), style="bold red"
        )
    if row.warnings:
        return Text(f"▲ {row.warnings} warn", style="yellow")
    return Text("ok", style="green")


def row_cells(row: FleetRow) -> tuple[str | Text, ...]:
    snap = row.snapshot
    cpu = NA if snap is None else fmt_percent(snap.system.cpu_percent)
    mem = NA if snap is None else fmt_percent(ratio(snap.system.mem_used, snap.system.mem_total))
    return (
        safe_text(row.name, style="bold"),
        safe_text(row.environment, style=_ENV_STYLE.get(row.environment, "")),
        safe_text(row.freshness_text, style=_FRESH_STYLE.get(row.freshness, "")),  # may quote an error
        _agents_cell(snap),
        _alerts_cell(row),
        _gpu_cell(snap),
        cpu,
        mem,
        _phase_cell(snap),
    )


# what an on-call responder needs first comes first: at 80 columns the tail scrolls off
COLUMNS = ("Node", "Env", "Data", "Agents", "Alerts", "GPUs", "CPU", "Mem", "Active phase")


class FleetTable(DataTable[str | Text]):
    DEFAULT_CSS = """
    FleetTable { height: auto; max-height: 1fr; }
    """
    BINDINGS = ROW_JUMP_BINDINGS

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._cells: dict[str, tuple[str | Text, ...]] = {}

    def on_mount(self) -> None:
        for label in COLUMNS:
            self.add_column(label, key=label)

    def node_at_cursor(self) -> str | None:
        if not self._cells or not 0 <= self.cursor_row < self.row_count:
            return None
        return str(self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value)

    def show(self, rows: Sequence[FleetRow]) -> None:
        names = [r.name for r in rows]
        if names != list(self._cells):
            selected = self.node_at_cursor()
            self.clear()
            self._cells = {}
            for row in rows:
                cells = row_cells(row)
                self.add_row(*cells, key=row.name)
                self._cells[row.name] = cells
            if selected in names:  # the cursor stays on the node, not on the row number
                self.move_cursor(row=names.index(selected), animate=False)
            return
        for row in rows:
            cells = row_cells(row)
            old = self._cells[row.name]
            for index, (before, after) in enumerate(zip(old, cells, strict=True)):
                if before != after:
                    self.update_cell(row.name, COLUMNS[index], after)
            self._cells[row.name] = cells
