"""What the app hands every screen: the nodes, the clock, the alert book, the thresholds and the operator's
actions. Screens read these and send messages (console/messages.py) for anything the app does: opening a
screen, repainting after an action. So a screen never imports the app, and can be built in a test with a
context of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from textual.message import Message

from console.core.alert_book import AlertBook
from console.core.config import Thresholds
from console.core.node_link import NodeLink
from console.keys import KeyHelp
from console.operator import Operator


@dataclass(frozen=True, eq=False)
class DeckContext:
    links: Mapping[str, NodeLink]  # every node, by name, in the config's order
    clock: Callable[[], float]
    alert_book: AlertBook
    thresholds: Thresholds
    refresh_s: float
    frozen: bool  # a snapshot: no polling, data never ages
    actions: Operator
    key_help: Callable[[], list[KeyHelp]]  # every key in force, the config's rebinding applied
    send: Callable[[Message], None]  # hands the app a message to act on now (console/messages.py)
    # the config's headline_kpi: the agents table's KPI column (None: chosen by kpi_rules.headline_kpi)
    headline_kpi: str | None = None

    def threshold(self, name: str) -> tuple[float, float] | None:
        """(warning, critical) of the threshold ``name``, or None when the config has none by that name."""
        value = getattr(self.thresholds, name, None)
        return None if value is None else (float(value[0]), float(value[1]))
