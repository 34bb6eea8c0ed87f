"""The key bar at the bottom of a screen, filled in the order of what matters most, as far as it has room.

Textual's Footer lists keys in binding order, focused widget first and the app's last, and cuts the line at
the screen's edge: at 80 columns the Node screen lost `s`, and `? Help`, the one key that leads to all the
others. This footer takes the keys in a priority order (binding ids) the screen gives, keeps each one that
still fits, and lays them out in that order; a key left out is still bound, and listed in Help. A key the
screen hides from Textual's footer (``show=False``) is shown here only if the order names it, when there
is room for it. Every key is drawn compactly (no padding round the key), so more of them fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # the footer's own key widget (textual<9)

# What this footer leans on that Textual keeps private (textual<9): the footer's key widget, and the flag
# Footer sets once the screen's bindings are known. tests/test_textual_private.py checks each still exists.
TEXTUAL_PRIVATE_PARTS: tuple[str, ...] = (
    "textual.widgets._footer.FooterKey",
    "textual.widgets.Footer._bindings_ready",
)

KEY_GAP = 1  # columns between two keys (a compact FooterKey's right margin)


def key_width(key_display: str, description: str) -> int:
    """Columns a compact key takes: the key, a space, its description, the gap after it."""
    return cell_len(key_display) + (1 + cell_len(description) if description else 0) + KEY_GAP


def fit_keys(keys: Iterable[tuple[str, int]], width: int) -> list[str]:
    """The ids of ``keys`` (id, columns), taken in order, that fit in ``width`` columns together: a key too
    wide for what is left is skipped, and a narrower one after it may still fit."""
    shown: list[str] = []
    left = width
    for key_id, columns in keys:
        if columns <= left:
            shown.append(key_id)
            left -= columns
    return shown


class KeyFooter(Footer):
    def __init__(self, *, order: Sequence[str] = (), **kwargs: object) -> None:
        super().__init__(compact=True, show_command_palette=False, **kwargs)  # type: ignore[arg-type]
        self.order = tuple(order)
        self._composed_width = 0

    def _candidates(self) -> list[tuple[str, Binding, bool, str]]:
        """(id, binding, enabled, tooltip) of every key that may be shown, most important first."""
        by_id: dict[str, tuple[str, Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.id is None and not binding.show:
                continue  # Textual's own hidden keys (ctrl+q, ctrl+c): an id of ours must not match them
            key_id = binding.id or f"{binding.action}:{binding.key}"
            by_id.setdefault(key_id, (key_id, binding, enabled, tooltip))  # one key per action
        ranked = [by_id[key_id] for key_id in self.order if key_id in by_id]
        ranked += [c for key_id, c in by_id.items() if key_id not in self.order and c[1].show]
        return ranked

    def _width(self) -> int:
        return self.size.width or self.screen.size.width or self.app.size.width

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self._width()
        self._composed_width = width
        candidates = self._candidates()
        displays = {key_id: self.app.get_key_display(binding) for key_id, binding, _, _ in candidates}
        sizes = ((key_id, key_width(displays[key_id], b.description)) for key_id, b, _, _ in candidates)
        shown = set(fit_keys(sizes, width))
        for key_id, binding, enabled, tooltip in candidates:
            if key_id in shown:
                yield FooterKey(
                    binding.key,
                    displays[key_id],
                    binding.description,
                    binding.action,
                    disabled=not enabled,
                    tooltip=tooltip or binding.description,
                ).data_bind(compact=Footer.compact)

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)
