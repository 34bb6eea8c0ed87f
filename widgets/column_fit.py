"""Which columns of a table fit its width, and how wide each is: the screen decides, never the longest text.

A DataTable sizes a column to its widest cell and scrolls sideways when the columns outgrow it: one
offline node's two-hundred-character error pushed every other column of the Fleet table off screen, for
every node, and they stayed off after it reconnected. Here each column says how wide its cells are now and
how much it matters; the columns are taken by importance while they fit, and the one column that holds free
text (a reason, a message) takes the room left, its cells cut with "…" (the whole text is in the detail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

CELL_PADDING = 2  # a table cell's padding: one column either side (row_table.CELL_PADDING)


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    width: int  # the widest cell (or the label), in columns
    rank: int  # 0 is always shown; then the lower, the sooner a column is given room
    elastic_min: int | None = None  # the free-text column: at least this wide, more when there is room
    # ... and, before any column ranked after ``grow_after`` is given room, this wide (if its text is)
    elastic_want: int = 0
    grow_after: int = 0


def fit_columns(specs: Sequence[ColumnSpec], room: int) -> dict[str, int]:
    """Content width of each column shown (display order kept), in ``room`` columns of table.

    Columns of rank 0 are always shown, even when they alone are wider than the room; the others are
    taken by rank until one does not fit. The elastic column (at most one) is reserved its minimum first,
    so the others never squeeze it below that; it grows to ``elastic_want`` before the columns ranked after
    ``grow_after`` get room, and takes the room left at the end, up to its widest cell.
    """
    elastic = next((s for s in specs if s.elastic_min is not None), None)
    reserved = 0 if elastic is None else min(elastic.elastic_min or 0, elastic.width)
    used = 0 if elastic is None else reserved + CELL_PADDING
    grown = elastic is None
    chosen: set[str] = set()
    for spec in sorted((s for s in specs if s is not elastic), key=lambda s: s.rank):
        if not grown and elastic is not None and spec.rank > elastic.grow_after:
            grown = True
            extra = max(0, min(elastic.elastic_want, elastic.width) - reserved)
            if used + extra > room:
                break  # the text takes the room left
            used += extra
        cost = spec.width + CELL_PADDING
        if spec.rank != 0 and used + cost > room:
            break  # no less important column jumps the queue into a gap: the room left goes to the text
        chosen.add(spec.key)
        used += cost
    widths = {s.key: s.width for s in specs if s.key in chosen}
    if elastic is not None:
        rest = room - sum(w + CELL_PADDING for w in widths.values()) - CELL_PADDING
        widths[elastic.key] = max(min(elastic.width, rest), min(elastic.elastic_min or 0, elastic.width))
    return {s.key: widths[s.key] for s in specs if s.key in widths}


def cut_cell(cell: str | Text) -> Text:
    """``cell`` as a Text that the table cuts with "…" when its column is narrower than it."""
    text = Text(cell) if isinstance(cell, str) else cell.copy()
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text
