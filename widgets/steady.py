"""Update a Static without laying out the whole screen when the new content needs the same room.

``Static.update`` asks for a layout pass every time, and a layout pass re-arranges and repaints every widget
on the screen: on a busy node screen that is tens of milliseconds, paid for every number that changes each
second. The room a Static takes changes only when its width follows its content, or when its height does
and the new content has another number of lines.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from textual.visual import VisualType
from textual.widget import Widget
from textual.widgets import Static

from .safe import safe_content

# The plain text each widget's border title and subtitle were last set to: Textual keeps them as markup, and
# comparing plain text here is cheaper than rendering the new title to markup to compare.
_TITLES: WeakKeyDictionary[Widget, str] = WeakKeyDictionary()
_SUBTITLES: WeakKeyDictionary[Widget, str] = WeakKeyDictionary()


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
    """Set a border title, as plain text, only when it changes: Textual repaints the widget on every set,
    same text or not (a panel's title set on every poll of every node adds up).

    Titles name nodes, agents and errors, so the text is shown as it is (controls made visible) and never
    parsed as markup, which Textual would do with a plain string."""
    if _TITLES.get(widget) != title:
        _TITLES[widget] = title
        widget.border_title = safe_content(title)


def set_border_subtitle(widget: Widget, subtitle: str) -> None:
    """As :func:`set_border_title`, for the subtitle (a panel's data age: "offline: <the node's error>")."""
    if _SUBTITLES.get(widget) != subtitle:
        _SUBTITLES[widget] = subtitle
        widget.border_subtitle = safe_content(subtitle)
