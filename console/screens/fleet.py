"""The Fleet screen: every configured node at a glance, worst first, and what needs attention."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from backends.model import health_count
from console.core.node_link import NodeLink
from console.messages import OpenAllAgents, OpenLogs, OpenNode
from widgets.fleet_table import FleetRow, FleetTable
from widgets.format import fmt_health
from widgets.key_footer import KeyFooter
from widgets.steady import update_steady

from .action_keys import ACTION_BINDINGS, ACTION_CAPABILITY
from .attention import AttentionHandlers, attention_panel_body, fill_attention
from .base import FleetDeckScreen
from .coalesce import CoalescedRepaint

# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = ("help", "open", "all_agents", "logs", "audit", "palette", "theme", "quit")


class FleetScreen(CoalescedRepaint, AttentionHandlers, FleetDeckScreen):
    DEFAULT_CSS = """
    FleetScreen #nodes-panel { height: auto; max-height: 60%; }
    FleetScreen #attention-panel { height: 1fr; }
    FleetScreen #fleet-title { height: 1; background: $panel; padding: 0 1; }
    FleetScreen .attention-empty { color: $success; padding: 0 1; }
    """

    BINDINGS = [
        Binding("enter", "open_node", "Open node", id="open", tooltip="Open the selected node"),
        Binding("l", "logs", "All logs", id="logs", tooltip="Every node's logs, merged in time order"),
        # "0" as in k9s (all namespaces); "A" would clash with the Attention panel's acknowledge
        Binding("0", "all_agents", "All agents", id="all_agents", tooltip="Every node's agents in one table"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title")
        with Vertical(id="nodes-panel", classes="panel") as nodes:
            nodes.border_title = "Nodes"
            yield FleetTable()
        with Vertical(id="attention-panel", classes="panel") as attention:
            attention.border_title = "Attention"
            yield from attention_panel_body("attention", node_column=True)
        yield KeyFooter(order=FOOTER_ORDER)

    AUTO_FOCUS = "FleetTable"  # the keys act on the nodes from the first frame

    def on_mount(self) -> None:
        if not self.covered():  # else painted when it is first shown
            self.repaint_now()

    def on_key(self, event: events.Key) -> None:
        """The action keys act on one node's agents, so they are not bound here; pressed, they say where
        they work (or, on a node whose actions are off, why they are off) rather than nothing at all."""
        if event.key in self.app.active_bindings:
            return  # a key this screen or a panel of it does use
        action = next((b for b in ACTION_BINDINGS if _pressed(event, self._keys_of(b.id))), None)
        if action is None:
            return
        event.stop()
        capability = ACTION_CAPABILITY[action.action]
        name = self.query_one(FleetTable).node_at_cursor()
        link = self.deck.links.get(name) if name is not None else None
        if link is not None and self.deck.actions.explain_refusal(link, capability):
            return
        self.notify(f"{capability}: open a node first (enter), or every node's agents (0)", timeout=4)

    def _keys_of(self, binding_id: str | None) -> list[str]:
        """The keys a Node screen action is bound to, the config's rebinding applied."""
        rows = self.deck.key_help()
        return [
            k for r in rows if r.context == "node" and r.action_id == binding_id for k in r.keys.split(", ")
        ]

    def repaint(self) -> None:
        # every node, whichever reported: at 100 nodes this runs twice a second, not 100 times (coalesce.py)
        if not self.is_mounted:
            return
        rows: list[FleetRow] = []
        for node in self.deck.links.values():
            # all that fires, acknowledged or not: the table tells a node's condition, not who is on it
            alerts = self.deck.alert_book.active(node.name)
            kind, text = self.freshness(node)
            rows.append(
                FleetRow(
                    name=node.name,
                    environment=node.environment,
                    freshness=kind,
                    freshness_text=text,
                    snapshot=node.snapshot,
                    warnings=sum(1 for a in alerts if a.severity == "warning"),
                    criticals=sum(1 for a in alerts if a.severity == "critical"),
                )
            )
        # worst first: an unreachable node, then critical, then warning; by name within each
        rows.sort(key=lambda r: (r.freshness != "offline", -r.criticals, -r.warnings, r.name))
        self.query_one(FleetTable).show(rows)
        count = health_count(a for n in self.deck.links.values() if n.snapshot for a in n.snapshot.agents)
        gpus = sum(len(n.snapshot.gpus) for n in self.deck.links.values() if n.snapshot)
        title = Text()
        title.append("fleetdeck", style="bold")
        title.append(f"  {len(rows)} nodes · {fmt_health(count, 'agents')} · {gpus} GPUs", style="")
        update_steady(self.query_one("#fleet-title", Static), title)
        self.refresh_attention()

    def refresh_attention(self) -> None:
        panel = self.query_one("#attention-panel")
        fill_attention(panel, self.deck.alert_book, self.deck.clock(), links=self.deck.links)

    def show_node_tab(self, link: NodeLink, tab: str) -> None:
        self.navigate(OpenNode(link, tab))

    def action_open_node(self) -> None:
        name = self.query_one(FleetTable).node_at_cursor()
        if name is not None:
            self.navigate(OpenNode(self.deck.links[name]))

    def on_row_table_row_selected(self, event: FleetTable.RowSelected) -> None:
        self.action_open_node()

    def action_logs(self) -> None:
        self.navigate(OpenLogs(node=None))

    def action_all_agents(self) -> None:
        self.navigate(OpenAllAgents())


def _pressed(event: events.Key, keys: list[str]) -> bool:
    # Help spells keys as they are shown ("?"), Textual by name ("question_mark"): either matches
    return event.key in keys or (event.character is not None and event.character in keys)
