"""How fresh a panel's data is: "● live", "◐ stale 12s", "✖ offline: <reason>".

The symbol and the word carry the meaning; colour only reinforces it (NO_COLOR and 16-colour terminals).
"""

from __future__ import annotations

from typing import Literal

from textual.widgets import Static

from .safe import safe_content
from .steady import update_steady

Freshness = Literal["live", "stale", "offline", "connecting", "frozen"]

_SYMBOLS: dict[str, str] = {"live": "●", "stale": "◐", "offline": "✖", "connecting": "○", "frozen": "■"}


class DataAge(Static):
    """A one-line badge; the console computes the words, this widget only shows them."""

    DEFAULT_CSS = """
    DataAge { width: auto; height: 1; padding: 0 1; color: $text-muted; }
    DataAge.-live { color: $success; }
    DataAge.-stale { color: $warning; }
    DataAge.-offline { color: $error; text-style: bold; }
    """

    def __init__(self, kind: Freshness = "connecting", text: str = "connecting", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: tuple[str, str] | None = None
        self.show(kind, text)

    def show(self, kind: Freshness, text: str) -> None:
        if self._shown == (kind, text):
            return  # unchanged: no repaint
        self._shown = (kind, text)
        for name in _SYMBOLS:
            self.set_class(name == kind, f"-{name}")
        update_steady(self, safe_content(f"{_SYMBOLS[kind]} {text}"))  # "offline: <the node's error>"
