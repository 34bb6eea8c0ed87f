"""What one refresh of a RowTable changed: the cells that differ, the rows drawn anew, whether it began anew.

A table that is handed the same rows with one figure moved must change that one cell and draw that one row;
starting over (its columns set up anew, its cells forgotten, or cleared) would draw every row in view.
"""

from __future__ import annotations

from typing import Any

from widgets.row_table import RowTable


class TableSpy:
    def __init__(self, table: RowTable[Any]) -> None:
        self.table = table
        self.started_over: list[str] = []
        self.reset()
        for name in ("clear", "set_columns"):
            self._spy(name, lambda *args, name=name, **kw: True)
        self._spy("forget_cells", lambda keys=None: keys is None)

    def _spy(self, name: str, counts: Any) -> None:
        original = getattr(self.table, name)

        def spied(*args: Any, **kw: Any) -> Any:
            if counts(*args, **kw):
                self.started_over.append(name)
            return original(*args, **kw)

        setattr(self.table, name, spied)

    def reset(self) -> None:
        """From here on."""
        table = self.table
        self._held = {key: table.get_row(key) for key in table.held_keys()}
        self._drawn = table.rows_drawn
        self.started_over.clear()

    def changed_cells(self) -> set[tuple[str, str]]:
        """``(row key, column key)`` of every cell held now that differs from what it was."""
        table, columns = self.table, self.table.column_keys
        changed = set()
        for key in table.held_keys():
            old, new = self._held.get(key), table.get_row(key)
            for index, cell in enumerate(new):
                if old is None or index >= len(old) or not table.same_cell(old[index], cell):
                    changed.add((key, columns[index]))
        return changed

    @property
    def rows_drawn(self) -> int:
        return self.table.rows_drawn - self._drawn
