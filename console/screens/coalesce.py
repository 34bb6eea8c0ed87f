"""Coalesced repaints for the screens that show every node at once (Fleet, All agents).

Each node's poll ends with a ``node_updated``; such a screen repaints all nodes whichever one reported, so
100 nodes polled each second would repaint it 100 times a second and starve the keyboard. Instead the first
report after a quiet spell repaints at once (an operator's action shows now) and the ones that follow within
REDRAW_S share one repaint at the end of it. A node whose freshness changed (went stale or offline, came
back) is repainted at once whatever the spell: that is news, not routine. A node's first data is not (at
start every node has some within a second, and would repaint the screen once each).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from textual.timer import Timer

if TYPE_CHECKING:
    from console.node_link import NodeLink

REDRAW_S = 0.5  # the most often such a screen repaints, however many nodes report in between


class CoalescedRepaint:
    """Mixed into a FleetDeckScreen (before it) that implements :meth:`repaint`."""

    _painted_at = float("-inf")  # monotonic time of the last repaint
    _due: Timer | None = None  # the repaint that will include the nodes that reported since
    _painted_kinds: dict[str, str] | None = None  # node -> its freshness as last painted

    def repaint(self) -> None:
        """Show every node's latest data."""
        raise NotImplementedError

    def node_updated(self, link: NodeLink) -> None:
        screen: Any = cast(Any, self)
        if not screen.is_mounted:
            return
        painted = (self._painted_kinds or {}).get(link.name, "connecting")
        kind = screen.freshness(link)[0]
        changed = kind != painted and not (painted == "connecting" and kind == "live")
        if self._due is not None and not changed:
            return  # the repaint already due will show this node too
        wait = REDRAW_S - (time.monotonic() - self._painted_at)
        if wait <= 0 or changed:
            self.repaint_now()
        else:
            self._due = screen.set_timer(wait, self._repaint_due)

    def on_screen_resume(self) -> None:
        # Runs before FleetDeckScreen's handler, which catches up node by node: the first of those repaints
        # at once (shown again, or just mounted, the screen must not wait), the others share the next one.
        self._painted_at = float("-inf")

    def repaint_now(self) -> None:
        if self._due is not None:
            self._due.stop()
            self._due = None
        self._painted_at = time.monotonic()
        screen: Any = cast(Any, self)
        self._painted_kinds = {link.name: screen.freshness(link)[0] for link in screen.deck.links.values()}
        self.repaint()

    def _repaint_due(self) -> None:
        self._due = None
        if cast(Any, self).is_current:  # a hidden screen catches up when it is shown again
            self.repaint_now()
