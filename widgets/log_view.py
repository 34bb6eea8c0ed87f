"""The live log pane: level-coloured lines, follow mode, filters, batched writes.

Only the lines on screen are rendered (Textual's line API), so a pane holding 10,000 records costs the same
to repaint as one holding 20. Records come in batches from the console's flush timer, never one by one, and
a batch costs one resize and one repaint however many records (and nodes) it holds.

A line is built straight from segments in the component styles (what a rich Text would render, without
its span machinery), and kept in a small cache keyed by its absolute position in the pane, so records
falling off the top at capacity do not invalidate the lines already rendered.

A log line is whatever an agent printed: its node, source and message go through ``terminal_safe`` (escape
sequences and controls shown, a newline shown as ``␤`` so one record stays one line), and segments are never
parsed as markup.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backends.model import LOG_LEVEL_RANK, LogRecord
from backends.safe_text import terminal_safe

STRIP_CACHE = 256  # rendered lines kept: a few screens, for scrolling back and forth
Entry = tuple[str, LogRecord]  # (node, record)

LEVEL_TAG: dict[str, str] = {
    "debug": "DBG",
    "info": "INF",
    "warning": "WRN",
    "error": "ERR",
    "critical": "CRT",
}


@dataclass(frozen=True)
class LogFilter:
    """Which records a pane shows: a minimum level, one source (agent id), a node, words in the text."""

    min_level: str = "debug"
    source: str | None = None
    node: str | None = None
    text: str = ""

    def matches(self, node: str, record: LogRecord) -> bool:
        if LOG_LEVEL_RANK[record.level] < LOG_LEVEL_RANK[self.min_level]:
            return False
        if self.source is not None and record.source != self.source:
            return False
        if self.node is not None and node != self.node:
            return False
        if self.text:
            return self.text.lower() in f"{record.source} {record.message}".lower()
        return True

    def with_(self, **changes: object) -> LogFilter:
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        parts = [f"≥{self.min_level}" if self.min_level != "debug" else "all levels"]
        if self.node:
            parts.append(f"node {self.node}")
        if self.source:
            parts.append(f"agent {self.source}")
        if self.text:
            parts.append(f"“{self.text}”")
        return " · ".join(parts)


class LogView(ScrollView, can_focus=True):
    """Records of one or many nodes, oldest first, newest at the bottom."""

    COMPONENT_CLASSES = {
        "logview--time",
        "logview--source",
        "logview--node",
        "logview--debug",
        "logview--info",
        "logview--warning",
        "logview--error",
        "logview--critical",
    }
    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; }
    LogView > .logview--time { color: $text-muted; }
    LogView > .logview--source { color: $secondary; }
    LogView > .logview--node { color: $accent; }
    LogView > .logview--debug { color: $text-muted; }
    LogView > .logview--info { color: $foreground; }
    LogView > .logview--warning { color: $warning; text-style: bold; }
    LogView > .logview--error { color: $error; text-style: bold; }
    LogView > .logview--critical { color: $text; background: $error; text-style: bold; }
    """

    follow: reactive[bool] = reactive(True)

    def __init__(self, *, capacity: int = 10_000, show_node: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.capacity = capacity
        self.show_node = show_node
        self.filter = LogFilter()
        self._all: deque[Entry] = deque()
        self._visible: deque[Entry] = deque()
        self._width = 0
        # keyed by absolute line number: _visible[i] is line _first + i, however many fell off the top
        self._strips: LRUCache[int, Strip] = LRUCache(STRIP_CACHE)
        self._first = 0
        self._styles: dict[str, Style] | None = None  # component styles, until the theme or CSS changes
        self.last_seq: dict[str, int] = {}  # per node: the newest seq this pane has, for incremental sync

    # --- data in ---------------------------------------------------------------------------------------

    def write_records(self, node: str, records: Iterable[LogRecord]) -> None:
        """Append a batch from ``node`` (seq ascending). Older records beyond ``capacity`` fall off."""
        self.write_entries((node, record) for record in records)

    def write_entries(self, entries: Iterable[Entry]) -> None:
        """Append ``(node, record)`` pairs, in the order given (e.g. several nodes merged by time; seq
        ascending within each node). A record at or below its node's newest seq is skipped: a resync may
        overlap. Older records beyond ``capacity`` fall off."""
        added = False
        newest = self.last_seq
        matches, line_length = self.filter.matches, self._line_length
        append_all, append_visible = self._all.append, self._visible.append
        width = self._width
        for entry in entries:
            node, record = entry
            if record.seq <= newest.get(node, -1):
                continue
            newest[node] = record.seq
            append_all(entry)
            if matches(node, record):
                append_visible(entry)
                width = max(width, line_length(node, record))
                added = True
        self._width = width
        dropped = len(self._all) - self.capacity
        if dropped > 0:
            popleft_all, visible = self._all.popleft, self._visible
            for _ in range(dropped):
                entry = popleft_all()
                if visible and visible[0] is entry:
                    visible.popleft()
                    self._first += 1  # line numbers stay: the cached lines below stay valid
                    added = True
        if added:
            self._resize()

    def clear(self) -> None:
        self._all.clear()
        self._visible.clear()
        self.last_seq.clear()
        self._width = 0
        self._strips.clear()
        self._resize()

    def set_filter(self, log_filter: LogFilter) -> None:
        self.filter = log_filter
        self._visible = deque(e for e in self._all if log_filter.matches(*e))
        self._width = max((self._line_length(*e) for e in self._visible), default=0)
        self._strips.clear()
        self._resize()

    @property
    def visible_count(self) -> int:
        return len(self._visible)

    def visible_records(self) -> list[LogRecord]:
        return [record for _, record in self._visible]

    # --- follow ----------------------------------------------------------------------------------------

    # Following pauses while the operator holds the scrollbar, as Textual's Log does: a line arriving must
    # not yank the thumb out from under the mouse. Once let go, the next batch takes the view to the newest.

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._scroll_to_newest()

    def on_resize(self) -> None:
        if self.follow:
            self._scroll_to_newest()

    def _scroll_to_newest(self) -> None:
        # after the next layout pass, when the virtual size is known to the scroll machinery
        if not self.is_vertical_scrollbar_grabbed:
            self.call_after_refresh(self._scroll_end_unless_held)

    def _scroll_end_unless_held(self) -> None:
        if not self.is_vertical_scrollbar_grabbed:  # the operator may have taken it since
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def _resize(self) -> None:
        self.virtual_size = Size(self._width, len(self._visible))
        if self.follow:
            self._scroll_to_newest()
        self.refresh()

    # --- rendering -------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._strips.clear()

    def _line_length(self, node: str, record: LogRecord) -> int:
        # as shown: a control shown as "\x9b" or "⟨U+202E⟩" takes more room than the character did
        prefix = 9 + record.time_fetched + 4 + (len(terminal_safe(node)) + 1 if self.show_node else 0)
        return prefix + len(terminal_safe(record.source)) + 1 + len(terminal_safe(record.message))

    def _line_styles(self) -> dict[str, Style]:
        styles = self._styles
        if styles is None:
            names = ("time", "source", "node", *LEVEL_TAG)
            styles = {name: self.get_component_rich_style(f"logview--{name}") for name in names}
            self._styles = styles
        return styles

    def _parts(self, node: str, record: LogRecord) -> list[tuple[str, Style]]:
        """The line's pieces and their styles: time, level tag, [node,] source, message."""
        styles = self._line_styles()
        level = record.level
        # "≤": the source gave the line no time, so this is when it was fetched: written then or before
        stamp = ("≤" if record.time_fetched else "") + time.strftime("%H:%M:%S ", time.gmtime(record.ts))
        parts = [
            (stamp, styles["time"]),
            (LEVEL_TAG[level] + " ", styles[level]),
        ]
        if self.show_node:
            parts.append((terminal_safe(node) + " ", styles["node"]))
        parts.append((terminal_safe(record.source) + " ", styles["source"]))
        parts.append((terminal_safe(record.message), styles[level]))
        return parts

    def format_record(self, node: str, record: LogRecord) -> Text:
        text = Text(no_wrap=True, end="")
        for part, style in self._parts(node, record):
            text.append(part, style=style)
        return text

    def line_segments(self, node: str, record: LogRecord) -> list[Segment]:
        """What ``format_record(...).render(console)`` yields, built directly: one segment a piece (each
        already terminal-safe), an empty piece left out."""
        return [Segment(part, style) for part, style in self._parts(node, record) if part]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        width = self.size.width
        if index >= len(self._visible):
            return Strip.blank(width, self.rich_style)
        key = self._first + index
        strip = self._strips.get(key)
        if strip is None:
            node, record = self._visible[index]
            strip = Strip(self.line_segments(node, record) or [Segment("")])
            self._strips[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)
