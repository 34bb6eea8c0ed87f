"""A DataTable that is handed whole rows each refresh and touches only what changed.

The table is rebuilt only when the set or order of rows changes (a new row, a filter, a sort), and the
cursor stays on the same row key, not the same row number; otherwise only the cells whose value changed
are updated. Every list in the console (agents, alerts, audit) refreshes this way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from textual.widgets import DataTable

CellT = TypeVar("CellT")


class SyncedTable(DataTable[CellT], Generic[CellT]):
    #: let a cell that grows widen its column (costs a layout pass; only for short, changing columns)
    GROW_COLUMNS: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._order: list[str] = []
        self._cells: dict[str, tuple[CellT, ...]] = {}

    def key_at_cursor(self) -> str | None:
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    def sync_rows(self, cells: dict[str, tuple[CellT, ...]]) -> None:
        """Show ``cells`` (row key -> values, in display order)."""
        order = list(cells)
        if order != self._order:
            self._rebuild(order, cells)
        else:
            self._patch(cells)
        self._cells = cells

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
