"""Full-screen logs: one node or every node merged, with level, agent and text filters and follow.

The filter line understands words and two prefixes: ``level:warning`` (that level and worse),
``agent:ID`` (one agent); e.g. ``agent:coder-07 level:error oom``.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from backends.model import LOG_LEVELS
from backends.safe_text import terminal_safe
from console.context import DeckContext
from console.core.node_link import NodeLink
from widgets.filter_box import FilterBox
from widgets.key_footer import KeyFooter
from widgets.log_view import LogFilter, LogView
from widgets.safe import safe_content
from widgets.steady import set_border_subtitle

from .base import FleetDeckScreen, filter_binding, filter_binding_allowed


def parse_log_filter(text: str, base: LogFilter) -> LogFilter:
    """Turn the filter line into a LogFilter; unknown levels are left as text so nothing is lost."""
    words: list[str] = []
    level, source = "debug", None
    for token in text.split():
        key, sep, value = token.partition(":")
        if sep and key == "level" and value in LOG_LEVELS:
            level = value
        elif sep and key == "agent" and value:
            source = value
        else:
            words.append(token)
    return base.with_(min_level=level, source=source, text=" ".join(words))


# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = ("help", "filter", "back", "level", "follow", "clear_filter", "palette", "quit", "theme")


class LogsScreen(FleetDeckScreen):
    DEFAULT_CSS = """
    LogsScreen #log-status { height: 1; background: $panel; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("f", "toggle_follow", "Follow", id="follow"),
        filter_binding("Filter: words, level:LEVEL, agent:ID"),
        Binding("v", "cycle_level", "Level", id="level", tooltip="Cycle the minimum level shown"),
        Binding("x", "clear_filter", "Clear filter", id="clear_filter"),
    ]

    AUTO_FOCUS = "LogView"  # from the first frame: a key typed meanwhile must not land in the filter

    def __init__(self, deck: DeckContext, node: str | None = None, source: str | None = None) -> None:
        super().__init__(deck)
        self.node = node
        self.initial_filter = LogFilter(source=source)
        self._freshness: str | None = None  # the panel's subtitle as last set

    @property
    def sources(self) -> list[NodeLink]:
        links = self.deck.links
        return [links[self.node]] if self.node else list(links.values())

    def compose(self) -> ComposeResult:
        yield Static(id="log-status")
        # an agent's id, shown in the box: made safe like any text of the node's (the filter itself is exact)
        initial = f"agent:{terminal_safe(self.initial_filter.source)}" if self.initial_filter.source else ""
        yield FilterBox(
            initial,
            placeholder="words, level:warning, agent:ID   (enter applies, esc closes)",
            id="log-filter",
        )
        with Vertical(id="log-panel", classes="panel"):
            view = LogView(id="full-logs", show_node=self.node is None)
            view.filter = self.initial_filter
            yield view
        yield KeyFooter(order=FOOTER_ORDER)

    def on_mount(self) -> None:
        self.logs_arrived()

    def logs_arrived(self) -> None:
        if not self.is_mounted:
            return
        view = self.query_one(LogView)
        batches = [
            (link.name, list(link.logs_since(view.last_seq.get(link.name, 0)))) for link in self.sources
        ]
        if len(batches) == 1:
            view.write_records(*batches[0])
        else:
            # merge nodes in time order; within a node the seq order is kept (the sort is stable); one
            # write for the whole batch, so one repaint however many nodes and lines
            merged = sorted(
                ((name, record) for name, records in batches for record in records),
                key=lambda entry: (entry[1].ts, entry[0]),
            )
            view.write_entries(merged)
        self._show_status(view)

    def node_updated(self, link: NodeLink) -> None:
        if self.is_mounted:
            self._show_status(self.query_one(LogView))

    def _show_status(self, view: LogView) -> None:
        scope = f"node {self.node}" if self.node else f"all {len(self.sources)} nodes"
        follow = "following" if view.follow else "paused — f to follow"
        # one row of fixed height: a new text needs a repaint, never a layout of the whole screen (which,
        # ten times a second under a log flood, cost more than the log lines themselves)
        status = f"Logs · {scope} · {view.filter.describe()} · {view.visible_count} lines · {follow}"
        self.query_one("#log-status", Static).update(safe_content(status), layout=False)
        freshness = ", ".join(f"{link.name} {self.freshness(link)[1]}" for link in self.sources)
        if freshness != self._freshness:  # setting it repaints the whole panel, even to the same text
            self._freshness = freshness
            set_border_subtitle(self.query_one("#log-panel"), freshness)

    def _apply(self, log_filter: LogFilter) -> None:
        view = self.query_one(LogView)
        view.set_filter(log_filter)
        self._show_status(view)

    def action_back(self) -> None:
        box = self.query_one("#log-filter", FilterBox)
        if box.is_open:  # the filter stays in force, and the status line says which
            box.close(clear=False, focus=self.query_one(LogView))
            return
        self.app.pop_screen()

    def action_toggle_follow(self) -> None:
        view = self.query_one(LogView)
        view.follow = not view.follow
        self._show_status(view)

    def action_filter(self) -> None:
        self.query_one("#log-filter", FilterBox).open()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return filter_binding_allowed(self) if action == "filter" else True

    @on(Input.Changed, "#log-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        log_filter = parse_log_filter(event.value, self.query_one(LogView).filter)
        source = self.initial_filter.source
        if source is not None and log_filter.source == terminal_safe(source):
            # the box shows the agent's id made safe; the filter matches the id itself
            log_filter = log_filter.with_(source=source)
        self._apply(log_filter)

    @on(Input.Submitted, "#log-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#log-filter", FilterBox).close(clear=False, focus=self.query_one(LogView))

    def action_cycle_level(self) -> None:
        view = self.query_one(LogView)
        index = (LOG_LEVELS.index(view.filter.min_level) + 1) % len(LOG_LEVELS)
        self._apply(view.filter.with_(min_level=LOG_LEVELS[index]))

    def action_clear_filter(self) -> None:
        self.query_one("#log-filter", Input).value = ""
        self._apply(LogFilter())
