"""The Attention list: what needs an operator, worst first, with since-when and why.

One row per alert: severity as symbol *and* word (never colour alone), node, subject, how long it has been
on, a note (how many times it fired when it flapped, "ack", "snoozed 52m") and the reason, cut to the width
left so the reason is never scrolled off at 80 columns. Acknowledged rows are dimmed; snoozed rows are hidden
until ``Z`` shows them. The console fills :class:`AttentionRow` values; enter posts
:class:`AttentionList.Jump`, and the acknowledge/snooze keys post messages too: the widget knows nothing
of where alerts are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive

from .format import fmt_duration
from .row_table import RowTable, TableColumn
from .safe import safe_text

SEVERITY_CELL = {"critical": ("✖ CRIT", "bold red"), "warning": ("▲ WARN", "yellow")}
# An agent waiting for a person: not a fault of any severity but a question, so it has its own word
NEEDS_YOU_CELL = ("⏸ YOU", "bold magenta")
MIN_REASON_WIDTH = 12  # below this the table is cut at the edge rather than the reason cut to nothing
# Node and subject are free text: one longer than these is cut with "…" (as the Fleet table cuts a node's
# name; each is whole on the screen enter leads to), so a long name cannot take the reason's room.
NODE_MAX, SUBJECT_MAX = 20, 32
# From this many rows on, only those in view (and VIEWPORT_MARGIN around them) are built, when they come into
# view; their columns are measured from the rows built so far. Fewer are all built and measured every time.
LAZY_FROM = 1_000
VIEWPORT_MARGIN = 8


@dataclass(frozen=True)
class AttentionRow:
    key: str  # the alert's stable id; the row key too
    severity: str  # critical | warning
    node: str
    subject: str  # "agent:coder-07", "gpu:3", "phase:pilot", "host", "node"
    reason: str
    since: float | None = None
    times: int = 1  # how often it fired in this episode: more than once means it flapped
    acked: bool = False
    snoozed_until: float | None = None  # set while snoozed
    label: str | None = None  # the subject as shown, where not its id: "agent:planner" for a Ray actor
    needs_you: bool = False  # a person is needed (an agent waiting for input or an approval), shown first

    @property
    def shown_subject(self) -> str:
        return self.label or self.subject


def note_text(row: AttentionRow, now: float) -> str:
    notes = []
    if row.times > 1:
        notes.append(f"×{row.times}")
    if row.acked:
        notes.append("ack")
    if row.snoozed_until is not None:
        notes.append(f"snoozed {_minutes(row.snoozed_until - now)}")
    return " ".join(notes)


def _minutes(seconds: float) -> str:
    """A snooze's time left to the minute ("52m", "1h05m"): seconds would only widen the column."""
    left = max(0, int(seconds))
    return fmt_duration(left) if left < 60 or left >= 3600 else f"{left // 60}m"


class AttentionList(RowTable[Text]):
    """Alerts of one node or the fleet; :meth:`show` repaints only the cells that changed."""

    DEFAULT_CSS = """
    AttentionList { height: auto; max-height: 100%; overflow-x: hidden; }
    """

    BINDINGS = [
        Binding(
            "A",
            "acknowledge",
            "Ack",
            id="acknowledge",
            tooltip="Acknowledge the alert until it clears or gets worse (again: take the ack back)",
        ),
        Binding("z", "snooze", "Snooze", id="snooze", tooltip="Hide the alert for an hour (again: wake it)"),
        Binding(
            "Z", "show_snoozed", "Show snoozed", id="show_snoozed", tooltip="Show or hide snoozed alerts"
        ),
    ]

    show_snoozed: reactive[bool] = reactive(False)

    class Jump(Message):
        """Enter on a row: go to the alert's agent, GPU, phase or host."""

        def __init__(self, row: AttentionRow) -> None:
            super().__init__()
            self.row = row

    class Acknowledge(Message):
        def __init__(self, row: AttentionRow) -> None:
            super().__init__()
            self.row = row

    class Snooze(Message):
        def __init__(self, row: AttentionRow) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, node_column: bool = True, **kwargs: object) -> None:
        super().__init__(zebra_stripes=True, **kwargs)
        self.node_column = node_column
        self._rows: dict[str, AttentionRow] = {}
        self._last: tuple[Sequence[AttentionRow], float] = ((), 0.0)
        self._reason_width = MIN_REASON_WIDTH

    def on_mount(self) -> None:
        # Short labels and an unlabelled note column: at 80 columns every cell counts for the reason.
        columns = [("Sev", "severity"), ("Node", "node"), ("Subject", "subject"), ("Since", "since")]
        columns += [("", "note"), ("Reason", "reason")]
        # each as wide as its widest cell, measured as cells arrive: a note or a since-when may grow
        shown = [(label, key) for label, key in columns if key != "node" or self.node_column]
        self.set_columns(TableColumn(key, label) for label, key in shown)

    # --- data in ---------------------------------------------------------------------------------------

    def show(self, rows: Sequence[AttentionRow], now: float) -> None:
        """Show ``rows`` (already in order) as of ``now``."""
        self._last = (rows, now)
        self._redraw()

    @property
    def hidden_count(self) -> int:
        """Snoozed rows not shown."""
        return len(self._last[0]) - len(self._order)

    def row_at_cursor(self) -> AttentionRow | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._rows.get(self._order[self.cursor_row])

    def watch_show_snoozed(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()  # the reason column takes what the others leave

    def _redraw(self) -> None:
        if not self.columns:  # not mounted yet: on_mount's columns come first
            return
        rows, now = self._last
        visible = [r for r in rows if self.show_snoozed or r.snoozed_until is None]
        self._rows = {r.key: r for r in visible}
        if len(visible) >= LAZY_FROM:
            # A storm (every agent of a big fleet missing its heartbeat): build only the rows in view, as
            # they come into it, rather than every row's cells on every refresh.
            gone = self.held_keys() - self._rows.keys()
            if gone:
                self.forget_cells(gone)
            self.set_order(list(self._rows))
            self._patch_visible()
            return
        fixed = [self._fixed_cells(r, now) for r in visible]
        widths = [max([len(label), *(c[i].cell_len for c in fixed)]) for i, label in enumerate(self._labels)]
        self._reason_width = self._room_for_reason(widths, len(visible))
        cells = {
            row.key: (*row_fixed, self._reason_cell(row))
            for row, row_fixed in zip(visible, fixed, strict=True)
        }
        self.sync_rows(cells)

    def _patch_visible(self) -> None:
        """Bring the rows in view (and a margin) up to date; the others are built when scrolled to."""
        height = self.size.height
        if height <= 0:
            return  # not laid out yet: each row is built when it is first drawn
        top = max(0, round(self.scroll_y) - VIEWPORT_MARGIN)
        keys = self._order[top : top + height + 2 * VIEWPORT_MARGIN]
        now = self._last[1]
        fixed = {key: self._fixed_cells(self._rows[key], now) for key in keys}
        widths = self.column_widths
        measured = [
            max([widths.get(column.key, 0), *(cells[i].cell_len for cells in fixed.values())])
            for i, column in enumerate(self.columns[:-1])
        ]
        self._reason_width = self._room_for_reason(measured, len(self._order))
        self.update_rows({key: (*cells, self._reason_cell(self._rows[key])) for key, cells in fixed.items()})

    def cells_for(self, key: str) -> tuple[Text, ...]:
        row = self._rows.get(key)
        if row is None:
            return ()
        return (*self._fixed_cells(row, self._last[1]), self._reason_cell(row))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if len(self._order) >= LAZY_FROM and round(old_value) != round(new_value):
            self._patch_visible()

    def _room_for_reason(self, widths: Sequence[int], rows: int) -> int:
        """The reason's width: what the other columns leave of the table's."""
        padding = 2 * self.cell_padding
        # Room for a vertical scrollbar is kept when the rows will not fit: it appears only after this
        # layout, and the reason must not then be pushed past the edge.
        width = self.scrollable_content_region.width
        fits = rows + int(self.show_header) <= self.container_size.height
        if not self.show_vertical_scrollbar and not fits:
            width -= self.styles.scrollbar_size_vertical
        room = width - sum(w + padding for w in widths) - padding
        return max(MIN_REASON_WIDTH, room)

    def _reason_cell(self, row: AttentionRow) -> Text:
        reason = safe_text(row.reason, style=_row_style(row) or "")  # a node's or agent's words
        reason.no_wrap, reason.overflow = True, "ellipsis"
        reason.truncate(self._reason_width, overflow="ellipsis")
        return reason

    def same_cell(self, old: Text, new: Text) -> bool:
        return _looks(old) == _looks(new)

    @property
    def _labels(self) -> list[str]:
        return [c.label for c in self.columns][:-1]

    def _fixed_cells(self, row: AttentionRow, now: float) -> tuple[Text, ...]:
        dim = _row_style(row)
        word, style = (
            NEEDS_YOU_CELL if row.needs_you else SEVERITY_CELL.get(row.severity, (row.severity.upper(), ""))
        )
        cells = [
            safe_text(word, style=dim or style),
            *([_cut(safe_text(row.node, style=dim or "bold"), NODE_MAX)] if self.node_column else []),
            _cut(safe_text(row.shown_subject, style=dim or ""), SUBJECT_MAX),  # "agent:<its name>"
            Text(fmt_duration(None if row.since is None else now - row.since), style=dim or ""),
            Text(note_text(row, now), style=dim or "bold"),
        ]
        return tuple(cells)

    # --- keys ------------------------------------------------------------------------------------------

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        event.stop()  # the screen's own row handlers (open node, open agent) are for its other tables
        row = self._rows.get(event.row_key)
        if row is not None:
            self.post_message(self.Jump(row))

    def action_acknowledge(self) -> None:
        row = self.row_at_cursor()
        if row is not None:
            self.post_message(self.Acknowledge(row))

    def action_snooze(self) -> None:
        row = self.row_at_cursor()
        if row is not None:
            self.post_message(self.Snooze(row))

    def action_show_snoozed(self) -> None:
        self.show_snoozed = not self.show_snoozed


def _cut(text: Text, width: int) -> Text:
    text.truncate(width, overflow="ellipsis")
    return text


def _looks(text: Text) -> tuple[object, ...]:
    # Text's own == ignores its base style, and acknowledging a row changes only that (to dim).
    return text.plain, str(text.style), tuple(text.spans)


def _row_style(row: AttentionRow) -> str | None:
    # An acknowledged alert is still on, but someone has it: it recedes so the open ones stand out.
    return "dim" if row.acked else None
