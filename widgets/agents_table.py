"""The agents table: one row per agent, sortable, filterable, updated cell by cell.

Each refresh compares the new rows with what is on screen and touches only the cells that changed. Rows
that only changed places (a sort, or a value the sort uses) are moved, not re-added; the table is rebuilt only
when the set of rows changes (a new agent, a filter) - re-adding means re-measuring every cell, which at
thousands of rows would hold the UI up for a second.

With ``node_column`` it shows the agents of many nodes: a Node column (filterable and sortable like the
others), and the rows of a node whose data is not live are dimmed, its name marked with the freshness symbol
("◐" stale, "✖" offline), so old data is never passed off as live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from rich.style import Style
from rich.text import Text
from textual.message import Message
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


# One Text per word, shared by every row (the table only reads its cells): a refresh of thousands of rows
# then allocates no new objects for these columns, and a comparison of unchanged cells is an identity check.
_HEALTH_CELLS = {
    word: Text(f"{symbol} {word}", style=style) for word, (symbol, style) in HEALTH_STYLE.items()
}
_STATE_CELLS = {word: Text(word, style=style) for word, style in STATE_STYLE.items()}


def _health_cell(agent: Agent, now: float) -> Text:
    return _HEALTH_CELLS.get(agent.health) or Text(f"? {agent.health}", style="dim")


def _state_cell(agent: Agent, now: float) -> Text:
    return _STATE_CELLS.get(agent.state) or Text(agent.state)


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
_HEARTBEAT = COLUMN_KEYS.index("heartbeat")  # the one column that moves with the clock alone
_MESSAGE = COLUMN_KEYS.index("message")
NODE_KEY = "node"  # the optional first column; sorts by node, then agent name
# A node whose data is not live: the symbol and the word say so, the colour only reinforces them.
FRESHNESS_STYLE: dict[str, tuple[str, str]] = {
    "stale": ("◐", "yellow"),
    "offline": ("✖", "bold red"),
    "connecting": ("○", "dim"),
}


def agent_matches(agent: Agent, needle: str, node: str = "") -> bool:
    """Case-insensitive match of a filter text against the fields an operator would search."""
    if not needle:
        return True
    hay = " ".join(
        (node, agent.id, agent.name, agent.state, agent.health, agent.phase_id or "", *agent.labels.values())
    ).lower()
    return all(word in hay for word in needle.lower().split())


def _node_cell(key: str, node: str, freshness: str | None) -> _KeyedCell:
    # The symbol sits in a gutter every row has, so the column's width (measured when rows are added, not
    # when a cell is patched) never changes with a node's freshness.
    if freshness is None:
        return _KeyedCell(key, f"  {node}")
    symbol, style = FRESHNESS_STYLE.get(freshness, ("?", "dim"))
    return _KeyedCell(key, f"{symbol} {node}", style=style)


class _KeyedCell(Text):
    """A row's first cell, carrying the row key: DataTable.sort hands its key function only the row's values,
    and this is how a reorder finds each row's new place."""

    def __init__(self, row_key: str, text: str, style: str | Style = "") -> None:
        super().__init__(text, style=style)
        self.row_key = row_key


def _keyed(key: str, cell: str | Text) -> _KeyedCell:
    if isinstance(cell, str):
        return _KeyedCell(key, cell)
    keyed = _KeyedCell(key, cell.plain, style=cell.style)
    keyed.spans = list(cell.spans)
    return keyed


def _dimmed(cell: str | Text) -> Text:
    # A span rather than a base style: Text equality compares spans, so the change reaches the screen.
    text = Text(cell) if isinstance(cell, str) else cell.copy()
    text.stylize("dim")
    return text


class _Row(NamedTuple):
    """One agent as rendered (without its mark), kept so that a filter, sort or mark, or a refresh that
    brings the same Agent again (a node not polled since, or not answering), need not render it again."""

    node: str
    agent: Agent
    cells: tuple[str | Text, ...]
    freshness: str | None
    now: float


VIEWPORT_MARGIN = 8  # rows above and below the visible ones that are kept up to date too


class AgentsTable(SyncedTable[str | Text]):
    """Agents of one node (or many, with a node column), newest data pushed in by :meth:`show`.

    Only the rows on screen are patched at once; the others are patched when scrolled to. A refresh of 5,000
    agents then costs a comparison of the rows that changed and a few dozen cell updates, not thousands.
    """

    DEFAULT_CSS = """
    AgentsTable { height: 1fr; }
    """

    def __init__(self, *, node_column: bool = False, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.node_column = node_column
        self.sort_column = "health"
        self.sort_reverse = False
        self.filter_text = ""
        self._rows: dict[str, _Row] = {}  # every agent of the last show(), filtered or not
        self._agents: dict[str, Agent] = {}  # the shown ones
        self._wanted: dict[str, tuple[str | Text, ...]] = {}  # the newest cells of the shown rows
        self._rebuilding = False
        self.marked: set[str] = set()  # row keys ("node/agent") chosen with space for a bulk action

    def on_mount(self) -> None:
        if self.node_column:
            self.add_column("  Node", key=NODE_KEY)  # over the names, past the freshness gutter
        for column in COLUMNS:
            self.add_column(column.label, key=column.key)

    @property
    def sort_keys(self) -> tuple[str, ...]:
        return ((NODE_KEY,) if self.node_column else ()) + COLUMN_KEYS

    @property
    def shown_count(self) -> int:
        return len(self._order)

    def agent_at_cursor(self) -> Agent | None:
        row = self.row_at_cursor()
        return row[1] if row is not None else None

    def row_at_cursor(self) -> tuple[str, Agent] | None:
        """``(node, agent)`` under the cursor."""
        key = self.key_at_cursor()
        row = self._rows.get(key) if key is not None else None
        return (row.node, row.agent) if row is not None else None

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._redraw()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in self.sort_keys:
            return
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._redraw()

    def cycle_sort(self) -> None:
        keys = self.sort_keys
        index = (keys.index(self.sort_column) + 1) % len(keys)
        self.sort_by(keys[index], reverse=False)

    class SortChanged(Message):
        """The operator sorted by clicking a column's header (the screen's keys already know)."""

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
        self.post_message(self.SortChanged())

    # --- data in ---------------------------------------------------------------------------------------

    def show(
        self, agents: Sequence[tuple[str, Agent]], now: float, freshness: Mapping[str, str] | None = None
    ) -> None:
        """Show ``(node name, agent)`` pairs as of ``now``; only changed cells are repainted.

        ``freshness`` names the nodes whose data is not live (node -> "stale" | "offline" | ...): their rows
        are dimmed and marked in the Node column.
        """
        freshness = (freshness or {}) if self.node_column else {}
        previous = self._rows
        rows: dict[str, _Row] = {}
        for node, agent in agents:
            key = f"{node}/{agent.id}"
            state = freshness.get(node)
            old = previous.get(key)
            if old is None or old.agent is not agent or old.freshness != state:
                rows[key] = self._render_row(key, node, agent, now, state, old)
            elif old.now != now:  # the same data at a later moment: only the heartbeat's age moves
                at = _HEARTBEAT + self.node_column
                beat: str | Text = _heartbeat_cell(agent, now)
                cells = (*old.cells[:at], _dimmed(beat) if state else beat, *old.cells[at + 1 :])
                rows[key] = _Row(node, agent, cells, state, now)
            else:
                rows[key] = old
        self._rows = rows
        self._redraw()

    def _render_row(
        self, key: str, node: str, agent: Agent, now: float, state: str | None, old: _Row | None
    ) -> _Row:
        cells: list[str | Text] = [c.render(agent, now) for c in COLUMNS]
        # Keep the old row's objects where nothing they show changed: fewer new objects on every refresh
        # means fewer pauses for the garbage collector, which at thousands of rows are felt at the keyboard.
        same = old is not None and old.freshness == state
        if state is not None:
            cells = [_dimmed(c) for c in cells]  # rare (a node not answering), so not worth reusing
        elif same and old is not None:
            before = old.agent
            if (before.health_reason, before.message) == (agent.health_reason, agent.message):
                cells[_MESSAGE] = old.cells[_MESSAGE + self.node_column]
        if self.node_column:
            first = old.cells[0] if same and old is not None else _node_cell(key, node, state)
            return _Row(node, agent, (first, *cells), state, now)
        if same and old is not None and old.agent.name == agent.name:
            cells[0] = old.cells[0]
        else:
            cells[0] = _keyed(key, cells[0])
        return _Row(node, agent, tuple(cells), state, now)

    def _redraw(self) -> None:
        needle = self.filter_text
        visible = [
            (key, row)
            for key, row in self._rows.items()
            if agent_matches(row.agent, needle, row.node if self.node_column else "")
        ]
        if self.sort_column == NODE_KEY:
            visible.sort(key=lambda kr: (kr[1].node, kr[1].agent.name), reverse=self.sort_reverse)
        else:
            sort = _BY_KEY[self.sort_column].sort_key
            visible.sort(key=lambda kr: (sort(kr[1].agent), kr[1].node), reverse=self.sort_reverse)
        self._agents = {key: row.agent for key, row in visible}
        marked = self.marked
        self.sync_rows(
            {key: self._mark_name(key, row.cells) if key in marked else row.cells for key, row in visible}
        )

    # --- data to the screen ----------------------------------------------------------------------------

    def sync_rows(self, cells: dict[str, tuple[str | Text, ...]]) -> None:
        self._wanted = cells
        order = list(cells)
        if len(order) != len(self._order) or cells.keys() != self._cells.keys():
            self._rebuilding = True  # clearing the table scrolls it: nothing to patch meanwhile
            try:
                super().sync_rows(cells)  # a new set of rows: re-add them all
            finally:
                self._rebuilding = False
            self._cells = dict(cells)  # what the table holds, patched row by row from here on
            return
        if order != self._order:  # the same rows in a new order: move them
            selected = self.key_at_cursor()
            self._order = order
            place = {key: index for index, key in enumerate(order)}
            self.sort(key=lambda values: place[values[0].row_key])
            # DataTable.sort leaves `rows` in the order rows were added; keep it in display order, as a
            # rebuild would, for whoever reads the table row by row.
            self.rows = {row.key: row for row in self.ordered_rows}
            if selected is not None:
                self.move_cursor(row=place[selected], animate=False)
        self._patch_visible()

    def _patch_visible(self) -> None:
        """Bring the rows on screen (and a margin) up to date; the others wait until they are scrolled to."""
        if self._rebuilding:
            return
        height = self.size.height
        if height <= 0:
            keys = self._order  # not laid out yet: all of them
        else:
            top = max(0, round(self.scroll_y) - VIEWPORT_MARGIN)
            keys = self._order[top : top + height + 2 * VIEWPORT_MARGIN]
        wanted, held = self._wanted, self._cells
        due = {key: wanted[key] for key in keys if held.get(key) is not wanted[key]}
        if due:
            self._patch(due)
            held.update(due)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._patch_visible()

    def on_resize(self) -> None:
        self._patch_visible()

    # --- marks -----------------------------------------------------------------------------------------

    def _mark_name(self, key: str, cells: tuple[str | Text, ...]) -> tuple[str | Text, ...]:
        at = 1 if self.node_column else 0
        name = Text(f"✓ {cells[at]}", style="bold reverse")
        return (*cells[:at], _keyed(key, name) if at == 0 else name, *cells[at + 1 :])

    def toggle_mark(self) -> None:
        """Mark or unmark the agent under the cursor, then move down (k9s-style multi-select)."""
        key = self.key_at_cursor()
        if key is None:
            return
        self.marked.symmetric_difference_update({key})
        self._redraw()
        self.move_cursor(row=self.cursor_row + 1)

    def chosen(self) -> list[tuple[str, Agent]]:
        """``(node, agent)`` of the marked agents that are still shown, else of the one under the cursor."""
        rows = self._rows
        marked = self.marked and [(rows[k].node, rows[k].agent) for k in self._order if k in self.marked]
        if marked:
            return marked
        row = self.row_at_cursor()
        return [row] if row is not None else []

    def chosen_agents(self) -> list[Agent]:
        """The marked agents that are still shown, else the one under the cursor."""
        return [agent for _, agent in self.chosen()]

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self._redraw()

    @property
    def sort_description(self) -> str:
        """E.g. "sorted by health ▲", for the panel's border."""
        label = "node" if self.sort_column == NODE_KEY else _BY_KEY[self.sort_column].label.lower()
        return f"sorted by {label} {'▼' if self.sort_reverse else '▲'}"
