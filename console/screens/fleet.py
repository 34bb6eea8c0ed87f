"""The Fleet screen: every configured node at a glance, worst first, and what needs attention."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Static

from console.alerts import Alert, node_alerts, sort_alerts
from console.node_link import NodeLink
from widgets.fleet_table import FleetRow, FleetTable

from .base import FleetDeckScreen


def attention_text(alerts: list[Alert], limit: int = 50) -> Text:
    if not alerts:
        return Text("✔ nothing needs attention", style="green")
    text = Text()
    for alert in alerts[:limit]:
        style = "bold red" if alert.severity == "critical" else "yellow"
        mark = "✖ CRIT" if alert.severity == "critical" else "▲ WARN"
        text.append(f"{mark} ", style=style)
        text.append(f"{alert.node} ", style="bold")
        text.append(f"{alert.subject}  ", style="")
        text.append(alert.reason + "\n", style="dim" if alert.severity == "warning" else "")
    if len(alerts) > limit:
        text.append(f"… and {len(alerts) - limit} more", style="dim")
    text.rstrip()
    return text


class FleetScreen(FleetDeckScreen):
    DEFAULT_CSS = """
    FleetScreen #nodes-panel { height: auto; max-height: 60%; }
    FleetScreen #attention-panel { height: 1fr; }
    FleetScreen #fleet-title { height: 1; background: $panel; padding: 0 1; }
    FleetScreen #attention { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    BINDINGS = [
        Binding("enter", "open_node", "Open node", id="open", tooltip="Open the selected node"),
        Binding("l", "logs", "All logs", id="logs", tooltip="Every node's logs, merged in time order"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title")
        with Vertical(id="nodes-panel", classes="panel") as nodes:
            nodes.border_title = "Nodes"
            yield FleetTable()
        with VerticalScroll(id="attention-panel", classes="panel") as attention:
            attention.border_title = "Attention"
            yield Static(id="attention")
        yield Footer()

    def on_mount(self) -> None:
        self.node_updated(next(iter(self.deck.links.values())))
        self.query_one(FleetTable).focus()

    def node_updated(self, link: NodeLink) -> None:
        if not self.is_mounted:
            return
        now = self.deck.clock()
        rows: list[FleetRow] = []
        all_alerts: list[Alert] = []
        for node in self.deck.links.values():
            alerts = node_alerts(node.snapshot, self.deck.thresholds, now) if node.snapshot else []
            all_alerts.extend(alerts)
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
        agents = [a for n in self.deck.links.values() if n.snapshot for a in n.snapshot.agents]
        healthy = sum(1 for a in agents if a.health == "healthy")
        gpus = sum(len(n.snapshot.gpus) for n in self.deck.links.values() if n.snapshot)
        title = Text()
        title.append("fleetdeck", style="bold")
        title.append(f"  {len(rows)} nodes · {healthy}/{len(agents)} agents healthy · {gpus} GPUs", style="")
        self.query_one("#fleet-title", Static).update(title)
        ordered = sort_alerts(all_alerts)
        self.query_one("#attention", Static).update(attention_text(ordered))
        crit = sum(1 for a in ordered if a.severity == "critical")
        self.query_one(
            "#attention-panel"
        ).border_title = f"Attention · {crit} critical · {len(ordered) - crit} warning"

    def action_open_node(self) -> None:
        name = self.query_one(FleetTable).node_at_cursor()
        if name is not None:
            self.deck.open_node(self.deck.links[name])

    def on_data_table_row_selected(self, event: FleetTable.RowSelected) -> None:
        self.action_open_node()

    def action_logs(self) -> None:
        self.deck.open_logs(node=None)
