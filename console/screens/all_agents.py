"""All agents: every node's agents in one table with a Node column — "which agent, anywhere, is failing?".

The Node screen's filter (which also matches the node's name), sort, marks and action keys, over the whole
fleet. Rows of a node whose data is not live stay visible, dimmed and marked "◐" (stale) or "✖" (offline)
before the node's name, and a status line above the table says which node, since when or why, so old data is
never passed off as live.

A refresh of each of 100 nodes would repaint a 5,000-row table 100 times a second; the repaints are
coalesced instead (CoalescedRepaint), and the table itself touches only the cells on screen that changed.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from backends.model import Agent, HealthCount, health_count
from console.context import DeckContext
from console.core.node_link import NodeLink
from console.messages import OpenAgent, OpenLogs
from widgets.agents_table import FRESHNESS_STYLE, AgentsTable
from widgets.filter_box import FilterBox
from widgets.format import fmt_health
from widgets.key_footer import KeyFooter
from widgets.safe import safe_text
from widgets.steady import set_border_subtitle, set_border_title, update_steady

from .action_keys import ACTION_BINDINGS, ACTION_CAPABILITY
from .base import FleetDeckScreen, filter_binding, filter_binding_allowed
from .coalesce import CoalescedRepaint
from .kpi_judging import set_table_headline

# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = (
    "help",
    "filter",
    "pause",
    "stop",
    "dispatch",
    "logs",
    "back",
    "rollback",
    "checkpoint",
    "sort",
    "palette",
    "audit",
    "quit",
    "theme",
)


class AllAgentsScreen(CoalescedRepaint, FleetDeckScreen):
    DEFAULT_CSS = """
    AllAgentsScreen #all-agents-title { height: 1; background: $panel; padding: 0 1; }
    AllAgentsScreen #all-agents-stale { display: none; height: auto; max-height: 3; padding: 0 1;
                                        color: $warning; }
    AllAgentsScreen #all-agents-stale.-shown { display: block; }
    AllAgentsScreen #all-agents-panel { height: 1fr; }
    """

    BINDINGS = [
        filter_binding("Filter by node, name, role, state, health"),
        Binding("enter", "open_agent", "Agent", id="open", show=False, tooltip="Open the selected agent"),
        Binding("l", "logs", "Logs", id="logs", tooltip="The selected agent's logs, on its node"),
        Binding("o", "sort", "Sort", id="sort", tooltip="Sort agents by the next column"),
        Binding("O", "reverse_sort", "Reverse", id="reverse_sort", show=False, tooltip="Reverse the sort"),
        Binding("escape", "back", "Back", id="back", tooltip="Clear the filter, or go back"),
        Binding("space", "mark", "Mark", id="mark", show=False, tooltip="Mark the agent for a bulk action"),
        *ACTION_BINDINGS,
    ]

    AUTO_FOCUS = "AgentsTable"  # from the first frame: a key typed meanwhile must not land in the filter

    def __init__(self, deck: DeckContext) -> None:
        super().__init__(deck)
        self._acting_on: tuple[object, ...] = ()  # the node(s) the action keys act on, and its rights
        # nodes, live nodes, and the agents' health: as of the last repaint
        self._counts: tuple[int, int, HealthCount] = (0, 0, HealthCount(0, 0, 0))

    # --- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="all-agents-title")
        yield Static(id="all-agents-stale")
        yield FilterBox(
            placeholder="filter: node, name, role, state, health…  (enter keeps, esc clears)", id="filter"
        )
        with Vertical(id="all-agents-panel", classes="panel"):
            yield AgentsTable(id="all-agents", node_column=True)
        yield KeyFooter(order=FOOTER_ORDER)

    def on_mount(self) -> None:
        if not self.covered():  # else painted when it is first shown
            self.repaint_now()

    # --- data ------------------------------------------------------------------------------------------

    def repaint(self) -> None:
        """Show every node's latest data (called at most every REDRAW_S by CoalescedRepaint)."""
        if not self.is_mounted:
            return
        links = list(self.deck.links.values())
        rows: list[tuple[str, Agent]] = []
        not_live: dict[str, str] = {}  # node -> freshness kind, for the table
        notes: list[Text] = []  # what the status line says of them
        for link in links:
            kind, text = self.freshness(link)
            if kind not in ("live", "frozen"):
                not_live[link.name] = kind
                symbol, style = FRESHNESS_STYLE.get(kind, ("?", ""))
                shown = " — showing its last data" if link.snapshot is not None else " — no data yet"
                notes.append(Text.assemble(safe_text(f"{symbol} {link.name} {text}", style=style), shown))
            if link.snapshot is not None:
                rows.extend((link.name, agent) for agent in link.snapshot.agents)
        table = self.query_one(AgentsTable)
        set_table_headline(table, self.deck.links, self.deck.headline_kpi, [agent for _, agent in rows])
        table.show(rows, self.deck.clock(), not_live)
        status = self.query_one("#all-agents-stale", Static)
        status.set_class(bool(notes), "-shown")
        update_steady(status, Text(" · ").join(notes))
        self._counts = (len(links), len(links) - len(not_live), health_count(agent for _, agent in rows))
        self._show_summary()

    def _show_summary(self) -> None:
        """The title line and the panel's border: counts, what is shown, the sort, how many nodes are live."""
        nodes, _, health = self._counts
        table = self.query_one(AgentsTable)
        title = Text()
        title.append("All agents", style="bold")
        title.append(f" · {nodes} nodes · {fmt_health(health)}")
        if table.filter_text:
            title.append_text(safe_text(f" · {table.shown_count} shown (filter: {table.filter_text})"))
        update_steady(self.query_one("#all-agents-title", Static), title)
        set_border_title(self.query_one("#all-agents-panel"), f"Agents · {table.sort_description}")
        self._show_target()

    # --- what the keys act on --------------------------------------------------------------------------

    @property
    def link(self) -> NodeLink | None:
        """The node the action keys act on: the one the chosen agents are on, when that is one node. The
        app reads it too (palette actions, ctrl+z, Help's "off" reasons)."""
        nodes = self._chosen_nodes()
        return self.deck.links.get(nodes[0]) if len(nodes) == 1 else None

    def _chosen_nodes(self) -> list[str]:
        if not self.is_mounted:
            return []
        return sorted({node for node, _ in self.query_one(AgentsTable).chosen()})

    def _show_target(self) -> None:
        """Say on the panel's border which node the action keys act on (production is spelled out, since
        this screen mixes nodes and so is not framed as one), and re-check the keys when it changes."""
        nodes_count, live = self._counts[:2]
        parts = ["all nodes live" if live == nodes_count else f"{live}/{nodes_count} nodes live"]
        nodes = self._chosen_nodes()
        link = self.deck.links.get(nodes[0]) if len(nodes) == 1 else None
        if link is not None:
            production = " ⚠ PRODUCTION" if link.environment == "production" else ""
            parts.append(f"keys act on {link.name}{production}{' (read-only)' if link.read_only else ''}")
        elif nodes:
            parts.append(f"marked on {len(nodes)} nodes: act on one at a time")
        set_border_subtitle(self.query_one("#all-agents-panel"), " · ".join(parts))
        rights = (link.read_only, link.backend.capabilities) if link is not None else None
        if (nodes, rights) != self._acting_on:
            self._acting_on = (nodes, rights)
            self.refresh_bindings()  # the footer dims the keys the chosen node refuses

    @on(AgentsTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        self._show_target()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":
            return filter_binding_allowed(self)
        capability = ACTION_CAPABILITY.get(action)
        link = self.link if capability is not None else None
        if capability is None or link is None:
            return True  # with agents of several nodes chosen, the key runs and says why it will not act
        # None: shown, but disabled (dimmed) - the operator sees the key exists and is off
        return None if self.deck.actions.refusal(link, capability) else True

    def on_key(self, event: events.Key) -> None:
        """A disabled action key is not silent: it says why it is off (the binding itself never runs)."""
        active = self.app.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        capability = ACTION_CAPABILITY.get(active.binding.action)
        link = self.link
        if capability is not None and link is not None and self.deck.actions.refusal(link, capability):
            event.stop()
            self.deck.actions.explain_refusal(link, capability)

    def _target(self, verb: str) -> tuple[NodeLink, list[Agent]] | None:
        """The one node and the agents an action key acts on, or None (after saying why) when there is none.

        Marks that span several nodes are refused rather than acted on node by node: a confirmation, and a
        production node's typed name, covers one node; a chain of dialogs teaches confirming by reflex; the
        pause key decides pause-or-resume over all it is given, so per node it could pause here and resume
        there; a single agent's pause needs no confirmation, so one keypress would touch several nodes
        unasked; and undo (ctrl+z) and the audit trail are per node. Narrowing to one node is one filter away.
        """
        chosen = self.query_one(AgentsTable).chosen()
        nodes = sorted({node for node, _ in chosen})
        if not nodes:
            return None
        if len(nodes) > 1:
            self.notify(
                f"{verb}: the marked agents are on {len(nodes)} nodes ({', '.join(nodes)}); actions act on "
                "one node at a time. Filter by a node's name (/) or unmark (space) first.",
                title="not done",
                severity="warning",
                timeout=8,
            )
            return None
        return self.deck.links[nodes[0]], [agent for _, agent in chosen]

    def action_dispatch(self) -> None:
        if target := self._target("dispatch"):
            link, agents = target
            self.deck.actions.dispatch(link, agents[0] if len(agents) == 1 else None)

    def action_pause_resume(self) -> None:
        if target := self._target("pause/resume"):
            self.deck.actions.pause_toggle(*target)

    def action_stop_agents(self) -> None:
        if target := self._target("stop"):
            self.deck.actions.stop(*target)

    def action_checkpoint(self) -> None:
        if target := self._target("checkpoint"):
            self.deck.actions.checkpoint(target[0])

    def action_rollback(self) -> None:
        if target := self._target("rollback"):
            self.deck.actions.rollback(target[0])

    # --- navigation, filter, sort, marks ---------------------------------------------------------------

    def action_open_agent(self) -> None:
        row = self.query_one(AgentsTable).row_at_cursor()
        if row is not None:
            self.navigate(OpenAgent(self.deck.links[row[0]], row[1].id))

    def on_row_table_row_selected(self, event: AgentsTable.RowSelected) -> None:
        if isinstance(event.table, AgentsTable):
            self.action_open_agent()

    def action_logs(self) -> None:
        row = self.query_one(AgentsTable).row_at_cursor()
        if row is None:
            self.navigate(OpenLogs(node=None))
        else:
            self.navigate(OpenLogs(node=row[0], source=row[1].id))

    def action_filter(self) -> None:
        self.query_one("#filter", FilterBox).open()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(AgentsTable).set_filter(event.value)
        self._show_summary()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        box = self.query_one("#filter", FilterBox)
        table = self.query_one(AgentsTable)
        if box.value:
            self.set_focus(table)  # the box stays on screen: it says what the table leaves out
        else:
            box.close(clear=False, focus=table)

    def action_back(self) -> None:
        box = self.query_one("#filter", FilterBox)
        if box.is_open:
            box.close(clear=True, focus=self.query_one(AgentsTable))
            return
        self.app.pop_screen()

    def action_mark(self) -> None:
        self.query_one(AgentsTable).toggle_mark()
        self._show_target()

    @on(AgentsTable.SortChanged)
    def _sorted_by_header(self) -> None:
        self._show_summary()

    def action_sort(self) -> None:
        self.query_one(AgentsTable).cycle_sort()
        self._show_summary()

    def action_reverse_sort(self) -> None:
        table = self.query_one(AgentsTable)
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)
        self._show_summary()
