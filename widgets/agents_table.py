"""The agents table: one row per agent, sortable, filterable, updated cell by cell.

Each refresh compares the new rows with what is on screen and touches only the cells that changed. Rows
that only changed places (a sort, or a value the sort uses) are moved, not re-added; the table is rebuilt only
when the set of rows changes (a new agent, a filter) - re-adding means re-measuring every cell, which at
thousands of rows would hold the UI up for a second.

With ``node_column`` it shows the agents of many nodes: a Node column (filterable and sortable like the
others), and the rows of a node whose data is not live are dimmed, its name marked with the freshness symbol
("◐" stale, "✖" offline), so old data is never passed off as live.

With a headline KPI (:meth:`AgentsTable.set_headline`) a KPI column shows each agent's latest figure of
it, a breach marked by symbol ("▲ 127 ms", "✖ 162 ms") and coloured by the console's grade of it, handed in
as a function: the table formats and colours, it never judges. A row's KPI cell is rendered with the rest
of the row, only when the row is on screen and its agent changed.

When any agent held reports tokens (``tokens_in_total``/``tokens_out_total``) or cost (``cost_usd_total``),
as LLM agents do through OpenTelemetry or the demo's coders, a Tokens column (in + out, "12.3k") and a Cost
column ("$1.23") follow GPU memory; a fleet that reports neither gets neither. They are the first columns
left out when the table is narrow.

A dead agent (``Agent.dead``: a Ray actor Ray reports DEAD) is history: its health reads "· dead" and it
sorts after every live agent by health; its cause stays in the "Why" column.

Every cell that shows what an agent or node said (name, message, labels, phase) is a ``Text`` made by
``safe_text``: the table shows a cell's text as it is, so its controls would reach the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.message import Message

from backends.kpis import format_value
from backends.model import Agent, Kpi
from backends.safe_text import terminal_safe

from .column_fit import ColumnSpec, fit_columns
from .format import NA, fmt_bytes, fmt_duration, fmt_fraction, fmt_number
from .kpi_view import figure_text
from .row_table import SCROLLBAR_ROOM, RowTable, TableColumn
from .safe import safe_text

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
    "waiting": "bold magenta",  # blocked on a person: the word says it, the colour makes it stand out
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


_DEAD_CELL = Text("· dead", style="dim")  # history (Agent.dead): its cause is in the next column


def _health_cell(agent: Agent, now: float) -> Text:
    if agent.dead:
        return _DEAD_CELL
    return _HEALTH_CELLS.get(agent.health) or safe_text(f"? {agent.health}", style="dim")


def _state_cell(agent: Agent, now: float) -> Text:
    return _STATE_CELLS.get(agent.state) or safe_text(agent.state)


MESSAGE_WIDTH = 34  # the message's room before the columns after GPU memory get any
MESSAGE_MIN = 16  # the least room it gets: the other columns are left out before it is squeezed below this
MESSAGE_MAX = 120  # the most, on a wide screen (the whole text is in the agent's detail)


def _message_cell(agent: Agent, now: float, width: int = MESSAGE_WIDTH) -> Text:
    text = safe_text(agent.health_reason or agent.message, style="" if agent.health_reason else "dim")
    if len(text) > width:  # cut after the controls are shown, so a cut never splits "␛" from its text
        text = text[: width - 1] + "…"
    return text


def _heartbeat_cell(agent: Agent, now: float) -> str:
    return NA if agent.last_heartbeat is None else fmt_duration(now - agent.last_heartbeat)


def _none_last(value: float | None) -> tuple[bool, float]:
    return (value is None, -(value or 0.0))


def _label_cell(agent: Agent, name: str) -> Text | str:
    value = agent.labels.get(name)
    return NA if value is None else safe_text(value)


COLUMNS: tuple[Column, ...] = (
    Column("name", "Agent", lambda a, now: safe_text(a.name), lambda a: a.name),
    # the dead last: history, below every live agent however it fares
    Column("health", "Health", _health_cell, lambda a: (a.dead, _HEALTH_RANK.get(a.health, 2), a.name)),
    Column("state", "State", _state_cell, lambda a: (a.state, a.name)),
    # why an agent is not healthy is what a responder needs next, so it comes before the numbers
    Column("message", "Why / doing", _message_cell, lambda a: a.health_reason or a.message or "~"),
    Column("role", "Role", lambda a, now: _label_cell(a, "role"), lambda a: a.labels.get("role", "~")),
    Column("phase", "Phase", lambda a, now: safe_text(a.phase_id or NA), lambda a: a.phase_id or "~"),
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
TOKENS_KEY, COST_KEY = "tokens", "cost"
TOKEN_KPIS = ("tokens_in_total", "tokens_out_total")  # the Tokens column shows their sum
COST_KPI = "cost_usd_total"
FIGURES_AFTER = "gpu"  # where the Tokens and Cost columns go, when some agent reports them


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _tokens(agent: Agent) -> float | None:
    """Tokens in plus tokens out, from whichever of the two the agent reports; None: neither."""
    total: float | None = None
    for kpi in agent.kpis:
        if kpi.name in TOKEN_KPIS:
            total = kpi.value + (total or 0.0)
    return _finite(total)


def _cost(agent: Agent) -> float | None:
    kpi = agent.kpi(COST_KPI)
    return None if kpi is None else _finite(kpi.value)


def _tokens_cell(agent: Agent, now: float) -> str:
    value = _tokens(agent)
    return NA if value is None else format_value(value, "count")  # "12.3k", "1.5M"


def _cost_cell(agent: Agent, now: float) -> str:
    value = _cost(agent)
    return NA if value is None else format_value(value, "usd")  # "$1.23", "$1,234.56"


FIGURE_COLUMNS: tuple[Column, ...] = (
    Column(TOKENS_KEY, "Tokens", _tokens_cell, lambda a: _none_last(_tokens(a))),
    Column(COST_KEY, "Cost", _cost_cell, lambda a: _none_last(_cost(a))),
)


def figures_reported(agents: Iterable[Agent]) -> frozenset[str]:
    """Which of the Tokens and Cost columns apply: the keys of those some agent reports a figure for."""
    found: set[str] = set()
    for agent in agents:
        for kpi in agent.kpis:
            if kpi.name in TOKEN_KPIS:
                found.add(TOKENS_KEY)
            elif kpi.name == COST_KPI:
                found.add(COST_KEY)
        if len(found) == len(FIGURE_COLUMNS):
            break
    return frozenset(found)


_BY_KEY = {c.key: c for c in COLUMNS}
NODE_KEY = "node"  # the optional first column; sorts by node, then agent name
KPI_KEY = "kpi"  # the headline KPI's column, after State, when the table has a headline KPI
KPI_AFTER = "state"
KPI_WIDTH = 10  # "✖ 1023 ms", "▲ 99.93%", "$1,234.56"; a longer figure is cut by the table
KPI_LABEL_MAX = 12
# the unit words a KPI's name ends in: its cells show the unit, so the header can do without ("latency_p95")
_UNIT_ENDINGS = ("_ms", "_s", "_seconds", "_ratio", "_percent", "_pct", "_bytes", "_usd", "_per_hour",
                 "_per_min", "_per_s")  # fmt: skip
# (node, agent, its KPI) -> "warning" | "critical" | None: the console's judgement of the figure
KpiGrader = Callable[[str, Agent, Kpi], str | None]
_GRADE_RANK = {"critical": 0, "warning": 1}
# Which columns get room first when the table is narrow (0: always shown). The message ("why") is kept
# MESSAGE_MIN wide, grown to MESSAGE_WIDTH before the columns after GPU memory, and takes what is left, up
# to MESSAGE_MAX. What is left out is in the agent's detail, or on a wider screen. Cost and tokens come last:
# the first left out, and never at the expense of a column that was there before them.
COLUMN_RANK = {
    "name": 0, "health": 1, "state": 2, "kpi": 3, "cpu": 4, "gpu": 5, "progress": 6, "heartbeat": 7,
    "role": 8, "phase": 9, "rss": 10, "restarts": 11, "cost": 12, "tokens": 13,
}  # fmt: skip
# The widest cell a column of fixed vocabulary or format shows ("✖ unhealthy", "stopping", "100%",
# "3200%" on a big machine, "1023.9 MiB", "39m16s"); free-text columns are measured from the agents shown.
# Tokens and cost are measured too, at least as wide as a figure a few refreshes on ("999k", "$123.45"):
# a column is measured when rows are added, not when a cell is patched.
FIXED_WIDTH = {
    "health": 11, "state": 8, "progress": 4, "cpu": 5, "rss": 10, "gpu": 10, "heartbeat": 6,
    "tokens": 5, "cost": 7,
}  # fmt: skip
MEASURED: dict[str, Callable[[Agent], str]] = {
    "name": lambda a: a.name,
    "role": lambda a: a.labels.get("role", NA),
    "phase": lambda a: a.phase_id or NA,
    "tokens": lambda a: _tokens_cell(a, 0.0),
    "cost": lambda a: _cost_cell(a, 0.0),
}
MARK_ROOM = 2  # "✓ " before a marked agent's name
# A node whose data is not live: the symbol and the word say so, the colour only reinforces them.
FRESHNESS_STYLE: dict[str, tuple[str, str]] = {
    "stale": ("◐", "yellow"),
    "offline": ("✖", "bold red"),
    "connecting": ("○", "dim"),
}


def kpi_label(name: str) -> str:
    """The KPI column's header: the KPI's name without its unit word ("latency_p95_ms" -> "latency_p95",
    "tokens_out_total" -> "tokens_out"), cut to KPI_LABEL_MAX."""
    stem = name.removesuffix("_total")
    for ending in _UNIT_ENDINGS:
        if stem.endswith(ending) and len(stem) - len(ending) >= 3:
            stem = stem.removesuffix(ending)
            break
    return stem if len(stem) <= KPI_LABEL_MAX else stem[: KPI_LABEL_MAX - 1] + "…"


def haystack(agent: Agent, node: str = "") -> str:
    """What a filter text is matched against: the fields an operator would search, lower-cased."""
    return " ".join(
        (node, agent.id, agent.name, agent.state, agent.health, agent.phase_id or "", *agent.labels.values())
    ).lower()


def agent_matches(agent: Agent, needle: str, node: str = "") -> bool:
    """Case-insensitive match of a filter text against the fields an operator would search."""
    if not needle:
        return True
    hay = haystack(agent, node)
    return all(word in hay for word in needle.lower().split())


def _node_cell(node: str, freshness: str | None) -> str | Text:
    # The symbol sits in a gutter every row has, so the column's width (measured when rows are added, not
    # when a cell is patched) never changes with a node's freshness.
    if freshness is None:
        return safe_text(f"  {node}")
    symbol, style = FRESHNESS_STYLE.get(freshness, ("?", "dim"))
    return safe_text(f"{symbol} {node}", style=style)


def _dimmed(cell: str | Text) -> Text:
    # A span rather than a base style: Text equality compares spans, so the change reaches the screen.
    text = Text(cell) if isinstance(cell, str) else cell.copy()
    text.stylize("dim")
    return text


# What a row's cells were rendered from: the agent, its node's freshness, the moment, and the cells.
_Rendered = tuple[Agent, str | None, float, tuple[str | Text, ...]]

VIEWPORT_MARGIN = 8  # rows above and below the visible ones that are kept up to date too


class AgentsTable(RowTable[str | Text]):
    """Agents of one node (or many, with a node column), newest data pushed in by :meth:`show`.

    Only the rows on screen (and a margin) have their cells rendered at once; the others are rendered when
    scrolled to. A refresh of 5,000 agents then costs a filter and a sort by keys already computed for the
    agents that did not change, and the cells of the few dozen rows in view.
    """

    DEFAULT_CSS = """
    AgentsTable { height: 1fr; }
    """

    def __init__(self, *, node_column: bool = False, **kwargs: object) -> None:
        super().__init__(zebra_stripes=True, **kwargs)
        self.node_column = node_column
        self._sort_keys: dict[str, tuple[Agent, Any]] = {}
        self._sort_column = "health"
        self.sort_reverse = False
        self.filter_text = ""
        # The last show(), kept as plain dicts of immutable values: no object per row and refresh, so a
        # refresh of thousands of agents leaves nothing behind for the garbage collector to walk.
        self._rows: dict[str, Agent] = {}  # every agent, filtered or not, by row key ("node/agent")
        self._node_of: dict[str, str] = {}  # row key -> node
        self._not_live: Mapping[str, str] = {}  # node -> freshness, for nodes whose data is not live
        self._now = 0.0
        self._agents: dict[str, Agent] = {}  # the shown ones, in display order
        # Cells are rendered when a row is patched into the table (on screen, or scrolled to), not on show():
        # a refresh of 5,000 agents renders the few dozen rows in view.
        self._rendered: dict[str, _Rendered] = {}
        # Per row, what filters and sorts it, kept while its agent is the same object: a keystroke in the
        # filter, or a refresh where few agents changed, computes these for the changed agents only.
        self._haystacks: dict[str, tuple[Agent, str]] = {}
        self._refit_due = True  # the set of agents changed: the measured columns are measured again
        self.marked: set[str] = set()  # row keys ("node/agent") chosen with space for a bulk action
        # the columns shown and their widths (node column included), chosen for the table's width
        self._widths: dict[str, int] = {}
        self._columns: tuple[Column, ...] = ()
        self._message_width = MESSAGE_WIDTH
        self._beat_at: int | None = None  # the heartbeat's place among the cells, when it is shown
        self._headline: str | None = None  # the KPI the KPI column shows; None: no such column
        self._grader: KpiGrader | None = None
        self._all_columns: tuple[Column, ...] = COLUMNS
        self._by_key: dict[str, Column] = _BY_KEY
        self._kpi_column: Column | None = None
        self._figures: frozenset[str] = frozenset()  # which of Tokens and Cost apply to the agents held

    # --- the headline KPI ------------------------------------------------------------------------------

    def set_headline(self, name: str | None, grader: KpiGrader | None = None) -> None:
        """Show KPI ``name`` in a KPI column (None: no KPI column), breaches graded by ``grader``. Setting
        the same name again changes nothing: the grader of a name is fixed for the table's life."""
        if name == self._headline and (grader is None) == (self._grader is None):
            return
        self._headline, self._grader = name, grader
        self._kpi_column = (
            None
            if name is None
            else Column(KPI_KEY, terminal_safe(kpi_label(name)), self._kpi_cell_plain, self._kpi_sort_key)
        )
        self._compose_columns()
        if self._widths:
            self._widths = {}  # the columns are set up anew, every row rendered again, on the next redraw
            self._redraw()

    def _compose_columns(self) -> None:
        """The columns the table may show: the fixed ones, the headline KPI's, and Tokens and Cost where
        some agent held reports them. A sort by a column that no longer applies goes back to health."""
        columns = list(COLUMNS)
        if self._kpi_column is not None:
            columns.insert(COLUMN_KEYS.index(KPI_AFTER) + 1, self._kpi_column)
        at = [c.key for c in columns].index(FIGURES_AFTER) + 1
        columns[at:at] = [c for c in FIGURE_COLUMNS if c.key in self._figures]
        self._all_columns = tuple(columns)
        self._by_key = {c.key: c for c in columns}
        self._sort_keys = {}  # a KPI's grader may have changed how its column sorts
        if self.sort_column != NODE_KEY and self.sort_column not in self._by_key:
            self.sort_column = "health"

    @property
    def sort_column(self) -> str:
        return self._sort_column

    @sort_column.setter
    def sort_column(self, key: str) -> None:
        if key != self._sort_column:
            self._sort_column = key
            self._sort_keys = {}  # computed for the other column

    @property
    def headline(self) -> str | None:
        return self._headline

    def _kpi_cell(self, node: str, agent: Agent) -> Text:
        name = self._headline
        kpi = agent.kpi(name) if name is not None else None
        grader = self._grader
        return figure_text(kpi, grader(node, agent, kpi) if kpi is not None and grader is not None else None)

    def _kpi_cell_plain(self, agent: Agent, now: float) -> Text:
        return self._kpi_cell("", agent)  # rows are rendered through _kpi_cell, with their node

    def _kpi_sort_key(self, agent: Agent, node: str = "") -> tuple[int, float]:
        """Worst first: critical, then warning, then the rest by figure, highest first; none last."""
        kpi = agent.kpi(self._headline) if self._headline is not None else None
        if kpi is None:
            return (3, 0.0)
        grade = self._grader(node, agent, kpi) if self._grader is not None else None
        return (_GRADE_RANK.get(grade or "", 2), -kpi.value)

    @property
    def shown_columns(self) -> tuple[str, ...]:
        """The keys of the columns on screen, in order."""
        return tuple(self._widths)

    def _fit(self) -> dict[str, int]:
        """The columns that fit the table's width now, by rank, and how wide each is."""
        room = self.size.width - SCROLLBAR_ROOM if self.size.width else 10_000  # not laid out yet: all
        return fit_columns(self._column_specs(), room)

    def _column_specs(self) -> list[ColumnSpec]:
        """Each column's width (measured from the agents held where the text is free) and rank."""
        agents = self._rows.values()
        specs = []
        if self.node_column:
            nodes = set(self._node_of.values())
            specs.append(
                ColumnSpec(NODE_KEY, 2 + max([4, *(cell_len(terminal_safe(n)) for n in nodes)]), rank=0)
            )
        for column in self._all_columns:
            label = cell_len(column.label)
            if column.key == "message":
                longest = max([label, *(len(a.health_reason or a.message or "") for a in agents)])
                specs.append(
                    ColumnSpec(
                        "message",
                        min(longest, MESSAGE_MAX),
                        rank=0,
                        elastic_min=MESSAGE_MIN,
                        elastic_want=MESSAGE_WIDTH,
                        grow_after=COLUMN_RANK["gpu"],
                    )
                )
                continue
            if column.key == KPI_KEY:
                width = max(label, KPI_WIDTH)
            elif column.key in MEASURED:
                value = MEASURED[column.key]
                least = FIXED_WIDTH.get(column.key, 0)
                width = max([label, least, *(cell_len(terminal_safe(value(a))) for a in agents)])
            else:
                width = max(label, FIXED_WIDTH.get(column.key, 3))
            if column.key == "name" and self.marked:
                width += MARK_ROOM
            specs.append(ColumnSpec(column.key, width, rank=COLUMN_RANK[column.key]))
        return specs

    def _refit(self) -> bool:
        """Choose the columns again; when they change, every row's cells are rendered anew (True)."""
        widths = self._fit()
        if widths == self._widths:
            return False
        self._widths = widths
        self._columns = tuple(c for c in self._all_columns if c.key in widths)
        self._message_width = widths.get("message", MESSAGE_WIDTH)
        keys = tuple(c.key for c in self._columns)
        self._beat_at = keys.index("heartbeat") + self.node_column if "heartbeat" in keys else None
        # the node's name sits past its gutter: its label too
        self.set_columns(
            TableColumn(key, "  Node" if key == NODE_KEY else self._by_key[key].label, width)
            for key, width in widths.items()
        )
        self.forget_cells()  # rendered for the old columns
        self._rendered = {}
        return True

    @property
    def sort_keys(self) -> tuple[str, ...]:
        return ((NODE_KEY,) if self.node_column else ()) + tuple(c.key for c in self._all_columns)

    @property
    def shown_count(self) -> int:
        return len(self._order)

    def agent_at_cursor(self) -> Agent | None:
        row = self.row_at_cursor()
        return row[1] if row is not None else None

    def row_at_cursor(self) -> tuple[str, Agent] | None:
        """``(node, agent)`` under the cursor."""
        key = self.key_at_cursor()
        agent = self._rows.get(key) if key is not None else None
        return (self._node_of[key], agent) if key is not None and agent is not None else None

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

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_key)
        self.post_message(self.SortChanged())

    # --- data in ---------------------------------------------------------------------------------------

    def show(
        self, agents: Sequence[tuple[str, Agent]], now: float, freshness: Mapping[str, str] | None = None
    ) -> None:
        """Show ``(node name, agent)`` pairs as of ``now``; only changed cells are repainted.

        ``freshness`` names the nodes whose data is not live (node -> "stale" | "offline" | ...): their rows
        are dimmed and marked in the Node column.
        """
        self._not_live = (freshness or {}) if self.node_column else {}
        self._now = now
        rows: dict[str, Agent] = {}
        node_of: dict[str, str] = {}
        for node, agent in agents:
            key = f"{node}/{agent.id}"
            rows[key] = agent
            node_of[key] = node
        if rows.keys() != self._rows.keys():
            self._refit_due = True  # new agents may need wider columns
            self._forget_gone(rows)
        self._rows, self._node_of = rows, node_of
        figures = figures_reported(rows.values())
        if figures != self._figures:  # an agent began (or the last one ceased) to report tokens or cost
            self._figures = figures
            self._compose_columns()
            self._widths = {}  # the columns are set up anew on this redraw
        self._redraw()

    def _cells_of(self, key: str) -> tuple[str | Text, ...]:
        """The row's cells as of the last show(), rendered now unless they already were, marked if it is."""
        agent, now = self._rows[key], self._now
        state = self._not_live.get(self._node_of[key])
        done = self._rendered.get(key)
        if done is None or done[0] is not agent or done[1] != state or done[2] != now:
            done = (agent, state, now, self._render_row(key, agent, state, now, done))
            self._rendered[key] = done
        return self._mark_name(key, done[3]) if key in self.marked else done[3]

    def _render_row(
        self, key: str, agent: Agent, state: str | None, now: float, old: _Rendered | None
    ) -> tuple[str | Text, ...]:
        old_cells = old[3] if old is not None and old[1] == state else None
        if old is not None and old_cells is not None and old[0] is agent:
            # the same data at a later moment: only the heartbeat's age moves
            at = self._beat_at
            if at is None:
                return old_cells
            beat: str | Text = _heartbeat_cell(agent, now)
            return (*old_cells[:at], _dimmed(beat) if state else beat, *old_cells[at + 1 :])
        width = self._message_width
        node = self._node_of[key]
        cells: list[str | Text] = [
            _message_cell(agent, now, width)
            if c.key == "message"
            else self._kpi_cell(node, agent)
            if c.key == KPI_KEY
            else c.render(agent, now)
            for c in self._columns
        ]
        # Keep the old row's objects where nothing they show changed: fewer new objects on every refresh.
        message = next((i for i, c in enumerate(self._columns) if c.key == "message"), None)
        if state is not None:
            cells = [_dimmed(c) for c in cells]  # rare (a node not answering), so not worth reusing
        elif old is not None and old_cells is not None and message is not None:
            before = old[0]
            if (before.health_reason, before.message) == (agent.health_reason, agent.message):
                cells[message] = old_cells[message + self.node_column]
        if self.node_column:
            first = old_cells[0] if old_cells is not None else _node_cell(self._node_of[key], state)
            return (first, *cells)
        return tuple(cells)

    def _redraw(self) -> None:
        needle, rows = self.filter_text, self._rows
        visible = list(rows) if not needle else [key for key in rows if self._matches(key, needle)]
        visible.sort(key=self._sort_key, reverse=self.sort_reverse)
        self._agents = {key: rows[key] for key in visible}
        self._sync(visible)

    def _matches(self, key: str, needle: str) -> bool:
        agent = self._rows[key]
        held = self._haystacks.get(key)
        if held is None or held[0] is not agent:
            node = self._node_of[key] if self.node_column else ""
            held = self._haystacks[key] = (agent, haystack(agent, node))
        return all(word in held[1] for word in needle.lower().split())

    def _sort_key(self, key: str) -> Any:
        """The row's place in the sort by the current column, computed again only when its agent changed."""
        agent = self._rows[key]
        held = self._sort_keys.get(key)
        if held is not None and held[0] is agent:
            return held[1]
        node = self._node_of[key]
        if self.sort_column == NODE_KEY:
            value: Any = (node, agent.name)
        elif self.sort_column == KPI_KEY:  # graded with each agent's node: a node may set its own lines
            value = (self._kpi_sort_key(agent, node), node)
        else:
            value = (self._by_key[self.sort_column].sort_key(agent), node)
        self._sort_keys[key] = (agent, value)
        return value

    def _forget_gone(self, rows: Mapping[str, Agent]) -> None:
        """Drop what is kept per row for agents no longer held."""
        for kept in (self._haystacks, self._sort_keys, self._rendered):
            for key in kept.keys() - rows.keys():
                del kept[key]
        self.forget_cells(self.held_keys() - rows.keys())

    # --- data to the screen ----------------------------------------------------------------------------

    def _sync(self, order: list[str]) -> None:
        if self._refit_due or not self._widths:
            self._refit_due = False
            self._refit()
        self.set_order(order)
        self._patch_visible()

    def _patch_visible(self) -> None:
        """Bring the rows on screen (and a margin) up to date; the others wait until they are scrolled to."""
        height = self.size.height
        if height <= 0:
            return  # not laid out yet: each row's cells are rendered when it is first drawn
        top = max(0, round(self.scroll_y) - VIEWPORT_MARGIN)
        keys = self._order[top : top + height + 2 * VIEWPORT_MARGIN]
        self.update_rows({key: self._cells_of(key) for key in keys})

    def cells_for(self, key: str) -> tuple[str | Text, ...]:
        return self._cells_of(key)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._patch_visible()

    def on_resize(self) -> None:
        if self._widths and self._refit():
            self._redraw()  # new columns: every row again
            return
        self._patch_visible()

    # --- marks -----------------------------------------------------------------------------------------

    def _mark_name(self, key: str, cells: tuple[str | Text, ...]) -> tuple[str | Text, ...]:
        at = 1 if self.node_column else 0
        name = Text(f"✓ {cells[at]}", style="bold reverse")  # the cell's own text: already safe
        return (*cells[:at], name, *cells[at + 1 :])

    def toggle_mark(self) -> None:
        """Mark or unmark the agent under the cursor, then move down (k9s-style multi-select)."""
        key = self.key_at_cursor()
        if key is None:
            return
        self.marked.symmetric_difference_update({key})
        self._refit()  # the first mark needs room for "✓ " before the name
        self._redraw()
        self.move_cursor(row=self.cursor_row + 1)

    def chosen(self) -> list[tuple[str, Agent]]:
        """``(node, agent)`` of the marked agents that are still shown, else of the one under the cursor."""
        rows, node_of = self._rows, self._node_of
        marked = self.marked and [(node_of[k], rows[k]) for k in self._order if k in self.marked]
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
            self._refit()
            self._redraw()

    @property
    def sort_description(self) -> str:
        """E.g. "sorted by health ▲", for the panel's border."""
        label = "node" if self.sort_column == NODE_KEY else self._by_key[self.sort_column].label.lower()
        return f"sorted by {label} {'▼' if self.sort_reverse else '▲'}"
