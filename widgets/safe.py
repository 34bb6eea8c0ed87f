"""Untrusted text (from agents, nodes, logs) as Rich ``Text`` and Textual ``Content``: never parsed as markup.

A plain ``str`` handed to a DataTable cell, a Rich table, a ``Static``, a ``Label``, a border title or the
command palette is parsed as markup: an agent named ``[link=https://evil]ok[/]`` would become a link, a
message holding ``[/]`` would end the caller's styles or fail to parse. These helpers take the text through
:func:`backends.safe_text.terminal_safe` (controls shown, never obeyed) and wrap it in an object that is
shown as it is. :func:`safe_markup` is for the few APIs that take nothing but a markup string.
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from backends.safe_text import terminal_safe


def safe_text(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """A Rich ``Text`` of ``value``, controls made visible, no markup."""
    return Text(terminal_safe(value, multiline=multiline), style=style)


def safe_content(value: object, *, multiline: bool = False) -> Content:
    """A Textual ``Content`` of ``value``, controls made visible, no markup."""
    return Content(terminal_safe(value, multiline=multiline))


def safe_markup(value: object) -> str:
    """``value`` as Textual content markup that renders back to exactly its safe text.

    Textual's markup reads ``\\[`` as a literal bracket and leaves every other backslash alone, so escaping
    each ``[`` is enough (``textual.markup.escape`` only escapes brackets that look like tags, and misses
    ``[$var]``); tests/test_safe_text.py checks the round trip on random bracket-and-backslash strings.
    """
    return terminal_safe(value).replace("[", "\\[")
