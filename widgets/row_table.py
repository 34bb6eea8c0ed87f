"""A table of rows kept as plain data and drawn one screen line at a time: its cost follows the screen.

Every list in the console (agents, nodes, alerts, audit) is one of these. It holds each row's cells by key,
in display order, and draws only the lines in view (Textual's line API, as the log pane). A row is drawn
once per change of its cells and kept as a strip until it changes again, whatever place it moves to: a
re-sort of 50,000 rows is a new list of keys and a repaint of the lines in view from the strip cache. Column
widths are handed in (or measured as cells arrive), never re-measured per refresh.

The cursor and the marks belong to a row's key, not its place: they follow their row through a re-sort,
a filter and rows coming and going.

Cells are ``Text`` or ``str``; a ``str`` is shown as it is, never parsed as markup. What a cell shows that
came from an agent or a node has already been made terminal-safe by whoever built the cell (``safe_text``).

The look is DataTable's (the same component classes, so every theme and NO_COLOR style both alike): a bold
header, zebra stripes, a block cursor when focused and a dim one when not, a faint row under the mouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

CellT = TypeVar("CellT", bound="str | Text")
STRIP_CACHE = 1024  # drawn rows kept: a few tall screens of them, in every variant (stripe, cursor, hover)
CELL_PADDING = 1  # blank columns either side of a cell
SCROLLBAR_ROOM = 2  # columns a table that fits its width keeps free for the vertical scrollbar
_VARIANTS = ("datatable--even-row", "datatable--odd-row")


@dataclass(frozen=True)
class TableColumn:
    key: str
    label: str
    width: int | None = None  # None: as wide as its widest cell (or label), measured as cells arrive


class RowTable(ScrollView, Generic[CellT], can_focus=True):
    """Rows of cells by key, in display order, drawn only where they are on screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        # in a list, Home and End go to the first and last row
        Binding("home,ctrl+home", "first_row", "First row", show=False),
        Binding("end,ctrl+end", "last_row", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--header",
        "datatable--cursor",
        "datatable--hover",
        "datatable--even-row",
        "datatable--odd-row",
    }

    # DataTable's look, selector for selector, so that a theme styles both alike.
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .datatable--even-row {
            background: $surface-darken-1 40%;
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .datatable--hover {
            background: $block-hover-background;
        }
    }
    """

    cell_padding: ClassVar[int] = CELL_PADDING
    show_header: ClassVar[bool] = True

    class _RowMessage(Message):
        def __init__(self, table: RowTable[Any], cursor_row: int, row_key: str) -> None:
            super().__init__()
            self.table, self.cursor_row, self.row_key = table, cursor_row, row_key

        @property
        def control(self) -> RowTable[Any]:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor is on another row (moved, or its row moved under it)."""

    class RowSelected(_RowMessage):
        """Enter on a row, or a click on the row under the cursor."""

    class HeaderSelected(Message):
        """A click on a column's label."""

        def __init__(self, table: RowTable[Any], column_key: str) -> None:
            super().__init__()
            self.table, self.column_key = table, column_key

        @property
        def control(self) -> RowTable[Any]:
            return self.table

    def __init__(self, *, zebra_stripes: bool = True, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.zebra_stripes = zebra_stripes
        self._table_columns: tuple[TableColumn, ...] = ()
        self._table_widths: tuple[int, ...] = ()
        self._order: list[str] = []
        self._cells: dict[str, tuple[CellT, ...]] = {}
        self._versions: dict[str, int] = {}  # a row's version: bumped when its cells change
        self._edits = 0
        self._cursor = 0
        self._cursor_key: str | None = None
        self._hover: int | None = None  # the row under the mouse, while the mouse is what moves
        # a row's strip and the style of the room right of its last column, by (key, version, variant)
        self._strips: LRUCache[tuple[str, int, str], tuple[Strip, Style]] = LRUCache(STRIP_CACHE)
        self._header: tuple[Strip, Style] | None = None
        self.rows_drawn = 0  # rows drawn into strips so far (not cache hits): what a change cost

    # --- columns ---------------------------------------------------------------------------------------

    @property
    def columns(self) -> tuple[TableColumn, ...]:
        return self._table_columns

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(column.key for column in self._table_columns)

    @property
    def column_widths(self) -> dict[str, int]:
        return dict(zip(self.column_keys, self._table_widths, strict=True))

    def set_columns(self, columns: Iterable[TableColumn]) -> None:
        """Show these columns; the rows held are kept when the columns' keys are the same, else dropped."""
        columns = tuple(columns)
        if tuple(c.key for c in columns) != self.column_keys:
            self._order, self._cells, self._versions = [], {}, {}
        self._table_columns = columns
        self._table_widths = tuple(
            c.width if c.width is not None else self._measure(i, c.label, self._cells.values())
            for i, c in enumerate(columns)
        )
        self._restyle()

    def _measure(self, index: int, label: str, rows: Iterable[tuple[CellT, ...]]) -> int:
        return max([cell_len(label), *(_cell_len(cells[index]) for cells in rows if index < len(cells))])

    def _remeasure(self, rows: Iterable[tuple[CellT, ...]]) -> None:
        if all(column.width is not None for column in self._table_columns):
            return
        rows = list(rows)
        widths = tuple(
            c.width if c.width is not None else self._measure(i, c.label, rows)
            for i, c in enumerate(self._table_columns)
        )
        if widths != self._table_widths:
            self._table_widths = widths
            self._restyle()

    def _grow(self, rows: Iterable[tuple[CellT, ...]]) -> None:
        """Widen the measured columns that ``rows`` need more room in."""
        rows = list(rows)
        if not rows:
            return
        widths = tuple(
            width if column.width is not None else max(width, self._measure(i, "", rows))
            for i, (column, width) in enumerate(zip(self._table_columns, self._table_widths, strict=True))
        )
        if widths != self._table_widths:
            self._table_widths = widths
            self._restyle()

    # --- rows ------------------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def row_keys(self) -> list[str]:
        """The keys of the rows shown, in display order."""
        return list(self._order)

    def get_row(self, key: str) -> tuple[CellT, ...]:
        return self._cells[key]

    def get_row_at(self, index: int) -> tuple[CellT, ...]:
        return self._cells[self._order[index]]

    def get_cell(self, key: str, column: str) -> CellT:
        return self._cells[key][self.column_keys.index(column)]

    def same_cell(self, old: CellT, new: CellT) -> bool:
        """Whether a cell shows the same; a table may compare only what it draws."""
        return old == new

    def sync_rows(self, cells: Mapping[str, tuple[CellT, ...]]) -> None:
        """Show exactly ``cells`` (row key -> values, in display order)."""
        gone = self._cells.keys() - cells.keys()
        for key in gone:
            del self._cells[key]
            self._versions.pop(key, None)
        self.update_rows(cells)
        self._remeasure(cells.values())  # a measured column narrows too, when its widest row went
        self.set_order(list(cells))

    def update_rows(self, cells: Mapping[str, tuple[CellT, ...]]) -> None:
        """Hand in the newest cells of some rows (shown or about to be); only changed ones are drawn again."""
        held, changed = self._cells, []
        for key, new in cells.items():
            old = held.get(key)
            if old is new:
                continue
            held[key] = new
            if old is not None and len(old) == len(new) and all(map(self.same_cell, old, new)):
                continue
            self._new_version(key)
            changed.append(new)
        if changed:
            self._grow(changed)
            self._refresh_rows({key for key in cells})

    def _new_version(self, key: str) -> None:
        # one counter for every row: a key whose cells were forgotten never meets its old strips again
        self._edits += 1
        self._versions[key] = self._edits

    def set_order(self, order: list[str]) -> None:
        """Show the rows of these keys in this order (their cells handed in already, or by cells_for)."""
        if order == self._order:
            return
        self._order = order
        self.virtual_size = Size(self._table_width, len(order) + int(self.show_header))
        self._follow_cursor()
        self.refresh()

    def cells_for(self, key: str) -> tuple[CellT, ...]:
        """The cells of a row shown before any were handed in; a table that renders lazily says them."""
        return ()

    def held_keys(self) -> set[str]:
        """The keys of the rows whose cells are held, shown or not."""
        return set(self._cells)

    def forget_cells(self, keys: Iterable[str] | None = None) -> None:
        """Drop the cells held for ``keys`` (all: None); a row shown is then drawn from ``cells_for``."""
        if keys is None:
            self._cells, self._versions = {}, {}
        else:
            for key in keys:
                self._cells.pop(key, None)
                self._versions.pop(key, None)
        self._strips.clear()
        self.refresh()

    def clear(self) -> None:
        self._order, self._cells, self._versions = [], {}, {}
        self._strips.clear()
        self.virtual_size = Size(self._table_width, int(self.show_header))
        self._follow_cursor()
        self.refresh()

    # --- cursor ----------------------------------------------------------------------------------------

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def key_at_cursor(self) -> str | None:
        return self._order[self._cursor] if 0 <= self._cursor < len(self._order) else None

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on the row at ``row`` (clamped to the rows there are)."""
        self._hover_off()
        self._place_cursor(max(0, min(row, len(self._order) - 1)), scroll=scroll)

    def _place_cursor(self, row: int, *, scroll: bool = True) -> None:
        before, key = self._cursor, self._order[row] if 0 <= row < len(self._order) else None
        self._cursor = max(0, row)
        moved = key != self._cursor_key
        self._cursor_key = key
        if before != self._cursor:
            self._refresh_line(before)
            self._refresh_line(self._cursor)
        if scroll:
            self._scroll_to_cursor()
        if moved and key is not None:
            self.post_message(self.RowHighlighted(self, self._cursor, key))

    def _follow_cursor(self) -> None:
        """After the rows changed: the cursor stays on its row's key, or at its place if that row went."""
        key, order = self._cursor_key, self._order
        if key is not None and self._cursor < len(order) and order[self._cursor] == key:
            return
        try:
            row = order.index(key) if key is not None else self._cursor
        except ValueError:
            row = self._cursor
        self._place_cursor(max(0, min(row, len(order) - 1)), scroll=key is not None and key in order)

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height - int(self.show_header)
        if height <= 0:
            return
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._page())

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_select_cursor(self) -> None:
        key = self.key_at_cursor()
        if key is not None:
            self.post_message(self.RowSelected(self, self._cursor, key))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - int(self.show_header))

    # --- mouse -----------------------------------------------------------------------------------------

    def _row_at(self, event: events.MouseEvent) -> int | None:
        """The row under the mouse (-1: the header), or None."""
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        if self.show_header and offset.y == 0:
            return -1
        row = round(self.scroll_y) + offset.y - int(self.show_header)
        return row if 0 <= row < len(self._order) else None

    def _column_at(self, x: int) -> str | None:
        """The column at ``x`` columns into the table (not the screen)."""
        right = 0
        for column, width in zip(self._table_columns, self._table_widths, strict=True):
            right += width + 2 * CELL_PADDING
            if x < right:
                return column.key
        return None

    async def _on_click(self, event: events.Click) -> None:
        row = self._row_at(event)
        if row is None:
            return
        event.stop()
        if row == -1:
            offset = event.get_content_offset(self)
            column = self._column_at((offset.x if offset else 0) + round(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderSelected(self, column))
            return
        again = row == self._cursor
        self._place_cursor(row)
        if again:
            self.action_select_cursor()

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        row = self._row_at(event)
        self._set_hover(row if row is not None and row >= 0 else None)

    def _on_leave(self, event: events.Leave) -> None:
        self._hover_off()

    def _hover_off(self) -> None:
        self._set_hover(None)

    def _set_hover(self, row: int | None) -> None:
        if row != self._hover:
            before, self._hover = self._hover, row
            for line in (before, row):
                if line is not None:
                    self._refresh_line(line)

    # --- drawing ---------------------------------------------------------------------------------------

    @property
    def _table_width(self) -> int:
        return sum(self._table_widths) + 2 * CELL_PADDING * len(self._table_widths)

    def _restyle(self) -> None:
        """Everything drawn is out of date: columns, widths, focus or theme changed."""
        self._strips.clear()
        self._header = None
        self.virtual_size = Size(self._table_width, len(self._order) + int(self.show_header))
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def _on_focus(self, event: events.Focus) -> None:
        self._restyle()

    def _on_blur(self, event: events.Blur) -> None:
        self._restyle()

    def _refresh_line(self, row: int) -> None:
        y = row - round(self.scroll_y) + int(self.show_header)
        if 0 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _refresh_rows(self, keys: set[str]) -> None:
        top = round(self.scroll_y)
        for row, key in enumerate(self._order[top : top + self.size.height], start=top):
            if key in keys:
                self._refresh_line(row)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if self.show_header and y == 0:
            if self._header is None:
                style = base + self.get_component_rich_style("datatable--header")
                labels = [Text(c.label) for c in self._table_columns]
                self._header = (self._draw(labels, style, Style.null()), style)
            strip, fill = self._header
        else:
            row = scroll_y + y - int(self.show_header)
            if not 0 <= row < len(self._order):
                return Strip.blank(width, base)
            strip, fill = self._row_strip(row, base)
        return strip.crop_extend(scroll_x, scroll_x + width, fill)  # a row's stripe runs to the edge

    def _row_strip(self, row: int, base: Style) -> tuple[Strip, Style]:
        key = self._order[row]
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = self.cells_for(key)
            self._new_version(key)
            self._grow([cells])
        if row == self._cursor:  # focused or not: the CSS tells the two apart
            variant = "datatable--cursor"
        elif row == self._hover:
            variant = "datatable--hover"
        else:
            variant = _VARIANTS[row % 2] if self.zebra_stripes else ""
        cache_key = (key, self._versions.get(key, 0), variant)
        drawn = self._strips.get(cache_key)
        if drawn is None:
            pre, post = base, Style.null()
            if variant:
                component = self.get_component_rich_style(variant)
                pre = base + component
                if variant == "datatable--cursor":
                    post = Style.from_color(color=component.color)  # the cursor's colour wins
            drawn = self._strips[cache_key] = (self._draw(cells, pre, post), pre)
            self.rows_drawn += 1
        return drawn

    def _draw(self, cells: Iterable[str | Text], pre: Style, post: Style) -> Strip:
        console = self.app.console
        pad = " " * CELL_PADDING
        segments: list[Segment] = []
        for cell, width in zip(cells, self._table_widths, strict=False):
            text = Text(cell) if isinstance(cell, str) else cell.copy()
            text.truncate(width, overflow=text.overflow or "crop", pad=True)
            segments.append(Segment(pad))
            drawn: Iterable[Segment] = text.render(console, end="")  # the spans, not the text's own style
            if text.style:
                drawn = Segment.apply_style(drawn, console.get_style(text.style, default=""))
            segments.extend(drawn)
            segments.append(Segment(pad))
        return Strip(Segment.apply_style(segments, pre, post), self._table_width)


def _cell_len(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)
