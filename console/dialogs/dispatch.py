"""The dispatch form: a task for an existing agent (JSON payload) or a command started as a new agent.

Everything is validated here, before anything is sent: the payload must be a JSON object, the command must
split into words, the agent must be one the node has.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Select, Static

from backends.model import DispatchRequest
from widgets.safe import safe_content, safe_text

from .base import Dialog

NEW_COMMAND = "__new__"


@dataclass(frozen=True)
class Dispatch:
    request: DispatchRequest
    reason: str | None


def build_request(agent: str | None, payload_text: str, command_text: str, name: str) -> DispatchRequest:
    """The request the form describes, or ValueError with a message for the form's error line."""
    name_or_none = name.strip() or None
    if agent is None:
        try:
            command = tuple(shlex.split(command_text))
        except ValueError as exc:
            raise ValueError(f"command: {exc}") from None
        if not command:
            raise ValueError("command: type the command line to start, e.g. python agent.py --task 7")
        return DispatchRequest(command=command, name=name_or_none)
    try:
        payload = json.loads(payload_text) if payload_text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(payload, dict):
        raise ValueError('payload: must be a JSON object, e.g. {"prompt": "fix the flaky test"}')
    return DispatchRequest(agent_id=agent, payload=payload, name=name_or_none)


class DispatchDialog(Dialog[Dispatch | None]):
    DEFAULT_CSS = """
    DispatchDialog { align: center middle; }
    DispatchDialog > Vertical {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    DispatchDialog.-production > Vertical { border: thick $fleetdeck-danger; }
    DispatchDialog #danger { display: none; background: $fleetdeck-danger; color: $text; text-style: bold; }
    DispatchDialog.-production #danger { display: block; }
    DispatchDialog #title { text-style: bold; padding: 1 0 0 0; }
    DispatchDialog RadioSet { width: 100%; layout: horizontal; }
    DispatchDialog #error { color: $error; height: auto; }
    DispatchDialog .-hidden { display: none; }
    DispatchDialog #buttons { height: auto; align-horizontal: right; padding: 1 0 0 0; }
    DispatchDialog Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, agents: Sequence[str], *, selected: str | None, node: str, production: bool) -> None:
        super().__init__()
        self.agents = list(agents)
        self.selected = selected if selected in self.agents else None
        self.node = node
        self.set_class(production, "-production")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(safe_content(f"⚠ PRODUCTION NODE {self.node}"), id="danger")
            yield Label(safe_content(f"Dispatch work on {self.node}"), id="title")
            with RadioSet(id="mode"):
                yield RadioButton("task for an agent", value=bool(self.agents), id="mode-task")
                yield RadioButton("start a new agent", value=not self.agents, id="mode-command")
            yield Select(  # an agent's id as the node names it: a Text prompt, never markup
                [(safe_text(a), a) for a in self.agents],
                value=self.selected or Select.NULL,
                prompt="agent",
                id="agent",
            )
            yield Input(
                placeholder='payload as JSON, e.g. {"prompt": "fix the flaky test"}',
                id="payload",
            )
            yield Input(placeholder="command line, e.g. python agent.py --task 7", id="command")
            yield Input(placeholder="name (optional)", id="name")
            yield Input(placeholder="reason (optional, goes to the audit trail)", id="reason")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Dispatch", id="dispatch", variant="primary", compact=True)

    def on_mount(self) -> None:
        self._show_mode()
        self.query_one("#agent" if self.agents else "#command").focus()

    @property
    def new_command(self) -> bool:
        return self.query_one("#mode-command", RadioButton).value

    @on(RadioSet.Changed)
    def _show_mode(self) -> None:
        new = self.new_command
        self.query_one("#agent").set_class(new, "-hidden")
        self.query_one("#payload").set_class(new, "-hidden")
        self.query_one("#command").set_class(not new, "-hidden")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._dispatch()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#dispatch")
    def _dispatch(self) -> None:
        agent_value = self.query_one("#agent", Select).value
        agent = None if self.new_command else (agent_value if isinstance(agent_value, str) else "")
        if agent == "":
            self._error("agent: pick the agent that takes the task")
            return
        try:
            request = build_request(
                agent,
                self.query_one("#payload", Input).value,
                self.query_one("#command", Input).value,
                self.query_one("#name", Input).value,
            )
        except ValueError as exc:
            self._error(str(exc))
            return
        self.dismiss(Dispatch(request, self.query_one("#reason", Input).value.strip() or None))

    def _error(self, message: str) -> None:
        self.query_one("#error", Static).update(safe_content(f"✖ {message}"))
