"""terminal_safe and its helpers: every control shown, never obeyed; markup shown as written; JSON exact."""

from __future__ import annotations

import json
import random

import pytest
from rich.console import Console
from rich.text import Text
from textual.content import Content

from backends.safe_text import json_safe, json_safe_bytes, terminal_safe
from widgets.safe import safe_content, safe_markup, safe_text

from .hostile import CORPUS, PAYLOAD, assert_no_raw_controls


@pytest.mark.parametrize("name", list(CORPUS))
def test_each_hostile_string_is_shown_visibly(name: str) -> None:
    text, shown = CORPUS[name]
    assert terminal_safe(text) == shown
    assert_no_raw_controls(terminal_safe(text), name)


def test_plain_text_comes_back_as_the_same_object() -> None:
    # the log pane's hot path: nothing to show differently, nothing copied
    for text in ("coder-07: step 4/10 done", "GPU 3 · 81°C ▲ · 412/700 W", "日本語のログ", "", "a  b"):
        assert terminal_safe(text) is text


def test_every_c0_and_c1_control_and_del_is_replaced() -> None:
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
        shown = terminal_safe(f"<{chr(code)}>")
        assert chr(code) not in shown or code == 0x09, hex(code)
        assert_no_raw_controls(shown, hex(code))
    assert terminal_safe("\x00\x1b\x7f") == "␀␛␡"
    assert terminal_safe("\x85") == "\\x85"


def test_bidi_controls_and_separators_are_named() -> None:
    for code in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        assert terminal_safe(chr(code)) == f"⟨U+{code:04X}⟩"


def test_lone_surrogates_are_named_so_the_text_can_be_encoded() -> None:
    shown = terminal_safe("bad \udcff byte")
    assert shown == "bad ⟨U+DCFF⟩ byte"
    shown.encode("utf-8")


def test_newline_is_shown_in_one_line_text_and_kept_in_multi_line_text() -> None:
    assert terminal_safe("one\ntwo") == "one␤two"
    assert terminal_safe("one\ntwo\r\nthree\rx", multiline=True) == "one\ntwo\nthree␍x"
    assert terminal_safe("\x1b[2J\nx", multiline=True) == "␛[2J\nx"


def test_tab_becomes_spaces() -> None:
    assert terminal_safe("a\tb") == "a    b"


def test_none_and_other_values() -> None:
    assert terminal_safe(None) == ""
    assert terminal_safe(42) == "42"
    assert terminal_safe(ValueError("\x1b[31mred")) == "␛[31mred"


# --- markup: shown as written --------------------------------------------------------------------------


def _rendered(renderable: object) -> str:
    console = Console(width=200, file=None, color_system=None, record=True, legacy_windows=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def test_safe_text_is_never_parsed_as_markup() -> None:
    for text in ("[link=http://x]click[/link]", "[/]", "[bold red]x", "[$accent]v"):
        made = safe_text(text, style="bold")
        assert isinstance(made, Text) and made.plain == text and not made.spans
        assert text in _rendered(made)
        assert safe_content(text).plain == text


def test_safe_markup_round_trips_through_textual_markup() -> None:
    rng = random.Random(12)
    alphabet = "[]\\/$@=#ab "
    cases = ["[link=http://x]click[/link]", "[/]", "[bold red]x", "[$accent]v", "a\\[b]", "x\\", "\\\\[b]"]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))) for _ in range(3000)]
    for text in cases:
        assert Content.from_markup(safe_markup(text)).plain == text, text
    assert Content.from_markup(safe_markup("\x1b]0;x\x07[b]")).plain == "␛]0;x␇[b]"


def test_safe_multiline_text_keeps_line_breaks() -> None:
    assert safe_text("a\x1b\nb", multiline=True).plain == "a␛\nb"


# --- JSON: exact, and safe on a terminal ---------------------------------------------------------------


def test_json_safe_escapes_what_the_encoder_leaves_raw_and_round_trips() -> None:
    value = {"message": PAYLOAD + "\n\u2028 ünïcødé 日本", "nested": [PAYLOAD]}
    raw = json.dumps(value, ensure_ascii=False)
    assert "\u202e" in raw and "\x9b" in raw  # what the encoder alone lets through
    safe = json_safe(raw)
    assert_no_raw_controls(safe.encode(), "json")
    assert json.loads(safe) == value
    assert "ünïcødé 日本" in safe  # readable text stays readable


def test_json_safe_bytes_matches_msgspec_output() -> None:
    from backends.model import LogRecord, from_json, to_json

    record = LogRecord(seq=1, ts=0.0, level="info", source="a", message=PAYLOAD, fields={"k": PAYLOAD})
    safe = json_safe_bytes(to_json(record))
    assert_no_raw_controls(safe, "msgspec json")
    assert from_json(safe, LogRecord) == record
    plain = to_json(LogRecord(seq=1, ts=0.0, level="info", source="a", message="ok"))
    assert json_safe_bytes(plain) is plain
