"""The live log pane: level-coloured lines, follow mode, filters, batched writes.

Only the lines on screen are rendered (Textual's line API), so a pane holding 10,000 records costs the same
to repaint as one holding 20. Records come in batches from the console's flush timer, never one by one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from backends.model import LOG_LEVEL_RANK, LogRecord

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
        self._all: deque[tuple[str, LogRecord]] = deque()
        self._visible: deque[tuple[str, LogRecord]] = deque()
        self._width = 0
        self._strips: LRUCache[int, Strip] = LRUCache(1024)
        self.last_seq: dict[str, int] = {}  # per node: the newest seq this pane has, for incremental sync

    # --- data in ---------------------------------------------------------------------------------------

    def write_records(self, node: str, records: Iterable[LogRecord]) -> None:
        """Append a batch from ``node`` (seq ascending). Older records beyond ``capacity`` fall off."""
        added = False
        newest = self.last_seq.get(node, -1)
        for record in records:
            if record.seq <= newest:
                continue  # already shown: a resync may overlap
            newest = record.seq
            entry = (node, record)
            self._all.append(entry)
            if self.filter.matches(node, record):
                self._visible.append(entry)
                self._width = max(self._width, self._line_length(node, record))
                added = True
        self.last_seq[node] = newest
        while len(self._all) > self.capacity:
            dropped = self._all.popleft()
            if self._visible and self._visible[0] is dropped:
                self._visible.popleft()
                self._strips.clear()  # line indices shifted
                added = True
        if added:
            self._resize()

    def clear(self) -> None:
        self._all.clear()
        self._visible.clear()
        self.last_seq.clear()
        self._width = 0
        self._resize()

    def set_filter(self, log_filter: LogFilter) -> None:
        self.filter = log_filter
        self._visible = deque(e for e in self._all if log_filter.matches(*e))
        self._width = max((self._line_length(*e) for e in self._visible), default=0)
        self._resize()

    @property
    def visible_count(self) -> int:
        return len(self._visible)

    def visible_records(self) -> list[LogRecord]:
        return [record for _, record in self._visible]

    # --- follow ----------------------------------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._scroll_to_newest()

    def on_resize(self) -> None:
        if self.follow:
            self._scroll_to_newest()

    def _scroll_to_newest(self) -> None:
        # after the next layout pass, when the virtual size is known to the scroll machinery
        self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    def _resize(self) -> None:
        self._strips.clear()
        self.virtual_size = Size(self._width, len(self._visible))
        if self.follow:
            self._scroll_to_newest()
        self.refresh()

    # --- rendering -------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _line_length(self, node: str, record: LogRecord) -> int:
        prefix = 9 + 4 + (len(node) + 1 if self.show_node else 0) + len(record.source) + 1
        return prefix + len(record.message)

    def format_record(self, node: str, record: LogRecord) -> Text:
        text = Text(no_wrap=True, end="")
        stamp = time.strftime("%H:%M:%S", time.gmtime(record.ts))
        text.append(stamp + " ", style=self.get_component_rich_style("logview--time"))
        text.append(
            LEVEL_TAG[record.level] + " ", style=self.get_component_rich_style(f"logview--{record.level}")
        )
        if self.show_node:
            text.append(node + " ", style=self.get_component_rich_style("logview--node"))
        text.append(record.source + " ", style=self.get_component_rich_style("logview--source"))
        message_style = "logview--info" if record.level == "info" else f"logview--{record.level}"
        text.append(record.message, style=self.get_component_rich_style(message_style))
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        width = self.size.width
        if index >= len(self._visible):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(index)
        if strip is None:
            node, record = self._visible[index]
            segments = list(self.format_record(node, record).render(self.app.console))
            strip = Strip([s for s in segments if s.text != "\n"] or [Segment("")])
            self._strips[index] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)
