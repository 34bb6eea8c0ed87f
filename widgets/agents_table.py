"""The agents table: one row per agent, sortable, filterable, updated cell by cell.

Each refresh compares the new rows with what is on screen and touches only the cells that changed; the
table is rebuilt only when the set or order of rows changes (a new agent, a filter, a sort).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from backends.model import Agent

from .format import NA, fmt_bytes, fmt_duration, fmt_fraction, fmt_number
from .synced_table import SyncedTable

# Health and state words carry the meaning; the symbol and colour only reinforce it.
HEALTH_STYLE: dict[str, tuple[str, str]] = {
    "healthy": ("●", "green"),
    "degraded": ("▲", "yellow"),
    "unhealthy": ("✖", "bold red"),
    "unknown": ("?", "dim"),
}
STATE_STYLE: dict[str, str] = {
    "running": "",
    "idle": "dim",
    "starting": "cyan",
    "paused": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "failed": "bold red",
    "unknown": "dim",
}
_HEALTH_RANK = {"unhealthy": 0, "degraded": 1, "unknown": 2, "healthy": 3}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    render: Callable[[Agent, float], str | Text]
    sort_key: Callable[[Agent], Any]


def _health_cell(agent: Agent, now: float) -> Text:
    symbol, style = HEALTH_STYLE.get(agent.health, ("?", "dim"))
    return Text(f"{symbol} {agent.health}", style=style)


def _state_cell(agent: Agent, now: float) -> Text:
    return Text(agent.state, style=STATE_STYLE.get(agent.state, ""))


MESSAGE_WIDTH = 34


def _message_cell(agent: Agent, now: float) -> Text:
    text = agent.health_reason or agent.message or ""
    if len(text) > MESSAGE_WIDTH:
        text = text[: MESSAGE_WIDTH - 1] + "…"
    return Text(text, style="" if agent.health_reason else "dim")


def _heartbeat_cell(agent: Agent, now: float) -> str:
    return NA if agent.last_heartbeat is None else fmt_duration(now - agent.last_heartbeat)


def _none_last(value: float | None) -> tuple[bool, float]:
    return (value is None, -(value or 0.0))


COLUMNS: tuple[Column, ...] = (
    Column("name", "Agent", lambda a, now: a.name, lambda a: a.name),
    Column("health", "Health", _health_cell, lambda a: (_HEALTH_RANK.get(a.health, 2), a.name)),
    Column("state", "State", _state_cell, lambda a: (a.state, a.name)),
    # why an agent is not healthy is what a responder needs next, so it comes before the numbers
    Column("message", "Why / doing", _message_cell, lambda a: a.health_reason or a.message or "~"),
    Column("role", "Role", lambda a, now: a.labels.get("role", NA), lambda a: a.labels.get("role", "~")),
    Column("phase", "Phase", lambda a, now: a.phase_id or NA, lambda a: a.phase_id or "~"),
    Column("progress", "Prog", lambda a, now: fmt_fraction(a.progress), lambda a: _none_last(a.progress)),
    Column("cpu", "CPU", lambda a, now: fmt_number(a.cpu_percent, "%"), lambda a: _none_last(a.cpu_percent)),
    Column("rss", "RSS", lambda a, now: fmt_bytes(a.rss_bytes), lambda a: _none_last(a.rss_bytes)),
    Column(
        "gpu", "GPU mem", lambda a, now: fmt_bytes(a.gpu_mem_bytes), lambda a: _none_last(a.gpu_mem_bytes)
    ),
    Column("heartbeat", "Beat", _heartbeat_cell, lambda a: _none_last(-(a.last_heartbeat or 0.0))),
    Column("restarts", "Rst", lambda a, now: str(a.restarts), lambda a: -a.restarts),
)
COLUMN_KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS)
_BY_KEY = {c.key: c for c in COLUMNS}


def agent_matches(agent: Agent, needle: str) -> bool:
    """Case-insensitive match of a filter text against the fields an operator would search."""
    if not needle:
        return True
    hay = " ".join(
        (agent.id, agent.name, agent.state, agent.health, agent.phase_id or "", *agent.labels.values())
    ).lower()
    return all(word in hay for word in needle.lower().split())


class AgentsTable(SyncedTable[str | Text]):
    """Agents of one node (or many, with a node column), newest data pushed in by :meth:`show`."""

    DEFAULT_CSS = """
    AgentsTable { height: 1fr; }
    """

    def __init__(self, *, node_column: bool = False, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.node_column = node_column
        self.sort_column = "health"
        self.sort_reverse = False
        self.filter_text = ""
        self._agents: dict[str, Agent] = {}
        self._last: tuple[Sequence[tuple[str, Agent]], float] = ((), 0.0)
        self.marked: set[str] = set()  # row keys ("node/agent") chosen with space for a bulk action

    def on_mount(self) -> None:
        if self.node_column:
            self.add_column("Node", key="node")
        for column in COLUMNS:
            self.add_column(column.label, key=column.key)

    @property
    def shown_count(self) -> int:
        return len(self._order)

    def agent_at_cursor(self) -> Agent | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._agents.get(self._order[self.cursor_row])

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._redraw()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in _BY_KEY:
            return
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._redraw()

    def cycle_sort(self) -> None:
        index = (COLUMN_KEYS.index(self.sort_column) + 1) % len(COLUMN_KEYS)
        self.sort_by(COLUMN_KEYS[index], reverse=False)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def show(self, agents: Sequence[tuple[str, Agent]], now: float) -> None:
        """Show ``(node name, agent)`` pairs as of ``now``; only changed cells are repainted."""
        self._last = (agents, now)
        self._redraw()

    def _redraw(self) -> None:
        agents, now = self._last
        sort = _BY_KEY[self.sort_column].sort_key
        visible = [(node, a) for node, a in agents if agent_matches(a, self.filter_text)]
        visible.sort(key=lambda pair: sort(pair[1]), reverse=self.sort_reverse)
        order = [f"{node}/{a.id}" for node, a in visible]
        cells = {
            f"{node}/{a.id}": ((node,) if self.node_column else ())
            + self._mark_name(f"{node}/{a.id}", tuple(c.render(a, now) for c in COLUMNS))
            for node, a in visible
        }
        self._agents = {f"{node}/{a.id}": a for node, a in visible}
        self.sync_rows({key: cells[key] for key in order})

    def _mark_name(self, key: str, cells: tuple[str | Text, ...]) -> tuple[str | Text, ...]:
        if key not in self.marked:
            return cells
        return (Text(f"✓ {cells[0]}", style="bold reverse"), *cells[1:])

    def toggle_mark(self) -> None:
        """Mark or unmark the agent under the cursor, then move down (k9s-style multi-select)."""
        if not 0 <= self.cursor_row < len(self._order):
            return
        key = self._order[self.cursor_row]
        self.marked.symmetric_difference_update({key})
        self._redraw()
        self.move_cursor(row=self.cursor_row + 1)

    def chosen_agents(self) -> list[Agent]:
        """The marked agents that are still shown, else the one under the cursor."""
        marked = [self._agents[k] for k in self._order if k in self.marked]
        if marked:
            return marked
        agent = self.agent_at_cursor()
        return [agent] if agent is not None else []

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self._redraw()

    @property
    def sort_description(self) -> str:
        """E.g. "sorted by health ▲", for the panel's border."""
        return f"sorted by {_BY_KEY[self.sort_column].label.lower()} {'▼' if self.sort_reverse else '▲'}"
