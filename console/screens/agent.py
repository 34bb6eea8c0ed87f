"""Agent detail: every field of one agent, its GPU processes, its KPIs (each with its threshold, state
and trend), and its own log lines.

Each value is what the agent or its node reported, so each cell is a ``safe_text`` (a plain string in a Rich
table would be parsed as markup: an agent's message holding ``[/]`` would not even render).
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from backends.model import Agent, NodeSnapshot
from console.context import DeckContext
from console.core.node_link import NodeLink
from console.messages import OpenLogs
from widgets.agent_source import agent_source
from widgets.agents_table import HEALTH_STYLE, STATE_STYLE
from widgets.format import NA, fmt_ago, fmt_bytes, fmt_fraction, fmt_number
from widgets.key_footer import KeyFooter
from widgets.kpi_list import KpiList
from widgets.log_view import LogFilter, LogView
from widgets.node_header import NodeHeader
from widgets.safe import safe_text
from widgets.steady import set_border_subtitle, set_border_title, update_steady

from .action_keys import ACTION_BINDINGS, ActionKeys
from .base import FleetDeckScreen
from .kpi_judging import agent_lines


def agent_table(agent: Agent, snapshot: NodeSnapshot, now: float) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    symbol, style = HEALTH_STYLE.get(agent.health, ("?", ""))
    health = safe_text(f"{symbol} {agent.health}", style=style)
    if agent.health_reason:
        health.append_text(safe_text(f" — {agent.health_reason}"))
    # the id beside the name only where it says something more (a Ray actor's 32 hex digits)
    named = agent.name if agent.name == agent.id else f"{agent.name} ({agent.id})"
    table.add_row("Agent", safe_text(named, style="bold"))
    table.add_row("Kind", safe_text(agent.kind))
    table.add_row("Source", safe_text(agent_source(agent)))
    table.add_row("State", safe_text(agent.state, style=STATE_STYLE.get(agent.state, "")))
    table.add_row("Health", health)
    table.add_row("Heartbeat", fmt_ago(agent.last_heartbeat, now))
    table.add_row("Started", fmt_ago(agent.started_at, now))
    table.add_row("Restarts", str(agent.restarts))
    table.add_row("PID", NA if agent.pid is None else str(agent.pid))
    table.add_row("CPU / RSS", f"{fmt_number(agent.cpu_percent, '%', 1)} / {fmt_bytes(agent.rss_bytes)}")
    gpu_procs = [(g.index, p) for g in snapshot.gpus for p in g.processes if p.agent_id == agent.id]
    gpu_text = fmt_bytes(agent.gpu_mem_bytes)
    if gpu_procs:
        gpu_text += (
            "  (" + ", ".join(f"GPU {i}: pid {p.pid} {fmt_bytes(p.used_memory)}" for i, p in gpu_procs) + ")"
        )
    table.add_row("GPU memory", gpu_text)
    table.add_row("Phase", phase_cell(agent, snapshot))
    table.add_row("Task", safe_text(agent.current_task or NA))
    table.add_row("Progress", fmt_fraction(agent.progress))
    table.add_row("Message", safe_text(agent.message or NA, multiline=True))  # the detail has room for lines
    table.add_row("Labels", safe_text(", ".join(f"{k}={v}" for k, v in sorted(agent.labels.items())) or NA))
    return table


def phase_cell(agent: Agent, snapshot: NodeSnapshot) -> Text:
    """The agent's phase by name; one that ended badly says how, with its cause: a Ray actor's phase is the
    job that made it, and when that job failed, its cause is what explains the actor too."""
    phase = next((p for p in snapshot.phases if p.id == agent.phase_id), None)
    if phase is None:
        return safe_text(agent.phase_id or NA)
    cell = safe_text(phase.name)
    if phase.status in ("failed", "stopped"):
        style = "bold red" if phase.status == "failed" else "yellow"
        cell.append_text(safe_text(f" — {phase.status}", style=style))
        if phase.status_reason:
            cell.append_text(safe_text(f": {phase.status_reason}"))
    return cell


# the footer's keys, most important first: at 80 columns it shows what fits (Help lists them all)
FOOTER_ORDER = (
    "help",
    "back",
    "pause",
    "stop",
    "dispatch",
    "logs",
    "rollback",
    "checkpoint",
    "follow",
    "palette",
    "audit",
    "quit",
    "theme",
)


class AgentScreen(ActionKeys, FleetDeckScreen):
    DEFAULT_CSS = """
    AgentScreen #detail-panel { height: auto; max-height: 75%; }
    AgentScreen #agent-kpis-panel { height: auto; max-height: 35%; }
    AgentScreen.-with-kpis #detail-panel { max-height: 45%; }  /* room left for its logs */
    AgentScreen #agent-kpis-panel.-none { display: none; }
    AgentScreen #detail { padding: 0 1; }
    AgentScreen #agent-logs-panel { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("l", "logs", "Logs", id="logs", tooltip="This agent's logs, full screen"),
        Binding("f", "toggle_follow", "Follow", id="follow"),
        *ACTION_BINDINGS,
    ]

    def __init__(self, deck: DeckContext, link: NodeLink, agent_id: str) -> None:
        super().__init__(deck)
        self.link = link
        self.agent_id = agent_id
        self.set_class(link.environment == "production", "-production")

    def compose(self) -> ComposeResult:
        yield NodeHeader()
        name = self._agent_name()
        with VerticalScroll(id="detail-panel", classes="panel") as panel:
            set_border_title(panel, f"Agent {name}")
            yield Static(id="detail")
        with VerticalScroll(id="agent-kpis-panel", classes="panel -none") as kpis:
            set_border_title(kpis, f"KPIs of {name}")
            yield KpiList(id="agent-kpis")
        with Vertical(id="agent-logs-panel", classes="panel") as logs:
            set_border_title(logs, f"Logs of {name}")
            view = LogView(id="agent-logs")
            view.filter = LogFilter(source=self.agent_id)
            yield view
        yield KeyFooter(order=FOOTER_ORDER)

    def _agent_name(self) -> str:
        """The agent's name where the node has it (a Ray actor's id is 32 hex digits), else its id."""
        snapshot = self.link.snapshot
        agent = next((a for a in snapshot.agents if a.id == self.agent_id), None) if snapshot else None
        return agent.name if agent is not None and agent.name else self.agent_id

    def on_mount(self) -> None:
        self.node_updated(self.link)
        self.logs_arrived()

    def node_updated(self, link: NodeLink) -> None:
        if link is not self.link or not self.is_mounted:
            return
        self.sync_node_identity()
        kind, text = self.freshness(link)
        self.grey_if_old(link, kind)
        self.query_one(NodeHeader).show(
            link.name, link.environment, link.snapshot, link.read_only, kind, text
        )
        for panel in self.query(".panel"):
            set_border_subtitle(panel, text)
        snap = link.snapshot
        agent = next((a for a in snap.agents if a.id == self.agent_id), None) if snap else None
        detail = self.query_one("#detail", Static)
        kpis = self.query_one("#agent-kpis-panel")
        if snap is None or agent is None:
            gone = f"agent {self.agent_id!r} is not on node {link.name} any more"
            detail.update(safe_text(gone, style="bold"))
            kpis.set_class(True, "-none")
            return
        update_steady(detail, agent_table(agent, snap, self.deck.clock()))
        kpis.set_class(not agent.kpis, "-none")  # an agent that reports none: no empty panel
        self.set_class(bool(agent.kpis), "-with-kpis")
        self.query_one(KpiList).show(agent_lines(link, agent))

    def logs_arrived(self) -> None:
        if not self.is_mounted:
            return
        view = self.query_one(LogView)
        view.write_records(self.link.name, self.link.logs_since(view.last_seq.get(self.link.name, 0)))

    def chosen_agents(self) -> list[Agent]:
        snapshot = self.link.snapshot
        agent = next((a for a in snapshot.agents if a.id == self.agent_id), None) if snapshot else None
        return [agent] if agent is not None else []

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_logs(self) -> None:
        self.navigate(OpenLogs(node=self.link.name, source=self.agent_id))

    def action_toggle_follow(self) -> None:
        view = self.query_one(LogView)
        view.follow = not view.follow
        self.notify(f"log follow {'on' if view.follow else 'off'}", timeout=2)
