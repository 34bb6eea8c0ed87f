"""The `/` filter line of a list screen: hidden until opened, and never holding a key while hidden.

A hidden Input is still first in the DOM, and Textual focuses the first focusable widget when a screen is
composed: keys typed while the console starts (before the screen moves the focus to its table) would go
into a filter nobody sees, and the table would empty for no visible reason. So the box takes the focus
only while it is open, and opening it focuses it at once, not after the next refresh: a `/` followed by
more keys in one burst must put those keys in the box, not act on the table.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Input


class FilterBox(Input):
    DEFAULT_CSS = """
    FilterBox { display: none; height: 3; }
    FilterBox.-open { display: block; }
    """

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def allow_focus(self) -> bool:
        return self.is_open and super().allow_focus()

    def open(self) -> None:
        """Show the box and give it the keys from the next one on."""
        self.add_class("-open")
        if self.is_attached:
            self.screen.set_focus(self)  # now: Widget.focus() would wait for the message queue

    def close(self, *, clear: bool, focus: Widget) -> None:
        """Hide the box and hand the keys to ``focus`` at once (a hidden box must not keep them); with
        ``clear`` its text, the filter in force, goes too."""
        if clear:
            self.value = ""
        self.remove_class("-open")
        if self.is_attached:
            self.screen.set_focus(focus)
