"""A screen needs only the context it is handed: it runs in a plain Textual App (not FleetDeckApp), and what
only the app can do (open another screen, repaint after an action) reaches the app as messages. A key that
opens a screen has opened it before the next key of a burst is read."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import App
from textual.message import Message

from backends.model import Target
from console.context import DeckContext
from console.core.alert_book import AlertBook
from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.core.node_link import NodeLink
from console.messages import NodeRefreshed, OpenAgent, OpenLogs
from console.operator import Operator
from console.screens.logs import LogsScreen
from console.screens.node import NodeScreen
from console.snapshot import prime
from tests.conftest import T0
from widgets.agents_table import AgentsTable

WIDE = (160, 48)


class BareApp(App[None]):
    """Knows nothing of fleetdeck: it shows one screen and keeps every message that reaches it."""

    def __init__(self, make_screen: Any) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.received: list[Message] = []

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(self))

    def on_node_refreshed(self, message: NodeRefreshed) -> None:
        self.received.append(message)


async def _node_screen_app() -> tuple[BareApp, NodeLink]:
    """A BareApp showing a NodeScreen on one primed demo node, and that node."""
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=1, agents=20, clock=clock)
    await prime(links, clock)
    link = links[0]
    return BareApp(lambda host: NodeScreen(_context(host, link, clock), link)), link


def _context(app: App[None], link: NodeLink, clock: FrozenClock) -> DeckContext:
    config = Config()
    return DeckContext(
        links={link.name: link},
        clock=clock,
        alert_book=AlertBook(None, clock),
        thresholds=config.thresholds,
        refresh_s=config.refresh_s,
        frozen=True,
        actions=Operator(app, operator="tester", clock=clock, refresh_s=config.refresh_s),
        key_help=list,
        send=app.received.append,  # type: ignore[attr-defined]
    )


async def test_the_node_screen_runs_on_its_context_and_asks_the_app_to_open_an_agent_and_logs() -> None:
    app, link = await _node_screen_app()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NodeScreen)
        table = screen.query_one(AgentsTable)
        assert table.row_count == 20  # the screen filled itself from the link it was handed
        await pilot.press("down")
        expected = table.agent_at_cursor()
        assert expected is not None

        await pilot.press("enter")
        await pilot.pause()
        opened = [m for m in app.received if isinstance(m, OpenAgent)]
        assert [(m.link, m.agent_id) for m in opened] == [(link, expected.id)]
        assert app.screen is screen  # the screen asked; only an app that handles it opens anything

        await pilot.press("l")
        await pilot.pause()
        logs = [m for m in app.received if isinstance(m, OpenLogs)]
        assert [(m.node, m.source) for m in logs] == [(link.name, None)]


async def test_an_action_polls_the_node_and_tells_the_app_to_repaint_it() -> None:
    app, link = await _node_screen_app()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NodeScreen)
        running = next(a for a in link.snapshot.agents if a.state == "running")  # type: ignore[union-attr]
        worker = app.run_worker(
            screen.deck.actions._act(link, "pause", [Target(kind="agent", id=running.id)], confirm=False)
        )
        await worker.wait()
        await pilot.pause()
        refreshed = [m for m in app.received if isinstance(m, NodeRefreshed)]
        assert [m.link for m in refreshed] == [link]
        paused = next(a for a in link.snapshot.agents if a.id == running.id)  # type: ignore[union-attr]
        assert paused.state == "paused"  # polled again before the message: the app repaints what is true


async def test_a_burst_of_keys_opens_one_screen_per_key_that_opens_one(frozen_demo_app_async) -> None:
    """Two `l` in one read: the first opens the node's logs, the second reaches the Logs screen (where it is
    no key), never the Node screen again, which would stack a second Logs screen."""
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        below = len(app.screen_stack)
        for _ in range(2):  # queued together, as a terminal delivers a burst (pilot.press waits between)
            app.post_message(events.Key("l", "l"))
        await pilot.pause()
        await pilot.pause()
        assert [type(s) for s in app.screen_stack[below:]] == [LogsScreen]
