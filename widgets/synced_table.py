"""A DataTable that is handed whole rows each refresh and touches only what changed.

The table is rebuilt only when the set or order of rows changes (a new row, a filter, a sort), and the
cursor stays on the same row key, not the same row number; otherwise only the cells whose value changed
are updated. Every list in the console (agents, alerts, audit) refreshes this way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets._data_table import TwoWayDict  # the row-place map DataTable keeps (textual<9)

# What this table leans on that Textual keeps private (textual<9): the row-place map, the update counter
# that keys DataTable's render caches, the caches, and the render steps overridden below.
# tests/test_textual_private.py checks each still exists, so an upgrade that moves one fails there by name,
# not here as a slow or stale table.
TEXTUAL_PRIVATE_PARTS: tuple[str, ...] = (
    "textual.widgets._data_table.TwoWayDict",
    "textual.widgets._data_table.TwoWayDict.get",
    "textual.widgets._data_table.TwoWayDict.get_key",
    "textual.widgets.DataTable._update_count",
    "textual.widgets.DataTable._row_locations",
    "textual.widgets.DataTable._column_locations",
    "textual.widgets.DataTable._cell_render_cache",
    "textual.widgets.DataTable._row_render_cache",
    "textual.widgets.DataTable._row_renderable_cache",
    "textual.widgets.DataTable._line_cache",
    "textual.widgets.DataTable._offset_cache",
    "textual.widgets.DataTable._ordered_row_cache",
    "textual.widgets.DataTable._render_line_in_row",
    "textual.widgets.DataTable._render_cell",
    "textual.widgets.DataTable._get_row_renderables",
)

CellT = TypeVar("CellT")
SCREENFUL_LINES = 256  # a tall terminal's rows
SCREENFUL_CELLS = 4096  # and their cells, at 16 columns
MAX_REMOVALS = 16  # rows dropped one by one before a rebuild is cheaper (DataTable renumbers per removal)
SCROLLBAR_ROOM = 2  # columns a table that fits its width keeps free for the vertical scrollbar
# A row table's Home and End go to its first and last row, as in every list; DataTable's own move a row
# cursor nowhere (they scroll sideways).
ROW_JUMP_BINDINGS: list[BindingType] = [
    Binding("home", "scroll_top", "First row", show=False),
    Binding("end", "scroll_bottom", "Last row", show=False),
]


class SyncedTable(DataTable[CellT], Generic[CellT]):
    BINDINGS = ROW_JUMP_BINDINGS
    #: let a cell that grows widen its column (costs a layout pass; only for short, changing columns)
    GROW_COLUMNS: ClassVar[bool] = False
    # DataTable's counter is an int; while a row or cell renders it holds a version tuple instead (below)
    _update_count: Any

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._order: list[str] = []
        self._cells: dict[str, tuple[CellT, ...]] = {}
        # DataTable's render caches are keyed by its update count, so after each refresh every entry in them
        # is dead weight, yet they keep up to 10,000 rendered cells (hundreds of thousands of small objects)
        # alive, which every full garbage collection then walks. A screenful is all that is ever reused.
        self._cell_render_cache = LRUCache(SCREENFUL_CELLS)
        self._row_render_cache = LRUCache(SCREENFUL_LINES)
        self._row_renderable_cache = LRUCache(SCREENFUL_LINES)
        self._line_cache = LRUCache(SCREENFUL_LINES)
        self._row_versions: dict[Any, int] = {}
        self._cell_versions: dict[tuple[Any, Any], int] = {}
        self._edits = 0

    def key_at_cursor(self) -> str | None:
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    def sync_rows(self, cells: dict[str, tuple[CellT, ...]]) -> None:
        """Show ``cells`` (row key -> values, in display order)."""
        order = list(cells)
        if order != self._order:
            if not self._reconcile(order, cells):
                self._rebuild(order, cells)
        else:
            self._patch(cells)
        self._cells = cells

    def _reconcile(self, order: list[str], cells: dict[str, tuple[CellT, ...]]) -> bool:
        """Bring a table whose rows mostly stay to ``order``: add the new rows, drop the gone ones, move
        the rest and patch what changed in them. False (nothing done) where a rebuild is cheaper: an empty
        table, more than a few rows gone (each removal renumbers every row), or most rows new. A node of a
        hundred coming in then adds its own agents, not the whole fleet's again."""
        held = set(self._order)
        added = [key for key in order if key not in held]
        gone = held.difference(cells)
        if not self._order or len(gone) > MAX_REMOVALS or len(added) > len(order) // 2:
            return False
        selected = self.key_at_cursor()
        for key in gone:
            self.remove_row(key)
        for key in added:
            self.add_row(*cells[key], key=key)
        self.move_rows(order)
        self._patch({key: cells[key] for key in order if key in held})
        if selected in cells:
            self.move_cursor(row=order.index(selected), animate=False)
        return True

    def same_cell(self, old: CellT, new: CellT) -> bool:
        return old == new

    def _rebuild(self, order: list[str], cells: dict[str, tuple[CellT, ...]]) -> None:
        selected = self.key_at_cursor()
        self.clear()
        for key in order:
            self.add_row(*cells[key], key=key)
        self._order = order
        if selected in order:
            self.move_cursor(row=order.index(selected), animate=False)

    def _patch(self, cells: dict[str, tuple[CellT, ...]]) -> None:
        columns = self.ordered_columns
        for key, new in cells.items():
            old = self._cells.get(key)
            if old == new:
                continue
            for index, value in enumerate(new):
                if old is None or not self.same_cell(old[index], value):
                    self.update_cell(key, columns[index].key, value, update_width=self.GROW_COLUMNS)

    # --- render caches that survive a cell update and a sort ----------------------------------------------
    # DataTable keys every render cache by one update counter, which any update_cell or sort bumps: one
    # changed number, or one agent moving up a place, and every cell on screen is rendered again (most of a
    # refresh's cost with a screenful of agents). Here a cell update moves only its own cell's and row's
    # versions, and a sort only the rows that changed places (a row's place is in its render: the mouse
    # metadata); these stand in for the counter while a row and its cells render. Whatever else bumps the
    # counter (rows added, a resize) still renders everything again.

    def update_cell(self, row_key: Any, column_key: Any, value: CellT, *, update_width: bool = False) -> None:
        count = self._update_count
        super().update_cell(row_key, column_key, value, update_width=update_width)
        if update_width:
            return  # its column may change width: everything is rendered again
        self._update_count = count
        self._edits += 1
        row, column = _plain(row_key), _plain(column_key)
        self._row_versions[row] = self._cell_versions[(row, column)] = self._edits
        self._line_cache.clear()  # keyed by screen line, not row: cheap to rebuild from the cached rows

    def move_rows(self, order: list[str]) -> None:
        """Show the same rows in a new ``order`` (row keys): a reorder, without DataTable.sort's key
        function over every row's values."""
        keys = {row_key.value: row_key for row_key in self.rows}
        self._row_locations = TwoWayDict({keys[key]: index for index, key in enumerate(order)})
        self.rows = {keys[key]: self.rows[keys[key]] for key in order}  # in display order, as a rebuild
        self._order = order
        self._moved()

    def sort(self, *columns: Any, key: Any = None, reverse: bool = False) -> SyncedTable[CellT]:
        count = self._update_count
        super().sort(*columns, key=key, reverse=reverse)
        self._update_count = count
        self._moved()
        return self

    def _moved(self) -> None:
        # these know rows by their place, and places changed
        self._line_cache.clear()
        self._offset_cache.clear()
        self._ordered_row_cache.clear()
        self.refresh()

    def clear(self, columns: bool = False) -> SyncedTable[CellT]:
        self._row_versions.clear()
        self._cell_versions.clear()
        return super().clear(columns)

    def _structure(self) -> Any:
        count = self._update_count
        return count[0] if isinstance(count, tuple) else count

    def _render_line_in_row(self, row_key: Any, *args: Any, **kwargs: Any) -> Any:
        count = self._update_count
        place = self._row_locations.get(row_key)
        self._update_count = (self._structure(), self._row_versions.get(_plain(row_key), 0), place)
        try:
            return super()._render_line_in_row(row_key, *args, **kwargs)
        finally:
            self._update_count = count

    def _render_cell(self, row_index: int, column_index: int, *args: Any, **kwargs: Any) -> Any:
        count = self._update_count
        version = 0
        if 0 <= row_index < self.row_count and 0 <= column_index < len(self.columns):
            row = _plain(self._row_locations.get_key(row_index))
            column = _plain(self._column_locations.get_key(column_index))
            version = self._cell_versions.get((row, column), 0)
        self._update_count = (self._structure(), version, row_index)
        try:
            return super()._render_cell(row_index, column_index, *args, **kwargs)
        finally:
            self._update_count = count

    def _get_row_renderables(self, row_index: int) -> Any:
        # cached by (counter, place): one computation per row and version, not one per cell rendered
        count = self._update_count
        row, version = None, 0
        if 0 <= row_index < self.row_count:
            row = _plain(self._row_locations.get_key(row_index))
            version = self._row_versions.get(row, 0)
        self._update_count = (self._structure(), row, version)
        try:
            return super()._get_row_renderables(row_index)
        finally:
            self._update_count = count


def _plain(key: Any) -> Any:
    """A RowKey or ColumnKey as the string it wraps (the API takes either)."""
    return getattr(key, "value", key)
