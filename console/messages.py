"""What screens and the operator's actions ask of the app, as messages (as Textual's own widgets tell their
parents what happened rather than calling up into them).

A Navigation message is handed to the app through the screen's context (``DeckContext.send``), which acts
on it at once: a key that opens a screen must have opened it before the next key of a burst is read, and a
posted message would queue behind that key. Posted anyway (by a widget), it works the same, only later.
NodeRefreshed is posted: it comes from a worker, after the node was polled again.
"""

from __future__ import annotations

from textual.message import Message

from console.core.node_link import NodeLink


class Navigation(Message):
    """Show another screen."""


class OpenNode(Navigation):
    """Show ``link``'s Node screen; on ``tab`` in the narrow (tabbed) layout (the wide one shows every
    panel)."""

    def __init__(self, link: NodeLink, tab: str | None = None) -> None:
        super().__init__()
        self.link = link
        self.tab = tab


class OpenAgent(Navigation):
    """Show one agent's detail."""

    def __init__(self, link: NodeLink, agent_id: str) -> None:
        super().__init__()
        self.link = link
        self.agent_id = agent_id


class OpenLogs(Navigation):
    """Show the full-screen logs of ``node`` (every node's, merged, when None), of ``source`` only if
    given."""

    def __init__(self, node: str | None, source: str | None = None) -> None:
        super().__init__()
        self.node = node
        self.source = source


class OpenAllAgents(Navigation):
    """Show every node's agents in one table (one such screen at most: an open one comes back to the top)."""


class NodeRefreshed(Message):
    """``link`` was polled out of turn (after an action): repaint what shows it, and the audit trail."""

    def __init__(self, link: NodeLink) -> None:
        super().__init__()
        self.link = link
