"""The audit table: who did what, when, to what, why, with what outcome — newest first, from one node or many.

The filter (:class:`AuditFilter`) is plain data with its own parser, so the screen's filter line, its quick
keys and the export all agree on which entries are "the filtered ones".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import get_args

from rich.text import Text

from backends.model import AuditEntry, AuditOutcome, to_json
from backends.safe_text import terminal_safe

from .row_table import RowTable, TableColumn
from .safe import safe_text

AUDIT_OUTCOMES: tuple[str, ...] = get_args(AuditOutcome)

# The symbol and the word carry the outcome; colour only reinforces it (NO_COLOR, 16-colour terminals).
OUTCOME_STYLE: dict[str, tuple[str, str]] = {
    "ok": ("✔", "green"),
    "denied": ("⊘", "yellow"),
    "failed": ("✖", "bold red"),
}
CELL_WIDTH = 40  # long targets, reasons and details are cut here; Enter shows them whole

# filter-line prefix -> AuditFilter field
_PREFIXES = ("operator", "action", "outcome", "node")


@dataclass(frozen=True)
class AuditFilter:
    """Which entries the table shows: exact operator, action, outcome, node; words in target/reason/detail."""

    operator: str | None = None
    action: str | None = None
    outcome: str | None = None
    node: str | None = None
    text: str = ""

    @classmethod
    def parse(cls, line: str) -> AuditFilter:
        """Read ``operator:alice action:pause outcome:failed node:gpu-01 words``; anything else is a word.

        An unknown outcome stays a word rather than being dropped, so nothing typed is silently ignored."""
        fields: dict[str, str] = {}
        words: list[str] = []
        for token in line.split():
            key, sep, value = token.partition(":")
            key = key.lower()
            if sep and value and key in _PREFIXES and (key != "outcome" or value.lower() in AUDIT_OUTCOMES):
                fields[key] = value.lower() if key == "outcome" else value
            else:
                words.append(token)
        return cls(text=" ".join(words), **fields)

    def query(self) -> str:
        """The filter line that parses back to this filter (shown in the box after a quick key)."""
        parts = [f"{key}:{value}" for key in _PREFIXES if (value := getattr(self, key))]
        if self.text:
            parts.append(self.text)
        return " ".join(parts)

    def with_(self, **changes: object) -> AuditFilter:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def active(self) -> bool:
        return self != AuditFilter()

    def matches(self, node: str, entry: AuditEntry) -> bool:
        # Names are compared as shown (terminal_safe): the filter line holds what the operator can see and
        # type, so an operator or action name with controls in it is still found by what is on screen.
        if self.operator is not None and not _same(entry.operator, self.operator):
            return False
        if self.action is not None and not _same(entry.action, self.action):
            return False
        if self.outcome is not None and entry.outcome != self.outcome:
            return False
        if self.node is not None and not _same(node, self.node):
            return False
        if self.text:
            # params are searched too: "r42" should find the deploy whose payload names that revision
            params = to_json(entry.params).decode() if entry.params else ""
            hay = " ".join((entry.target or "", entry.reason or "", entry.detail or "", params)).lower()
            return all(word in hay for word in self.text.lower().split())
        return True

    def describe(self) -> str:
        parts = [f"{key} {value}" for key in _PREFIXES if (value := getattr(self, key))]
        if self.text:
            parts.append(f"“{self.text}”")
        return " · ".join(parts) if parts else "no filter"


def _same(value: str, wanted: str) -> bool:
    return terminal_safe(value).lower() == terminal_safe(wanted).lower()


def fmt_utc_time(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def fmt_ago_short(ts: float, now: float) -> str:
    """One unit only ("4m ago", "18d ago"): the exact time is in the column beside it."""
    delta = now - ts
    s = int(abs(delta))
    if s < 60:
        amount = f"{s}s"
    elif s < 3600:
        amount = f"{s // 60}m"
    elif s < 86400:
        amount = f"{s // 3600}h"
    else:
        amount = f"{s // 86400}d"
    return f"{amount} ago" if delta >= 0 else f"in {amount}"


def outcome_cell(outcome: str) -> Text:
    symbol, style = OUTCOME_STYLE.get(outcome, ("?", "dim"))
    return safe_text(f"{symbol} {outcome}", style=style)


def _cut(text: str | None) -> Text:
    """One cell of what an operator or a node wrote: on one line, controls shown, never markup."""
    if not text:
        return Text("")
    text = terminal_safe(" ".join(text.split()))  # a multi-line reason must not break the row
    return Text(text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…")


def row_key(node: str, entry: AuditEntry) -> str:
    return f"{node}/{entry.seq}"


def newest_first(rows: Sequence[tuple[str, AuditEntry]]) -> list[tuple[str, AuditEntry]]:
    """Newest first; entries of the same instant by node, then latest seq first."""
    return sorted(rows, key=lambda pair: (-pair[1].ts, pair[0], -pair[1].seq))


class AuditTable(RowTable[str | Text]):
    """``(node, entry)`` pairs pushed in by :meth:`show`, filtered here and shown newest first."""

    DEFAULT_CSS = """
    AuditTable { height: 1fr; }
    """

    def __init__(self, *, node_column: bool = False, **kwargs: object) -> None:
        super().__init__(zebra_stripes=True, **kwargs)
        self.node_column = node_column
        self.filter = AuditFilter()
        self._rows: list[tuple[str, AuditEntry]] = []
        self._now = 0.0
        self._visible: list[tuple[str, AuditEntry]] = []

    def on_mount(self) -> None:
        # each as wide as its widest cell (the free text is cut at CELL_WIDTH); the table scrolls sideways
        columns = [("time", "UTC"), ("ago", "Ago"), *([("node", "Node")] if self.node_column else [])]
        columns += [("operator", "Operator"), ("action", "Action"), ("outcome", "Outcome")]
        columns += [("target", "Target"), ("reason", "Reason"), ("detail", "Detail")]
        self.set_columns(TableColumn(key, label) for key, label in columns)
        self._redraw()

    @property
    def shown_count(self) -> int:
        return len(self._visible)

    @property
    def total_count(self) -> int:
        return len(self._rows)

    def visible_entries(self) -> list[tuple[str, AuditEntry]]:
        """What the table shows, newest first: the "currently filtered entries" an export writes."""
        return list(self._visible)

    def entry_at_cursor(self) -> tuple[str, AuditEntry] | None:
        if not self._visible or not 0 <= self.cursor_row < len(self._visible):
            return None
        return self._visible[self.cursor_row]

    def set_filter(self, audit_filter: AuditFilter) -> None:
        self.filter = audit_filter
        self._redraw()

    def show(self, rows: Sequence[tuple[str, AuditEntry]], now: float) -> None:
        """Show every fetched ``(node, entry)`` as of ``now``; only changed cells are repainted."""
        self._rows = newest_first(rows)
        self._now = now
        self._redraw()

    def _cells_for(self, node: str, entry: AuditEntry) -> tuple[str | Text, ...]:
        return (
            fmt_utc_time(entry.ts),
            fmt_ago_short(entry.ts, self._now),
            *((safe_text(node),) if self.node_column else ()),
            safe_text(entry.operator),  # who and what come from the node's trail, as the rest
            safe_text(entry.action),
            outcome_cell(entry.outcome),
            _cut(entry.target),
            _cut(entry.reason),
            _cut(entry.detail),
        )

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        self._visible = [(node, e) for node, e in self._rows if self.filter.matches(node, e)]
        cells = {row_key(node, e): self._cells_for(node, e) for node, e in self._visible}
        self.sync_rows(cells)
