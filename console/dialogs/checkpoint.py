"""Take a checkpoint: a label (and a reason for the audit trail)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label

from widgets.safe import safe_content

from .base import Dialog


class CheckpointDialog(Dialog[tuple[str, str | None] | None]):
    DEFAULT_CSS = """
    CheckpointDialog { align: center middle; }
    CheckpointDialog > Vertical {
        width: 64; max-width: 100%; height: auto; border: thick $primary; background: $surface; padding: 0 1;
    }
    CheckpointDialog #title { text-style: bold; padding: 1 0 0 0; }
    CheckpointDialog #buttons { height: auto; align-horizontal: right; padding: 1 0 0 0; }
    CheckpointDialog Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def compose(self) -> ComposeResult:
        with Vertical():
            title = f"Checkpoint {self.node}: the store's state and every git workspace"
            yield Label(safe_content(title), id="title")
            yield Input(placeholder="label, e.g. before model upgrade", id="label")
            yield Input(placeholder="reason (optional)", id="reason")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Take checkpoint", id="take", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#label", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._take()  # a checkpoint changes nothing, so Enter may take it

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#take")
    def _take(self) -> None:
        label = self.query_one("#label", Input).value.strip() or "manual"
        self.dismiss((label, self.query_one("#reason", Input).value.strip() or None))
