"""Update a Static without laying out the whole screen when the new content needs the same room.

``Static.update`` asks for a layout pass every time, and a layout pass re-arranges and repaints every widget
on the screen: on a busy node screen that is tens of milliseconds, paid for every number that changes each
second. The room a Static takes changes only when its width follows its content, or when its height does
and the new content has another number of lines.
"""

from __future__ import annotations

from textual.visual import VisualType
from textual.widget import Widget
from textual.widgets import Static


def update_steady(static: Static, content: VisualType) -> None:
    static.update(content, layout=False)
    if not static.display:
        return  # hidden (display: none) takes no room, whatever it holds
    styles = static.styles
    if not static.is_mounted or not static.size.width or (styles.width is not None and styles.width.is_auto):
        static.refresh(layout=True)
        return
    if styles.height is None or not styles.height.is_auto:
        return  # a fixed height: the room is the same whatever the content
    room = static.content_size
    if static.get_content_height(room, static.app.size, room.width) != room.height:
        static.refresh(layout=True)


def set_border_title(widget: Widget, title: str) -> None:
    """Set a border title only when it changes: Textual repaints the widget on every set, same text or not
    (a panel's title set on every poll of every node adds up)."""
    if widget.border_title != title:
        widget.border_title = title


def set_border_subtitle(widget: Widget, subtitle: str) -> None:
    if widget.border_subtitle != subtitle:
        widget.border_subtitle = subtitle
