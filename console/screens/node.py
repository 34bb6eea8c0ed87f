"""The Node screen: one node's agents, GPUs, host, plan, logs, alerts and KPIs.

With room (>= 120x32) the panels share the screen; below that they become tabs, so every panel stays usable
at 80x24. The layout is rebuilt on resize; the data lives in the NodeLink, so nothing is lost.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Static, TabbedContent, TabPane

from backends.model import Agent, NodeSnapshot, health_count
from console.context import DeckContext
from console.core.node_link import NodeLink
from console.messages import OpenAgent, OpenLogs
from widgets.agents_table import AgentsTable
from widgets.filter_box import FilterBox
from widgets.format import fmt_health
from widgets.gpu_panel import GpuPanel
from widgets.host_panel import HostPanel
from widgets.key_footer import KeyFooter
from widgets.kpi_panel import KpiPanel
from widgets.log_view import LogView
from widgets.node_header import NodeHeader
from widgets.phase_board import PhaseBoard
from widgets.safe import safe_content
from widgets.steady import set_border_subtitle, set_border_title, update_steady

from .action_keys import ACTION_BINDINGS, ActionKeys
from .attention import AttentionHandlers, attention_panel_body, fill_attention
from .base import FleetDeckScreen, filter_binding, filter_binding_allowed
from .kpi_judging import fleet_summaries, set_table_headline

WIDE_MIN = (140, 36)  # columns, rows: below this the side panels are too narrow to read
# what an empty node shows instead of an empty table: the next thing to type, for the kind of node it is
EMPTY_NODE_HINTS = {
    "local": (
        "No agents on this node yet.\n\n"
        "  Start one:    fleetdeck run --name NAME -- CMD ARGS...\n"
        "  Or report:    fleetdeck report --agent NAME --state running\n"
        "  Load a plan:  fleetdeck plan apply FILE.toml   (see examples/plan.toml)"
    ),
    "ray": (
        "No actors on this Ray cluster yet.\n\n"
        '  Submit a job:  fleetdeck dispatch --node {node} --command "CMD"\n'
        "  (press d here to do the same)"
    ),
}
EMPTY_NODE_HINT_OTHER = "No agents reported by this node yet."


def empty_node_hint(link: NodeLink) -> str:
    """What to type next on an empty node; a served node says which backend it serves in its labels."""
    info = link.backend.info
    kind = info.labels.get("served_backend", info.backend)
    return EMPTY_NODE_HINTS.get(kind, EMPTY_NODE_HINT_OTHER).replace("{node}", link.name)


TAB_TITLES = {
    "agents": "Agents", "gpus": "GPUs", "host": "Host", "plan": "Plan", "logs": "Logs", "alerts": "Alerts",
    "kpis": "KPIs",
}  # fmt: skip
TABS = tuple(TAB_TITLES)


def is_wide(width: int, height: int) -> bool:
    return width >= WIDE_MIN[0] and height >= WIDE_MIN[1]


# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = (
    "help",
    "filter",
    "pause",
    "stop",
    "dispatch",
    "logs",
    "rollback",
    "checkpoint",
    "back",
    "palette",
    "follow",
    "sort",
    "audit",
    "quit",
    "theme",
)


class NodeScreen(ActionKeys, AttentionHandlers, FleetDeckScreen):
    DEFAULT_CSS = """
    NodeScreen #agents-empty { display: none; padding: 1 2; color: $text-muted; height: auto; }
    NodeScreen #agents-empty.-shown { display: block; }
    NodeScreen #agents-empty.-offline { padding: 0 1; color: $error; }
    NodeScreen #wide-left { width: 3fr; }
    NodeScreen #wide-right { width: 2fr; }
    NodeScreen #agents-panel { height: 3fr; }
    NodeScreen #logs-panel { height: 2fr; }
    NodeScreen #gpus-panel { height: 1fr; }
    NodeScreen #host-panel { height: auto; }
    NodeScreen #plan-panel { height: 1fr; }
    NodeScreen #wide-right #kpis-panel { height: auto; max-height: 16; }
    NodeScreen #wide-right #kpis-panel > VerticalScroll { height: auto; }
    NodeScreen #wide-left #alerts-panel { height: auto; max-height: 9; }
    NodeScreen .attention-empty { color: $success; padding: 0 1; }
    NodeScreen TabbedContent { height: 1fr; }
    NodeScreen TabPane { padding: 0; }
    """

    BINDINGS = [
        filter_binding("Filter agents by name, role, state, health"),
        Binding("enter", "open_agent", "Agent", id="open", show=False, tooltip="Open the selected agent"),
        Binding("l", "logs", "Logs", id="logs", tooltip="This node's logs, full screen"),
        Binding("f", "toggle_follow", "Follow", id="follow", tooltip="Follow the log pane on/off"),
        Binding("o", "sort", "Sort", id="sort", tooltip="Sort agents by the next column"),
        Binding("O", "reverse_sort", "Reverse", id="reverse_sort", show=False, tooltip="Reverse the sort"),
        Binding("escape", "back", "Back", id="back", tooltip="Clear the filter, or back to the fleet"),
        Binding("space", "mark", "Mark", id="mark", show=False, tooltip="Mark the agent for a bulk action"),
        *ACTION_BINDINGS,
        *(
            Binding(str(i + 1), f"tab('{name}')", f"{TAB_TITLES[name]} tab", id=f"tab_{name}", show=False)
            for i, name in enumerate(TABS)
        ),
    ]

    wide: reactive[bool] = reactive(False, recompose=True)
    # The panel on show has the keys from the first frame: typed before the layout settles, they must act
    # there, never in the hidden filter (the first focusable widget in the DOM).
    AUTO_FOCUS = ".-focus-first *"

    def __init__(self, deck: DeckContext, link: NodeLink) -> None:
        super().__init__(deck)
        self.link = link
        self.filter_text = ""
        self.sort: tuple[str, bool] = ("health", False)
        self.active_tab = "agents"
        self.set_class(link.environment == "production", "-production")
        # the config's thresholds, handed to the panels they colour once, when they are built
        self._gpu_temp = deck.threshold("gpu_temp_c")
        self._host_mem = deck.threshold("host_mem_percent")

    # --- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self.set_reactive(NodeScreen.wide, is_wide(*self.app.size))
        yield NodeHeader()
        yield FilterBox(
            placeholder="filter agents: name, role, state, health…  (enter keeps, esc clears)",
            id="filter",
            value=self.filter_text,
            classes="-open" if self.filter_text else "",
        )
        if self.wide:
            with Horizontal():
                with Vertical(id="wide-left"):
                    yield self._panel("agents", AgentsTable(id="agents"))
                    yield self._panel("alerts", *attention_panel_body("alerts", node_column=False))
                    yield self._panel("logs", LogView(id="logs"))
                with Vertical(id="wide-right"):
                    yield self._panel("gpus", GpuPanel(id="gpus", temp_levels=self._gpu_temp))
                    yield self._panel("host", HostPanel(id="host", mem_levels=self._host_mem))
                    yield self._panel("kpis", VerticalScroll(KpiPanel(id="kpis")))
                    yield self._panel("plan", VerticalScroll(PhaseBoard(id="plan")))
        else:
            with TabbedContent(initial=self.active_tab, id="tabs"):
                with TabPane("1 Agents", id="agents"):
                    yield self._panel("agents", AgentsTable(id="agents-table"))
                with TabPane("2 GPUs", id="gpus"):
                    yield self._panel("gpus", GpuPanel(id="gpus-body", temp_levels=self._gpu_temp))
                with TabPane("3 Host", id="host"):
                    yield self._panel("host", HostPanel(id="host-body", mem_levels=self._host_mem))
                with TabPane("4 Plan", id="plan"):
                    yield self._panel("plan", VerticalScroll(PhaseBoard(id="plan-body")))
                with TabPane("5 Logs", id="logs"):
                    yield self._panel("logs", LogView(id="logs-body"))
                with TabPane("6 Alerts", id="alerts"):
                    yield self._panel("alerts", *attention_panel_body("alerts-body", node_column=False))
                with TabPane("7 KPIs", id="kpis"):
                    yield self._panel("kpis", VerticalScroll(KpiPanel(id="kpis-body")))
        yield KeyFooter(order=FOOTER_ORDER)

    def _panel(self, name: str, *body: Widget) -> Vertical:
        children = list(body)
        if name == "agents":
            children.insert(0, Static(id="agents-empty"))  # its text: _show_note, on update
        classes = "panel"
        if name == ("agents" if self.wide else self.active_tab):
            classes += " -focus-first"  # see AUTO_FOCUS
        panel = Vertical(*children, id=f"{name}-panel", classes=classes)
        panel.border_title = TAB_TITLES[name]
        return panel

    def on_mount(self) -> None:
        self._after_layout()

    def on_resize(self) -> None:
        wide = is_wide(*self.app.size)
        if wide != self.wide:
            self.wide = wide
            self.call_after_refresh(self._after_layout)

    def _after_layout(self) -> None:
        table = self.query_one(AgentsTable)
        table.sort_column, table.sort_reverse = self.sort
        table.filter_text = self.filter_text
        log_view = self.query_one(LogView)
        log_view.clear()
        self.node_updated(self.link)
        self.logs_arrived()
        # Focusing a widget in a hidden tab would switch to that tab: focus what the chosen tab shows.
        self._focus_panel("agents" if self.wide else self.active_tab)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.active_tab = event.pane.id or "agents"
        self.node_updated(self.link)  # hidden tabs were not updated while hidden
        self.logs_arrived()

    def _visible(self, panel: str) -> bool:
        return self.wide or self.active_tab == panel

    # --- data ------------------------------------------------------------------------------------------

    def node_updated(self, link: NodeLink) -> None:
        if link is not self.link or not self.is_mounted:
            return
        self.sync_node_identity()
        kind, text = self.freshness(link)
        self.grey_if_old(link, kind)
        snap = link.snapshot
        self.query_one(NodeHeader).show(link.name, link.environment, snap, link.read_only, kind, text)
        for panel in self.query(".panel"):
            set_border_subtitle(panel, text)
        self.refresh_attention()  # before the snapshot check: an unreachable node has alerts too
        if self._visible("agents"):
            self._show_note(link, snap, kind, text)
        if snap is None:
            return
        now = self.deck.clock()
        table = self.query_one(AgentsTable)
        if self._visible("agents"):
            set_table_headline(table, {link.name: link}, self.deck.headline_kpi, snap.agents)
            table.display = bool(snap.agents)
            table.show([(link.name, a) for a in snap.agents], now)
            health = fmt_health(health_count(snap.agents))
            shown = f" · {table.shown_count} shown (filter: {self.filter_text})" if self.filter_text else ""
            set_border_title(
                self.query_one("#agents-panel"), f"Agents {health}{shown} · {table.sort_description}"
            )
        if self._visible("gpus"):
            self.query_one(GpuPanel).show(snap.gpus, snap.gpu_status, link.gpu_history)
        if self._visible("host"):
            self.query_one(HostPanel).show(snap.system, link.cpu_history, link.mem_history)
        if self._visible("plan"):
            self.query_one(PhaseBoard).show(snap.phases, now)
        if self._visible("kpis"):
            summaries = fleet_summaries(link, snap.agents)
            self.query_one(KpiPanel).show(summaries)
            if self.wide:  # a node whose agents report no KPI (a Ray job, a plain process) lends the room
                self.query_one("#kpis-panel").display = bool(summaries)

    def _show_note(self, link: NodeLink, snap: NodeSnapshot | None, kind: str, text: str) -> None:
        """Above the agents: why a node is offline, whole (the header and the panels' borders have room for
        the start of it only), or what to type next on a node with no agents."""
        note = self.query_one("#agents-empty", Static)
        if kind == "offline":
            held = "its last data below, greyed" if snap is not None and snap.agents else "no data yet"
            words = f"{link.name} is {text}\n({held}; it reconnects by itself)"
        elif snap is not None and not snap.agents:  # a remote node says what it serves only once connected
            words = empty_node_hint(link)
        else:
            words = ""
        note.set_class(bool(words), "-shown")
        note.set_class(kind == "offline", "-offline")
        if words:
            update_steady(note, safe_content(words, multiline=True))

    def refresh_attention(self) -> None:
        book, now, name = self.deck.alert_book, self.deck.clock(), self.link.name
        if not self.wide:  # the tab says how many alerts are open, so they are seen from every tab
            critical, warning = book.counts(name, now)
            counts = (f" ✖{critical}" if critical else "") + (f" ▲{warning}" if warning else "")
            tab = self.query_one(TabbedContent).get_tab("alerts")
            if tab.label_text != f"6 Alerts{counts}":
                tab.label = f"6 Alerts{counts}"
        if self._visible("alerts"):
            panel = self.query_one("#alerts-panel")
            fill_attention(panel, book, now, name, label="Alerts", links=self.deck.links)

    def show_node_tab(self, link: NodeLink, tab: str) -> None:
        if not self.wide:
            self.action_tab(tab)
            return
        # Wide: every panel is on screen already; moving the focus there marks it (and scrolls the plan).
        self._focus_panel(tab)

    def _focus_panel(self, name: str) -> None:
        """Focus the first focusable widget of panel ``name``, if it has one."""
        target = next((w for w in self.query_one(f"#{name}-panel").query("*") if w.focusable), None)
        if target is not None:
            self.set_focus(target)  # now, so the next key already goes there

    def logs_arrived(self) -> None:
        if not self.is_mounted or not self._visible("logs"):
            return
        view = self.query_one(LogView)
        view.write_records(self.link.name, self.link.logs_since(view.last_seq.get(self.link.name, 0)))
        follow = "following" if view.follow else "paused (f to follow)"
        set_border_title(self.query_one("#logs-panel"), f"Logs · {view.filter.describe()} · {follow}")

    # --- actions ---------------------------------------------------------------------------------------

    def action_filter(self) -> None:
        if not self.wide and self.active_tab != "agents":
            self.query_one(TabbedContent).active = "agents"  # the filter narrows agents: show them
        self.query_one("#filter", FilterBox).open()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and not filter_binding_allowed(self):
            return False
        return super().check_action(action, parameters)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.query_one(AgentsTable).set_filter(event.value)
        self.node_updated(self.link)

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
        if len(self.deck.links) > 1:
            self.app.pop_screen()

    def chosen_agents(self) -> list[Agent]:
        return self.query_one(AgentsTable).chosen_agents()

    def action_mark(self) -> None:
        self.query_one(AgentsTable).toggle_mark()

    def action_open_agent(self) -> None:
        agent = self.query_one(AgentsTable).agent_at_cursor()
        if agent is not None:
            self.navigate(OpenAgent(self.link, agent.id))

    def action_logs(self) -> None:
        self.navigate(OpenLogs(node=self.link.name))

    def action_toggle_follow(self) -> None:
        view = self.query_one(LogView)
        view.follow = not view.follow
        self.logs_arrived()
        self.notify(f"log follow {'on' if view.follow else 'off'}", timeout=2)

    def action_sort(self) -> None:
        table = self.query_one(AgentsTable)
        table.cycle_sort()
        self.sort = (table.sort_column, table.sort_reverse)
        self.node_updated(self.link)

    def action_reverse_sort(self) -> None:
        table = self.query_one(AgentsTable)
        table.sort_by(table.sort_column, reverse=not table.sort_reverse)
        self.sort = (table.sort_column, table.sort_reverse)
        self.node_updated(self.link)

    def action_tab(self, name: str) -> None:
        if not self.wide:
            self.query_one(TabbedContent).active = name
            self._focus_panel(name)  # keys then act on what the tab shows, not on a hidden table

    def on_row_table_row_selected(self, event: AgentsTable.RowSelected) -> None:
        if isinstance(event.table, AgentsTable):
            self.action_open_agent()
