"""The action keys shared by the screens that show one node (Node, Agent): d p s c r, space, and the
gate that shows them disabled (dimmed in the footer, marked in Help) when actions are off: a read-only
node, a backend without the capability, or, for the pause key, chosen agents none of which can take it
(a failed agent cannot be paused or resumed). A disabled key pressed says why it is off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import events
from textual.binding import Binding

from backends.model import Agent

if TYPE_CHECKING:
    from console.context import DeckContext
    from console.core.node_link import NodeLink
    from console.operator import Operator

ACTION_BINDINGS = [
    Binding("d", "dispatch", "Dispatch", id="dispatch", tooltip="Dispatch a task or start a new agent"),
    Binding("p", "pause_resume", "Pause", id="pause", tooltip="Pause or resume the chosen agents"),
    Binding("s", "stop_agents", "Stop", id="stop", tooltip="Stop the chosen agents (asks to confirm)"),
    Binding("c", "checkpoint", "Checkpoint", id="checkpoint", show=False, tooltip="Take a checkpoint"),
    Binding(
        "r",
        "rollback",
        "Rollback",
        id="rollback",
        show=False,
        tooltip="Roll back to a checkpoint (asks to confirm; ctrl+z undoes)",
    ),
]
# the capability each action needs; the refusal reason comes from Operator.refusal
ACTION_CAPABILITY = {
    "dispatch": "dispatch",
    "pause_resume": "pause",
    "stop_agents": "stop",
    "checkpoint": "checkpoint",
    "rollback": "rollback",
}


class ActionKeys:
    """Mixed into a screen with ``link`` (NodeLink) and ``chosen_agents()``."""

    link: NodeLink

    @property
    def _actions(self) -> Operator:
        deck: DeckContext = cast(Any, self).deck  # FleetDeckScreen provides it
        return deck.actions

    def chosen_agents(self) -> list[Agent]:
        raise NotImplementedError

    def sync_node_identity(self) -> None:
        """Follow what the node says of itself: a remote node tells its environment and the caller's
        rights only once connected, so the danger frame and the enabled keys are re-read on each refresh."""
        screen = cast(Any, self)
        screen.set_class(self.link.environment == "production", "-production")
        # the agents' states matter too: the row under the cursor may have failed since the last poll
        rights = (self.link.read_only, self.link.backend.capabilities, self._pause_off())
        if rights != getattr(self, "_shown_rights", None):
            self._shown_rights = rights
            screen.refresh_bindings()

    def on_row_table_row_highlighted(self) -> None:
        """The cursor moved to another agent: the pause key may be on or off for it."""
        if cast(Any, self).is_mounted:
            self.sync_node_identity()

    def _pause_off(self) -> tuple[str, str] | None:
        """(action, why) when the pause key can act on none of the chosen agents, else None."""
        if not cast(Any, self).is_mounted:
            return None
        return self._actions.pause_refusal(self.chosen_agents())

    def _why_off(self, action: str) -> tuple[str, str] | None:
        """(what is off, why) for an action key, or None when it is on."""
        capability = ACTION_CAPABILITY.get(action)
        if capability is None:
            return None
        if (reason := self._actions.refusal(self.link, capability)) is not None:
            return capability, reason
        return self._pause_off() if action == "pause_resume" else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # None: shown, but disabled (dimmed) - the operator sees the key exists and is off
        return None if self._why_off(action) else True

    def on_key(self, event: events.Key) -> None:
        """A disabled action key is not silent: it says why it is off (the binding itself never runs)."""
        active = cast(Any, self).app.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        if (off := self._why_off(active.binding.action)) is not None:
            event.stop()
            self._actions.say_disabled(*off)

    def action_dispatch(self) -> None:
        chosen = self.chosen_agents()
        self._actions.dispatch(self.link, chosen[0] if len(chosen) == 1 else None)

    def action_pause_resume(self) -> None:
        self._actions.pause_toggle(self.link, self.chosen_agents())

    def action_stop_agents(self) -> None:
        self._actions.stop(self.link, self.chosen_agents())

    def action_checkpoint(self) -> None:
        self._actions.checkpoint(self.link)

    def action_rollback(self) -> None:
        self._actions.rollback(self.link)
