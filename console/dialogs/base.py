"""What every fleetdeck dialog shares: text boxes that look like boxes, and toasts that keep off its buttons.

A dialog's buttons sit at its bottom right, where Textual stacks its toasts: at 80x24 a dialog fills the
screen, so a toast still up from the action before (a rollback's "ctrl+z undoes") hid the buttons of the
very dialog it pointed to. On a dialog, toasts stack at the top instead, over its title.

A text box is one row (at 80x24 a dialog has no rows to spare), framed left and right and shaded, so it
reads as a place to type rather than as a line of hint text; the frame lights up where the cursor is.
"""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    DEFAULT_CSS = """
    Dialog > ToastRack { dock: top; align: right top; margin-bottom: 0; }
    Dialog Input {
        height: 1;
        margin: 1 0 0 0;
        padding: 0 1;
        border: none;
        border-left: outer $primary 60%;
        border-right: outer $primary 60%;
        background: $primary 18%;
    }
    Dialog Input:focus {
        border: none;
        border-left: outer $accent;
        border-right: outer $accent;
        background: $primary 30%;
    }
    """
