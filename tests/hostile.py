"""Hostile text for the terminal-safety tests: escape sequences, controls, bidi and markup, and the checks
that none of it reaches a terminal raw (DESIGN.md §3, "Untrusted text")."""

from __future__ import annotations

import re

# name -> (hostile text, what it must look like once made safe)
CORPUS: dict[str, tuple[str, str]] = {
    "osc 0 title": ("\x1b]0;pwned\x07", "␛]0;pwned␇"),
    "osc 52 clipboard": ("\x1b]52;c;cHduZWQ=\x07", "␛]52;c;cHduZWQ=␇"),
    "csi clear screen": ("\x1b[2J", "␛[2J"),
    "dcs": ("\x1bPq#0;2;0;0;0\x1b\\", "␛Pq#0;2;0;0;0␛\\"),
    "8-bit csi": ("\x9b2J", "\\x9b2J"),
    "bel": ("ding\x07", "ding␇"),
    "backspace": ("abc\x08\x08\x08xyz", "abc␈␈␈xyz"),
    "cr overwrite": ("safe\rEVIL", "safe␍EVIL"),
    "nul": ("a\x00b", "a␀b"),
    "del": ("a\x7fb", "a␡b"),
    "bidi override": ("\u202egnp.exe", "⟨U+202E⟩gnp.exe"),
    "bidi isolate": ("x\u2066y\u2069", "x⟨U+2066⟩y⟨U+2069⟩"),
    "link markup": ("[link=http://x]click[/link]", "[link=http://x]click[/link]"),
    "close-all markup": ("[/]", "[/]"),
    "style markup": ("[bold red]x", "[bold red]x"),
    "variable markup": ("[$accent]v", "[$accent]v"),
    "newline": ("one\ntwo", "one␤two"),
}

# One string with the whole corpus but the newline, for fields that are shown on one line and may be cut.
PAYLOAD = " ".join(text for name, (text, _) in CORPUS.items() if name != "newline")
# What argv can carry (no NUL: the kernel ends an argument there).
ARGV_PAYLOAD = " ".join(text for name, (text, _) in CORPUS.items() if name not in ("newline", "nul"))
# A short one that fits any cell: the title sequence, then markup that would turn into a link.
SHORT = "\x1b]0;pwned\x07[link=http://x]click[/link]"
SHORT_SHOWN = "␛]0;pwned␇[link=http://x]click[/link]"

# Characters no output of fleetdeck may carry raw: C0 but the newline, DEL, C1, bidi controls and separators.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def assert_no_raw_controls(output: bytes | str, where: str) -> str:
    """Fail if ``output`` (bytes as written to a terminal, or text) holds a raw control; returns the text.

    The bytes are checked for ESC and BEL and the UTF-8 form of the 8-bit CSI (``C2 9B``), then decoded
    strictly: a lone 0x9b byte (an 8-bit CSI in a Latin-1 stream) would not decode. (0x9b on its own is not
    searched for: it is a continuation byte of ordinary characters, ␛ U+241B among them.)
    """
    if isinstance(output, bytes):
        for raw in (b"\x1b", b"\x07", b"\xc2\x9b"):
            assert raw not in output, f"{where}: raw {raw!r} at byte {output.index(raw)}: {output!r}"
        text = output.decode("utf-8")
    else:
        text = output
    found = RAW.search(text)
    assert found is None, (
        f"{where}: raw {found.group()!r} at {found.start()}: {text[max(0, found.start() - 60) :][:160]!r}"
    )
    return text
