"""Text from agents, nodes and logs made safe to show on a terminal: the one place that decides how.

Everything an agent, a node or a log line says (names, messages, health reasons, log lines, labels, payloads,
error texts) is untrusted: AI agents print model output, and a remote node may be anyone's. Written to a
terminal as it is, ``ESC ] 0 ; ... BEL`` retitles the window, ``ESC [ 2 J`` clears the screen, OSC 52 fills
the clipboard, a bare CR or backspaces overwrite what the operator reads, and a bidi override makes
``gnp.exe`` read as ``exe.png``. So every path to a terminal (the console's widgets, dialogs and
notifications, every CLI table and line, error messages, snapshots) passes such text through
:func:`terminal_safe`, which shows each control character instead of sending it:

- C0 controls and DEL as their Unicode Control Pictures (U+2400-U+2421): ``␛]0;pwned␇``, ``␀``, ``␍``, ``␈``;
  a newline as ``␤`` in one-line text (a table cell, a log line), kept in multi-line text (a detail pane);
  a tab as spaces;
- C1 controls (U+0080-U+009F, e.g. the 8-bit CSI U+009B) as ``\\x9b``;
- bidi embeddings, overrides, isolates and marks, the Arabic letter mark and the line/paragraph separators
  as ``⟨U+202E⟩``; lone surrogates (undecodable bytes) the same way, since they cannot even be encoded.

Escape sequences need no parsing: with their ESC (or 8-bit introducer) shown, the rest is printable text.
Markup is the caller's half of the job: this module returns plain text, and the console hands it to Rich and
Textual as ``Text``/``Content`` objects (``widgets/safe.py``), never as markup to parse.

Pure Python (no Rich, no Textual), so backends, the CLI and the widgets share it. It sits in ``backends``
beside the wire model because the model's strings are what it guards: ``widgets`` may import it as it
imports ``backends.model`` (a deliberate extension of the dependency rule, DESIGN.md §2).

It runs on the log pane's hot path (10,000 lines a second): text with nothing to show differently, nearly
all of it, is returned as is after one C-level scan.
"""

from __future__ import annotations

import re

TAB = "    "
NEWLINE_PICTURE = "\u2424"  # ␤ SYMBOL FOR NEWLINE: reads as "a line break was here"
_BIDI_AND_SEPARATORS = (
    0x061C,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
)

# Everything shown differently; the same set as the translation tables below.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
# What a JSON encoder leaves raw inside strings but a terminal may still obey (it escapes C0 itself).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _one_line_table() -> dict[int, str]:
    table = {code: chr(0x2400 + code) for code in range(0x20)}
    table[0x7F] = "\u2421"  # ␡
    table[0x09] = TAB
    table[0x0A] = NEWLINE_PICTURE
    table.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
    table.update({code: _named(chr(code)) for code in _BIDI_AND_SEPARATORS})
    return table  # surrogates (2,048 of them) are left to _SURROGATE: rare, and cheaper to build


def _named(char: str) -> str:
    return f"⟨U+{ord(char):04X}⟩"


def _name_match(match: re.Match[str]) -> str:
    return _named(match.group())


_ONE_LINE = _one_line_table()
_MULTI_LINE = {**_ONE_LINE, 0x0A: "\n"}


def terminal_safe(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control character, escape-sequence introducer and bidi control made visible.

    ``None`` becomes ``""``; anything else that is not a string is shown as ``str(value)``. With
    ``multiline`` a newline (and a CRLF) stays a line break, for a pane that shows text over several lines;
    otherwise it is shown as ``␤``, so one record stays one line.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    # isprintable is one C loop and true for nearly every line: no regex, no copy
    if text.isprintable() or _UNSAFE.search(text) is None:
        return text
    text = text.replace("\r\n", "\n").translate(_MULTI_LINE) if multiline else text.translate(_ONE_LINE)
    return _SURROGATE.sub(_name_match, text) if not text.isprintable() else text


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_safe(encoded: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` writes it) with C1, DEL and bidi controls
    escaped as ``\\uXXXX`` too: the same JSON value, byte for byte safe on a terminal.

    JSON encoders escape C0 controls but pass these through raw, and a terminal may obey them (an 8-bit CSI,
    a bidi override). Outside strings JSON is plain ASCII, so every match is inside a string, where
    ``\\uXXXX`` decodes back to exactly the character it replaces.
    """
    if encoded.isascii() and "\x7f" not in encoded:
        return encoded
    return _JSON_UNSAFE.sub(_json_escape, encoded)


def json_safe_bytes(encoded: bytes) -> bytes:
    """:func:`json_safe` for UTF-8 encoded JSON (msgspec's output)."""
    if encoded.isascii() and b"\x7f" not in encoded:
        return encoded
    return json_safe(encoded.decode("utf-8", "surrogatepass")).encode("utf-8")
