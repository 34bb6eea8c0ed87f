"""Coalesced repaints for the screens that show every node at once (Fleet, All agents).

Each node's poll ends with a ``node_updated``; such a screen repaints all nodes whichever one reported, so
100 nodes polled each second would repaint it 100 times a second and starve the keyboard. Instead the first
report after a quiet spell repaints at once (an operator's action shows now) and the ones that follow within
the refresh interval (REDRAW_S at least) share one repaint at the end of it. A node whose freshness changed
(went stale or offline, came back) is news, not routine: it waits at most NEWS_REDRAW_S after the last
repaint, however long the spell. A node's first data is not news (at start every node has some within a
second, and would repaint the screen once each).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from textual.timer import Timer

if TYPE_CHECKING:
    from console.core.node_link import NodeLink

REDRAW_S = 0.5  # the most often such a screen repaints (or once per refresh interval, if longer)
# A node whose freshness changed is news and waits no longer than this after the last repaint; not zero, so
# that a hundred nodes going stale together (the network dropped) share a repaint instead of taking one each.
NEWS_REDRAW_S = 0.25


class CoalescedRepaint:
    """Mixed into a FleetDeckScreen (before it) that implements :meth:`repaint`."""

    _painted_at = float("-inf")  # monotonic time of the last repaint
    _due: Timer | None = None  # the repaint that will include the nodes that reported since
    _due_at = 0.0  # when it will run (monotonic)
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
        now = time.monotonic()
        # each node reports once per refresh interval: painting more often than that shows nothing new
        routine = max(REDRAW_S, screen.deck.refresh_s)
        due_at = self._painted_at + (NEWS_REDRAW_S if changed else routine)
        if now >= due_at:
            self.repaint_now()
            return
        if self._due is not None:
            if self._due_at <= due_at:
                return  # the repaint already due, as soon or sooner, will show this node too
            self._due.stop()
        self._due_at = due_at
        self._due = screen.set_timer(due_at - now, self._repaint_due)

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
