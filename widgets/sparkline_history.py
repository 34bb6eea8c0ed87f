"""A labelled history line on a fixed scale: "util ▁▂▃▅▇ 78%".

Textual's Sparkline rescales to the data in view, which makes a steady 78% look like a spike; a history of
percentages reads honestly only on a fixed 0-100 scale, so this draws its own block characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from .format import spark


class HistorySparkline(Widget):
    COMPONENT_CLASSES = {"historysparkline--line"}
    DEFAULT_CSS = """
    HistorySparkline { height: 1; width: 1fr; }
    HistorySparkline > .historysparkline--line { color: $accent; }
    """

    history: reactive[tuple[float, ...]] = reactive(())
    value_text: reactive[str] = reactive("n/a")

    def __init__(self, caption: str, *, high: float = 100.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.caption = caption
        self.high = high

    def show(self, history: Sequence[float], value_text: str) -> None:
        # reactive assignment repaints only when the value actually changed
        self.history = tuple(history)
        self.value_text = value_text

    def render(self) -> Text:
        caption = f"{self.caption:<6}"
        value = f"{self.value_text:>9}"
        width = max(0, self.size.width - len(caption) - len(value) - 1)
        text = Text(caption, style="dim")
        text.append(
            spark(self.history, width, high=self.high),
            style=self.get_component_rich_style("historysparkline--line"),
        )
        text.append(" " + value)
        return text
