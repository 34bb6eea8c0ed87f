"""What every fleetdeck screen shares: the context the app hands it (``self.deck``), and the refresh hooks
the app calls. A screen never reaches up into the app: it reads its context and sends messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Input

from widgets.data_age import Freshness

if TYPE_CHECKING:
    from console.context import DeckContext
    from console.core.node_link import NodeLink
    from console.messages import Navigation


class FleetDeckScreen(Screen[None]):
    # The last data of a node that stopped answering stays on screen, greyed, beside its "stale Ns" /
    # "offline: reason" label: an operator sees what it last said without mistaking it for live.
    DEFAULT_CSS = """
    FleetDeckScreen.-data-old .panel * { text-opacity: 55%; }
    """

    def __init__(self, deck: DeckContext) -> None:
        super().__init__()
        self.deck = deck

    def navigate(self, message: Navigation) -> None:
        """Have the app show another screen, before the next key is read (see console/messages.py)."""
        self.deck.send(message)

    def freshness(self, link: NodeLink) -> tuple[Freshness, str]:
        fresh = link.freshness(self.deck.refresh_s, frozen=self.deck.frozen)
        return cast(Freshness, fresh.kind), fresh.text

    def grey_if_old(self, link: NodeLink, kind: Freshness) -> None:
        """Grey this screen's panels while ``link``'s data is stale or its node offline."""
        self.set_class(link.snapshot is not None and kind in ("stale", "offline"), "-data-old")

    def node_updated(self, link: NodeLink) -> None:
        """A new snapshot (or error) arrived for ``link``; repaint what shows it. Called only when visible."""

    def logs_arrived(self) -> None:
        """New log records are buffered; pull them into visible log panes."""

    def covered(self) -> bool:
        """Whether a full screen is on top of this one (a dialog over it leaves it in sight)."""
        stack = self.app.screen_stack
        above = stack[stack.index(self) + 1 :] if self in stack else []
        return any(not isinstance(screen, ModalScreen) for screen in above)

    def on_screen_resume(self) -> None:
        # A screen covered as soon as it was shown (the start screen pushed over the Fleet screen) is
        # resumed too, late, from its queue: painting it then is work for a screen nobody sees, and with a
        # 50,000-agent fleet's alerts it held the console for seconds. It catches up when shown again.
        if self.covered():
            return
        # hidden screens were not updated: catch up in one go
        for link in self.deck.links.values():
            self.node_updated(link)
        self.logs_arrived()


def filter_binding(tooltip: str) -> Binding:
    """`/`, which opens a screen's filter box: a priority binding (see filter_binding_allowed)."""
    return Binding("slash", "filter", "Filter", id="filter", priority=True, tooltip=tooltip)


def filter_binding_allowed(screen: Screen[None]) -> bool:
    """Whether `/` opens the filter now. It is a priority binding, run as the key arrives rather than after
    the focused widget has passed it on: the keys right behind it in one burst must find the box open and
    focused. While a text box has the keys, `/` is a character in it."""
    return not isinstance(screen.focused, Input)
