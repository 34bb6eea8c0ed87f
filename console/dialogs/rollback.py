"""Pick the checkpoint to roll back to: when, by whom, what it covers. Confirmation comes after."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from backends.model import Checkpoint
from widgets.format import fmt_ago
from widgets.safe import safe_content, safe_text

from .base import Dialog


def checkpoint_prompt(checkpoint: Checkpoint, now: float) -> Text:
    """Label, id, author and what it covers: the node's words, each line made safe and kept to one line."""
    text = Text()
    text.append_text(safe_text(checkpoint.label, style="bold"))
    if checkpoint.automatic:
        text.append("  auto", style="dim")
    taken = f"  {checkpoint.id} · {fmt_ago(checkpoint.created_at, now)} by {checkpoint.created_by}"
    text.append("\n")
    text.append_text(safe_text(taken, style="dim"))
    if checkpoint.covers:
        covers = ", ".join(checkpoint.covers[:5]) + (
            f" +{len(checkpoint.covers) - 5}" if len(checkpoint.covers) > 5 else ""
        )
        text.append("\n")
        text.append_text(safe_text(f"  covers {covers}", style="dim"))
    return text


class RollbackPicker(Dialog[str | None]):
    DEFAULT_CSS = """
    RollbackPicker { align: center middle; }
    RollbackPicker > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    RollbackPicker #title { text-style: bold; padding: 1 0; }
    RollbackPicker OptionList { height: auto; max-height: 20; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]

    def __init__(self, checkpoints: Sequence[Checkpoint], *, node: str, now: float) -> None:
        super().__init__()
        self.checkpoints = list(checkpoints)
        self.node = node
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical():
            title = f"Roll {self.node} back to which checkpoint? (enter picks, esc cancels)"
            yield Label(safe_content(title), id="title")
            yield OptionList(*(Option(checkpoint_prompt(c, self.now), id=c.id) for c in self.checkpoints))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
