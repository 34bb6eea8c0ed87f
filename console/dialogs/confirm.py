"""The confirmation dialog for destructive actions (stop, rollback, bulk or phase pause).

It lists exactly what will be touched (in the node's own words: shown with ``safe_text``, never as markup)
and asks for an optional reason for the audit trail. Cancel holds the focus and Enter alone never confirms:
Enter in the reason box only moves on, and Confirm has to be chosen. On a production node the operator types
the node's name before Confirm is enabled, so the name box holds the focus there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from backends.safe_text import terminal_safe
from widgets.safe import safe_content, safe_text
from widgets.steady import set_border_title

from .base import Dialog

PREVIEW_LIMIT = 200  # a bulk action over thousands of agents still shows a readable list


@dataclass(frozen=True)
class Confirmed:
    reason: str | None


class ConfirmDialog(Dialog[Confirmed | None]):
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConfirmDialog.-production > Vertical { border: thick $fleetdeck-danger; }
    ConfirmDialog #danger { display: none; background: $fleetdeck-danger; color: $text; text-style: bold;
                            padding: 0 1; width: 100%; }
    ConfirmDialog.-production #danger { display: block; }
    ConfirmDialog #title { text-style: bold; padding: 1 0 0 0; }
    ConfirmDialog #preview { height: auto; max-height: 8; border: round $primary 40%; padding: 0 1; }
    ConfirmDialog #typed { display: none; }
    ConfirmDialog.-production #typed { display: block; }
    ConfirmDialog #buttons { height: auto; align-horizontal: right; padding: 1 0 0 0; }
    ConfirmDialog Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(
        self,
        title: str,
        touched: Sequence[str],
        *,
        node: str,
        production: bool,
        verb: str = "Confirm",
        note: str | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.touched = list(touched)
        self.node = node
        self.production = production
        self.verb = verb
        self.note = note
        self.set_class(production, "-production")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                safe_content(f"⚠ PRODUCTION NODE {self.node} — this changes production"), id="danger"
            )
            yield Label(safe_content(self.title_text), id="title")  # e.g. a checkpoint's label
            with VerticalScroll(id="preview", can_focus=False) as preview:
                set_border_title(preview, f"Will touch ({len(self.touched)})")
                yield Static(self._preview_text())
            if self.note:
                yield Static(safe_text(self.note, style="dim"), id="note")
            yield Input(placeholder="reason (optional, goes to the audit trail)", id="reason")
            typed = f"type the node name '{terminal_safe(self.node)}' to confirm"
            yield Input(placeholder=typed, id="typed")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", variant="default", compact=True)
                yield Button(self.verb, id="confirm", variant="error", disabled=self.production, compact=True)

    def _preview_text(self) -> Text:
        text = Text()
        for line in self.touched[:PREVIEW_LIMIT]:
            text.append_text(safe_text(f"• {line}"))
            text.append("\n")
        if len(self.touched) > PREVIEW_LIMIT:
            text.append(f"… and {len(self.touched) - PREVIEW_LIMIT} more\n", style="dim")
        if not self.touched:
            text.append("nothing", style="dim")
        text.rstrip()
        return text

    def on_mount(self) -> None:
        # The safe choice is where the cursor starts; on production, the one step left before Confirm can
        # be chosen: typing the node's name (Enter there moves on to Cancel, never confirms).
        self.query_one("#typed" if self.production else "#cancel").focus()

    @on(Input.Changed, "#typed")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.node

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        # Enter in a text box never confirms: it moves to the next field (or back to Cancel)
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.production and self.query_one("#typed", Input).value.strip() != self.node:
            return
        reason = self.query_one("#reason", Input).value.strip() or None
        self.dismiss(Confirmed(reason))
