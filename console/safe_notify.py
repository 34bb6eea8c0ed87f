"""The App base that shows every notification as plain, terminal-safe text.

Notifications are where the console quotes nodes most: an action's error text, a checkpoint's label, an
agent's id. Textual parses a notification's message as markup by default, and writes its characters to the
terminal as they are; here every one, raised by a screen, a widget or the app, is shown with its controls
made visible (``terminal_safe``) and no markup parsed.
"""

from __future__ import annotations

from textual.app import App
from textual.notifications import SeverityLevel

from backends.safe_text import terminal_safe


class SafeNotifyApp(App[None]):
    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """As ``App.notify`` (``Widget.notify`` comes here too), but the text is shown as it is: ``markup``
        is accepted for the signature's sake and ignored."""
        super().notify(
            terminal_safe(message, multiline=True),
            title=terminal_safe(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )
