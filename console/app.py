"""The fleetdeck App: wires nodes (NodeLinks over backends) to screens, runs the polling and log workers,
and owns the things every screen shares: the clock, thresholds, themes, keys and the command palette.

Attributes go down, messages come up: each screen is handed a DeckContext (console/context.py) and sends
the messages of console/messages.py for what only the app does (open a screen, repaint after an action).

Polling and log streaming run in workers; the UI thread only copies finished snapshots into widgets. A slow
node is bounded by a timeout and never holds up another node or the screen.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker

from console import messages
from console.context import DeckContext
from console.core.alert_book import AlertBook
from console.core.alert_book import default_path as alert_book_path
from console.core.alerts import link_alerts
from console.core.config import Config
from console.core.describe_error import describe_error
from console.core.node_link import NodeLink
from console.core.start_screens import StartScreen
from console.keys import KeyHelp, key_help, keymap_in_force, normalised_keymap
from console.operator import Operator
from console.safe_notify import SafeNotifyApp
from console.screens.agent import AgentScreen
from console.screens.all_agents import AllAgentsScreen
from console.screens.audit import AuditScreen
from console.screens.base import FleetDeckScreen
from console.screens.fleet import FleetScreen
from console.screens.help import HelpScreen
from console.screens.logs import LogsScreen
from console.screens.node import NodeScreen
from themes import DEFAULT_THEME, fleetdeck_variables, load_themes
from widgets.attention import AttentionList
from widgets.safe import safe_markup

# Help lists the keys in force: the keymap the app applied (App has no public getter for it).
TEXTUAL_PRIVATE_PARTS = ("textual.app.App._keymap",)
LOG_FLUSH_S = 0.1  # batch log lines into the panes ten times a second, never line by line
GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)
LOG_RETRY_S = (1.0, 30.0)  # backoff bounds for a log stream that dropped


class FleetDeckApp(SafeNotifyApp):  # every notification shown as plain, terminal-safe text
    TITLE = "fleetdeck"
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "ctrl+p"
    # Shared by every screen: panels are framed and titled; a production node's screens are framed in
    # the theme's danger colour whatever the theme, so nobody forgets where they are.
    CSS = """
    Screen { background: $background; }
    Screen.-production { border: heavy $fleetdeck-danger; }
    .panel {
        border: round $primary 40%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
    }
    .panel:focus-within { border: round $accent; }
    """

    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key in force"),
        Binding(
            "colon,ctrl+p",
            "command_palette",
            "Palette",
            id="palette",
            show=False,
            tooltip="Command palette: nodes, fleet, logs, themes",
        ),
        Binding(
            "a",
            "audit",
            "Audit",
            id="audit",
            show=False,  # listed in Help and the palette; the 80-column footer has no room left
            tooltip="Audit trail: who did what, when, why, with what outcome",
        ),
        Binding("t", "cycle_theme", "Theme", id="theme", tooltip="Next colour theme"),
        Binding(
            "ctrl+z",
            "undo_rollback",
            "Undo rollback",
            id="undo_rollback",
            show=False,
            tooltip="Roll back to the safety checkpoint of the last rollback",
        ),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        links: Sequence[NodeLink],
        *,
        config: Config,
        clock: Callable[[], float],
        frozen: bool = False,
        theme: str | None = None,
        start_screen: StartScreen | None = None,
        user_themes_dir: Any = None,
        tune_gc: bool = False,
    ) -> None:
        super().__init__()
        if not links:
            raise ValueError("fleetdeck needs at least one node")
        self.links: dict[str, NodeLink] = {link.name: link for link in links}
        self.config = config
        self.actions = Operator(self, operator=config.operator, clock=clock, refresh_s=config.refresh_s)
        self.clock = clock
        self.frozen = frozen
        self.refresh_s = config.refresh_s
        self.thresholds = config.thresholds
        # Acks and snoozes outlive the console; a frozen (snapshot) app keeps them in memory, so the same
        # screen renders the same whatever an earlier run acknowledged.
        self.alert_book = AlertBook(None if frozen else alert_book_path(), clock)
        self.start_screen = start_screen
        # Only for a console that owns its process (the CLI): see _tune_gc. An app in a test run must not
        # pin its objects forever.
        self.tune_gc = tune_gc
        self._first_polls_due = set(self.links)
        self.theme_errors: list[str] = []
        themes, self.theme_errors = load_themes(user_themes_dir)
        for item in themes:
            self.register_theme(item)
        wanted = theme or config.theme or DEFAULT_THEME
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        if wanted not in self.available_themes:
            self.theme_errors.append(f"unknown theme {wanted!r}; using {DEFAULT_THEME}")
        # The checker's rules (`fleetdeck config check`): a rebinding that clashes is left out and said.
        keys, self.key_errors = keymap_in_force(binding_contexts(), normalised_keymap(config))
        if keys:
            self.set_keymap(keys)
        self.deck = DeckContext(
            links=self.links,
            clock=clock,
            alert_book=self.alert_book,
            thresholds=config.thresholds,
            refresh_s=config.refresh_s,
            frozen=frozen,
            actions=self.actions,
            key_help=self.key_help,
            send=self.send,
            headline_kpi=config.headline_kpi,
        )

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # The stylesheet is first built with Textual's default theme, before ours are registered:
        # derive fleetdeck's variables from whatever theme is current so every CSS rule resolves.
        return {**super().get_theme_variable_defaults(), **fleetdeck_variables(self.current_theme)}

    # --- start -----------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        for error in self.theme_errors:
            self.notify(error, title="theme", severity="warning", timeout=8)
        if self.key_errors:
            self.notify("\n".join(self.key_errors), title="keys", severity="warning", timeout=12)
        for link in self.links.values():  # links may come primed (frozen snapshots): judge them first
            self.update_alerts(link)
        self._open_start_screen()
        if self.frozen:
            return
        for index, link in enumerate(self.links.values()):
            # after the first poll (at once, for everyone), each node is polled at its own moment within
            # the refresh interval: a hundred nodes polled in the same instant block the screen for as
            # long as all their snapshots take together
            spread_s = self.refresh_s * index / len(self.links)
            self.run_worker(self._poll_loop(link, spread_s), group="poll", name=f"poll {link.name}")
        # Logs start once the first frame is on screen: reading a node's backlog can take a while, and the
        # operator wants to see the fleet first.
        self.call_after_refresh(self._start_logs)

    def _start_logs(self) -> None:
        for link in self.links.values():
            if link.backend.supports("logs"):
                self.run_worker(self._log_loop(link), group="logs", name=f"logs {link.name}")
        self.set_interval(LOG_FLUSH_S, self._flush_logs)

    def on_unmount(self) -> None:
        self.alert_book.flush()  # episodes changed in the last seconds (acks and snoozes are saved at once)

    def _open_start_screen(self) -> None:
        first = next(iter(self.links.values()))
        deck = self.deck
        self.push_screen(FleetScreen(deck) if len(self.links) > 1 else NodeScreen(deck, first))
        self._START_SCREENS[self.start_screen or "fleet"](self, first)

    def _start_on_node(self, first: NodeLink) -> None:
        if len(self.links) > 1:
            self.push_screen(NodeScreen(self.deck, first))

    def _start_on_agent(self, first: NodeLink) -> None:
        self._start_on_node(first)
        agent = self.worst_agent(first)
        if agent is not None:
            self.push_screen(AgentScreen(self.deck, first, agent))

    # what each start screen opens on top of the first one (Fleet, or the only node's Node screen)
    _START_SCREENS: dict[StartScreen, Callable[[FleetDeckApp, NodeLink], None]] = {
        "fleet": lambda app, first: None,
        "node": _start_on_node,
        "agent": _start_on_agent,
        "agents": lambda app, first: app.open_all_agents(),
        "logs": lambda app, first: app.open_logs(node=None if len(app.links) > 1 else first.name),
        "help": lambda app, first: app.action_help(),
        "audit": lambda app, first: app.action_audit(),
    }

    @staticmethod
    def worst_agent(link: NodeLink) -> str | None:
        """The agent an on-call responder would look at first: the least healthy, then by name."""
        if link.snapshot is None or not link.snapshot.agents:
            return None
        rank = {"unhealthy": 0, "degraded": 1, "unknown": 2, "healthy": 3}
        return min(link.snapshot.agents, key=lambda a: (rank.get(a.health, 2), a.name)).id

    # --- workers ---------------------------------------------------------------------------------------

    # The per-node loops are started with run_worker, not @work: their names say which node a worker
    # list or an error report is about.
    async def _poll_loop(self, link: NodeLink, spread_s: float) -> None:
        await link.poll(timeout=max(2.0, 3 * self.refresh_s))
        self._node_updated(link)
        self._polled_once(link)
        await self.actions.watch_rollback(link)
        await asyncio.sleep(spread_s)
        while True:
            await asyncio.sleep(self.refresh_s)
            await link.poll(timeout=max(2.0, 3 * self.refresh_s))
            self._node_updated(link)
            await self.actions.watch_rollback(link)

    def _polled_once(self, link: NodeLink) -> None:
        self._first_polls_due.discard(link.name)
        if self.tune_gc and not self._first_polls_due:
            _tune_gc()

    async def _log_loop(self, link: NodeLink) -> None:
        delay = LOG_RETRY_S[0]
        while True:
            try:
                # Hand each record to the link at once: a following stream blocks between records, so a
                # local batch would hold the newest lines back until it filled. The panes are still
                # written in batches, by the _flush_logs timer. Per record this is one append: a flood
                # brings thousands a second.
                add = link.add_log
                async for record in link.backend.logs(since_seq=link.last_seq, follow=True):
                    add(record)
                    delay = LOG_RETRY_S[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a stream may drop in any way; retry with backoff
                link.log_error = describe_error(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOG_RETRY_S[1])

    @on(messages.NodeRefreshed)
    def _action_done(self, message: messages.NodeRefreshed) -> None:
        """Repaint what shows the node now (after an action), without waiting for the next poll."""
        self._node_updated(message.link)
        self.refresh_audit()

    def update_alerts(self, link: NodeLink) -> None:
        """Judge ``link`` against the thresholds into the alert book, before any screen paints it."""
        alerts = link_alerts(link, self.thresholds, self.clock())
        self.alert_book.update(link.name, alerts, judged=link.snapshot is not None)
        for warning in self.alert_book.take_warnings():
            self.notify(warning, title="alerts", severity="warning", timeout=8)

    def _node_updated(self, link: NodeLink) -> None:
        self.update_alerts(link)
        if not self.screen_stack:  # the app is closing: a poll that finished just now has nowhere to go
            return
        screen = self.screen
        if isinstance(screen, FleetDeckScreen):
            with suppress(NoMatches):  # a screen still composing fills itself when it mounts
                screen.node_updated(link)

    def _flush_logs(self) -> None:
        if not self.screen_stack:  # the timer's tick landed in the close, after the last screen went
            return
        screen = self.screen
        if isinstance(screen, FleetDeckScreen):
            with suppress(NoMatches):
                screen.logs_arrived()

    # --- navigation ------------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Act on a screen's message now (DeckContext.send): see console/messages.py for why not later."""
        match message:
            case messages.OpenNode():
                self.open_node(message.link, tab=message.tab)
            case messages.OpenAgent():
                self.open_agent(message.link, message.agent_id)
            case messages.OpenLogs():
                self.open_logs(message.node, message.source)
            case messages.OpenAllAgents():
                self.open_all_agents()
            case _:
                self.post_message(message)

    @on(messages.Navigation)
    def _navigation_posted(self, message: messages.Navigation) -> None:
        self.send(message)

    def open_node(self, link: NodeLink, tab: str | None = None) -> None:
        screen = NodeScreen(self.deck, link)
        if tab is not None:
            screen.active_tab = tab  # in the narrow (tabbed) layout it opens there; wide shows every panel
        self.push_screen(screen)

    def open_agent(self, link: NodeLink, agent_id: str) -> None:
        self.push_screen(AgentScreen(self.deck, link, agent_id))

    def open_logs(self, node: str | None, source: str | None = None) -> None:
        self.push_screen(LogsScreen(self.deck, node=node, source=source))

    def open_all_agents(self) -> None:
        """Every node's agents in one table; one such screen at most (it holds up to thousands of rows)."""
        self._bring_up(AllAgentsScreen, lambda: AllAgentsScreen(self.deck))

    def action_audit(self) -> None:
        self._bring_up(AuditScreen, lambda: AuditScreen(self.deck))

    def _bring_up(self, kind: type[Screen[Any]], make: Callable[[], Screen[Any]]) -> None:
        """Show the one screen of ``kind``: from a screen opened on top of it, go back to it; else open it."""
        if isinstance(self.screen, kind):
            return
        existing = next((s for s in reversed(self.screen_stack) if isinstance(s, kind)), None)
        if existing is None:
            self.push_screen(make())
            return
        while self.screen is not existing:
            self.pop_screen()

    def action_undo_rollback(self) -> None:
        link = self.current_link()
        if link is not None:
            self.actions.undo_rollback(link)

    def current_link(self) -> NodeLink | None:
        """The node the screen shows, or the only node."""
        link = getattr(self.screen, "link", None)
        if isinstance(link, NodeLink):
            return link
        return next(iter(self.links.values())) if len(self.links) == 1 else None

    def refresh_audit(self) -> Worker[None] | None:
        """Fetch the newest audit entries for an Audit screen in the stack (called after each action);
        returns the fetching worker, or None when no Audit screen is open (it fetches when opened)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, AuditScreen):
                return screen.refresh_audit()
        return None

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.deck))

    def action_cycle_theme(self) -> None:
        names = self.theme_cycle()
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def theme_cycle(self) -> list[str]:
        """fleetdeck's themes and the user's first, then Textual's ANSI themes for terminals with their own
        palette."""
        ours = [n for n in self.available_themes if n.startswith("fleetdeck-")]
        user = [n for n in self.available_themes if n not in ours and not _is_textual_builtin(n)]
        return [*ours, *user, "ansi-dark", "ansi-light"]

    # --- help and palette ------------------------------------------------------------------------------

    def key_help(self) -> list[KeyHelp]:
        return key_help(binding_contexts(), self._keymap)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette's entries. It parses their titles and help as markup, so what a node named (its phases)
        and what the config named (nodes, themes) goes in through ``safe_markup``."""
        yield SystemCommand("Help: keys", "Every key in force", self.action_help)
        if len(self.links) > 1:
            yield SystemCommand("Go to fleet", "All nodes at a glance", self._go_fleet)
        for link in self.links.values():
            yield SystemCommand(
                f"Go to node {safe_markup(link.name)}",
                f"{safe_markup(link.environment)} node",
                lambda n=link: self.open_node(n),
            )
        yield SystemCommand("Agents: all nodes", "Every node's agents in one table", self.open_all_agents)
        yield SystemCommand("Logs: all nodes", "Every node's logs, merged", lambda: self.open_logs(None))
        yield SystemCommand("Audit trail", "Who did what, when, why, with what outcome", self.action_audit)
        yield from self._action_commands()
        for name in self.theme_cycle():
            yield SystemCommand(
                f"Theme: {safe_markup(name)}", "Switch the colour theme", lambda n=name: self._set_theme(n)
            )
        yield from super().get_system_commands(screen)

    def _action_commands(self) -> Iterable[SystemCommand]:
        """The node on screen's actions, including the ones with no key of their own (phases)."""
        link = self.current_link()
        if link is None or link.snapshot is None:
            return
        ops = self.actions
        node = safe_markup(link.name)
        yield SystemCommand(
            f"Dispatch on {node}", "A task for an agent, or a new agent", lambda: ops.dispatch(link, None)
        )
        yield SystemCommand(
            f"Checkpoint {node}", "Record state and git workspaces", lambda: ops.checkpoint(link)
        )
        yield SystemCommand(
            f"Roll back {node}", "Pick a checkpoint (asks to confirm)", lambda: ops.rollback(link)
        )
        if link.name in ops.undo:
            yield SystemCommand(
                f"Undo the last rollback on {node}",
                f"Back to {safe_markup(ops.undo[link.name].id)}",
                lambda: ops.undo_rollback(link),
            )
        if link.name in ops.interrupted:
            yield SystemCommand(
                f"Recover the interrupted rollback on {node}",
                "Finish it and resume the agents it paused (asks to confirm)",
                lambda: ops.recover_rollback(link),
            )
        for phase in sorted(link.snapshot.phases, key=lambda p: p.order):
            for action in ("pause", "resume", "stop"):
                yield SystemCommand(
                    f"{action.capitalize()} phase {safe_markup(phase.name)}",
                    f"{safe_markup(phase.id)} ({safe_markup(phase.status)}) and all its agents",
                    lambda a=action, p=phase: ops.phase(link, a, p),
                )

    def _set_theme(self, name: str) -> None:
        self.theme = name

    def _go_fleet(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()


def _tune_gc() -> None:
    """Keep garbage collection from stopping the screen, once every node has been polled.

    What exists by then is the console's lasting furniture (Textual, themes, screens, the first snapshots):
    frozen, full collections stop walking it again and again. And each refresh renders thousands of
    short-lived objects; with CPython's default first threshold (700 allocations) they are collected young
    so often that many survive into the old generation and soon trigger a full collection. At a hundred
    nodes that stopped the screen for 100-250 ms every few seconds (see benchmarks/fleet_refresh.py).
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def binding_contexts() -> dict[str, Sequence[BindingType]]:
    """Every screen's bindings by the name Help shows for it; "global" works everywhere."""
    return {
        "global": FleetDeckApp.BINDINGS,
        "fleet": FleetScreen.BINDINGS,
        "node": NodeScreen.BINDINGS,
        "all-agents": AllAgentsScreen.BINDINGS,
        "agent": AgentScreen.BINDINGS,
        "logs": LogsScreen.BINDINGS,
        "audit": AuditScreen.BINDINGS,
        "help": HelpScreen.BINDINGS,
        "attention": AttentionList.BINDINGS,  # the Attention panel of the fleet and node screens
    }


def _is_textual_builtin(name: str) -> bool:
    from textual.theme import BUILTIN_THEMES

    return name in BUILTIN_THEMES
