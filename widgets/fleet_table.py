"""The Fleet screen's table: one row per node with its data age, agent health (and how many agents wait for a
person), GPU and host summary, active phase and alert count. The console fills :class:`FleetRow` values;
this widget only renders them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text

from backends.model import NodeSnapshot, health_count

from .column_fit import ColumnSpec, cut_cell, fit_columns
from .format import NA, fmt_percent, ratio
from .row_table import SCROLLBAR_ROOM, RowTable, TableColumn
from .safe import safe_text

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
    count = health_count(snapshot.agents)  # the dead are history: counted apart, not against health
    healthy, total = count.healthy, count.alive
    style = "green" if healthy == total else ("bold red" if healthy < total * 0.8 else "yellow")
    text = Text(f"{healthy}/{total}", style=style)  # under "Healthy": the word is the column's
    if count.dead:
        text.append(f" · {count.dead} dead", style="dim")
    # agents blocked on a person: not unhealthy, yet the reason to open this node first
    waiting = sum(1 for agent in snapshot.agents if agent.state == "waiting")
    if waiting:
        text.append(f" · {waiting} waiting", style="bold magenta")
    return text


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
    # the symbols the Node screen's Alerts tab uses: ✖ critical, ▲ warning
    if row.criticals:
        return Text(f"✖{row.criticals}" + (f" ▲{row.warnings}" if row.warnings else ""), style="bold red")
    if row.warnings:
        return Text(f"▲{row.warnings}", style="yellow")
    return Text("ok", style="green")


def row_cells(row: FleetRow) -> tuple[str | Text, ...]:
    snap = row.snapshot
    cpu = NA if snap is None else fmt_percent(snap.system.cpu_percent)
    mem = NA if snap is None else fmt_percent(ratio(snap.system.mem_used, snap.system.mem_total))
    return (
        cut_cell(safe_text(row.name, style="bold")),
        safe_text(row.environment, style=_ENV_STYLE.get(row.environment, "")),
        # may quote a node's error, hundreds of characters long: cut to its column, whole on the Node screen
        cut_cell(safe_text(row.freshness_text, style=_FRESH_STYLE.get(row.freshness, ""))),
        _agents_cell(snap),
        _alerts_cell(row),
        _gpu_cell(snap),
        cpu,
        mem,
        cut_cell(_phase_cell(snap)),
    )


COLUMNS = ("Node", "Env", "Data", "Healthy", "Alerts", "GPUs", "CPU", "Mem", "Active phase")
# What an on-call responder needs first gets room first; the data age takes what is left (at least
# DATA_MIN), and at 80 columns the tail is left out. The node's name is always shown.
COLUMN_RANK = {
    "Node": 0,
    "Healthy": 1,
    "Alerts": 2,
    "GPUs": 3,
    "Env": 4,
    "CPU": 5,
    "Mem": 6,
    "Active phase": 7,
}
DATA_MIN = 12
DATA_MAX = 60
CAPPED = {"Node": 20, "Active phase": 32}  # free text too: a long name is cut, and whole on the Node screen


class FleetTable(RowTable[str | Text]):
    DEFAULT_CSS = """
    FleetTable { height: auto; max-height: 1fr; overflow-x: hidden; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(zebra_stripes=True, **kwargs)
        self._every_cell: dict[str, tuple[str | Text, ...]] = {}  # every column's cell, shown or not
        self._fitted: dict[str, int] = {}  # the columns shown, and their widths

    def node_at_cursor(self) -> str | None:
        return self.key_at_cursor()

    def show(self, rows: Sequence[FleetRow]) -> None:
        self._every_cell = {row.name: row_cells(row) for row in rows}
        self._lay_out()

    def on_resize(self) -> None:
        if self._every_cell:
            self._lay_out()

    def _lay_out(self) -> None:
        cells = self._every_cell
        widths = self._fit(cells)
        if widths != self._fitted:
            self._fitted = widths
            self.set_columns(TableColumn(label, label, width) for label, width in widths.items())
        shown = [COLUMNS.index(label) for label in widths]
        self.sync_rows({name: tuple(row[index] for index in shown) for name, row in cells.items()})

    def _fit(self, cells: dict[str, tuple[str | Text, ...]]) -> dict[str, int]:
        room = self.size.width - SCROLLBAR_ROOM if self.size.width else 10_000  # not laid out yet: all
        specs = []
        for index, label in enumerate(COLUMNS):
            width = max([cell_len(label), *(_cell_width(c[index]) for c in cells.values())])
            if label == "Data":
                specs.append(ColumnSpec(label, min(width, DATA_MAX), rank=0, elastic_min=DATA_MIN))
            else:
                capped = min(width, CAPPED.get(label, width))
                specs.append(ColumnSpec(label, capped, rank=COLUMN_RANK[label]))
        return fit_columns(specs, room)


def _cell_width(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)
