"""What screens and the operator's actions ask of the app, as messages: they bubble up from a screen to the
app, which owns the screen stack (as Textual's own widgets post messages to their parents rather than
calling up into them)."""

from __future__ import annotations

from textual.message import Message

from console.core.node_link import NodeLink


class OpenNode(Message):
    """Show ``link``'s Node screen; on ``tab`` in the narrow (tabbed) layout (the wide one shows every
    panel)."""

    def __init__(self, link: NodeLink, tab: str | None = None) -> None:
        super().__init__()
        self.link = link
        self.tab = tab


class OpenAgent(Message):
    """Show one agent's detail."""

    def __init__(self, link: NodeLink, agent_id: str) -> None:
        super().__init__()
        self.link = link
        self.agent_id = agent_id


class OpenLogs(Message):
    """Show the full-screen logs of ``node`` (every node's, merged, when None), of ``source`` only if
    given."""

    def __init__(self, node: str | None, source: str | None = None) -> None:
        super().__init__()
        self.node = node
        self.source = source


class OpenAllAgents(Message):
    """Show every node's agents in one table (one such screen at most: an open one comes back to the top)."""


class NodeRefreshed(Message):
    """``link`` was polled out of turn (after an action): repaint what shows it, and the audit trail."""

    def __init__(self, link: NodeLink) -> None:
        super().__init__()
        self.link = link
