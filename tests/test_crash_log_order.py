"""An agent's output around a crash, through the real `fleetdeck run` and `fleetdeck logs`: the lines keep the
order the process wrote them in across stdout and stderr, and a Python traceback is error lines as a whole."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .agents.local_node import LocalNode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals")

# The crash to keep in order: a line printed and flushed, then an exception.
PRINT_THEN_CRASH = textwrap.dedent(
    """
    print("loading the batch", flush=True)
    print("about to divide", flush=True)

    def divide(a, b):
        return a / b

    divide(1, 0)
    """
)

# Writes alternately to stdout and stderr, each line read by the supervisor before the next is written
# (FIONREAD on a pipe says how much is still unread): the order is then known exactly, whatever the
# scheduling, and the log must keep it.
INTERLEAVED = textwrap.dedent(
    """
    import array, fcntl, sys, termios, time

    def read_by_the_supervisor(stream):
        unread = array.array("i", [0])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            fcntl.ioctl(stream.fileno(), termios.FIONREAD, unread)
            if unread[0] == 0:
                return
            time.sleep(0.001)

    for i in range(12):
        stream = sys.stdout if i % 3 != 2 else sys.stderr
        print(f"step {i}", file=stream, flush=True)
        read_by_the_supervisor(stream)
    raise RuntimeError("gave up at step 12")
    """
)

CHAINED = textwrap.dedent(
    """
    import sys
    def lookup():
        return {}["model"]
    try:
        lookup()
    except KeyError as exc:
        print("falling back", flush=True)
        raise RuntimeError("no model configured") from exc
    """
)


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def own(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The agent's own lines, without the supervisor's "[fleetdeck] ..." ones."""
    return [r for r in records if not (r["fields"] or {}).get("supervisor")]


def stream_of(record: dict[str, Any]) -> str:
    return str((record["fields"] or {}).get("stream", "stdout"))


def crash(node: LocalNode, name: str, program: str) -> list[dict[str, Any]]:
    run = node.start(name, sys.executable, "-c", program)
    assert run.wait(timeout=60) == 1, "`fleetdeck run` exits with the crashed agent's code"
    return own(node.logs("--agent", name))


def test_a_line_flushed_before_a_crash_comes_before_the_traceback(node: LocalNode) -> None:
    for attempt in range(3):  # the order must hold every time, not by luck of the scheduler
        name = f"divider-{attempt}"
        records = crash(node, name, PRINT_THEN_CRASH)
        messages = [r["message"] for r in records]
        assert messages[:2] == ["loading the batch", "about to divide"], messages
        assert [r["level"] for r in records[:2]] == ["info", "info"]
        traceback = records[2:]
        assert traceback[0]["message"] == "Traceback (most recent call last):", messages
        assert traceback[-1]["message"] == "ZeroDivisionError: division by zero", messages
        frames = [r for r in traceback if r["message"].lstrip().startswith('File "<string>"')]
        assert len(frames) == 2, messages
        assert {r["level"] for r in traceback} == {"error"}, [(r["level"], r["message"]) for r in traceback]
        assert {stream_of(r) for r in traceback} == {"stderr"}, "a stderr line still says so"

        # the text form shows the same order, the level of every line, and --level error the traceback
        text = [line for line in node.ok("logs", "--agent", name).splitlines() if "[fleetdeck]" not in line]
        assert "INFO" in text[1] and text[1].endswith(f"{name}: about to divide"), text
        assert text[2].split()[1:] == ["ERROR", f"{name}:", "Traceback", "(most", "recent", "call", "last):"]
        assert all(line.split()[1] == "ERROR" for line in text[2:]), text
        errors = node.logs("--agent", name, "--level", "error")
        assert [r["message"] for r in errors] == [r["message"] for r in traceback]


def test_stdout_and_stderr_keep_the_order_they_were_written_in(node: LocalNode) -> None:
    records = crash(node, "stepper", INTERLEAVED)
    written = [(f"step {i}", "stdout" if i % 3 != 2 else "stderr") for i in range(12)]
    steps = [(r["message"], stream_of(r)) for r in records if r["message"].startswith("step ")]
    assert steps == written
    assert all(r["level"] == "info" for r in records if r["message"].startswith("step "))
    tail = records[len(steps) :]
    assert tail[0]["message"] == "Traceback (most recent call last):"
    assert tail[-1]["message"] == "RuntimeError: gave up at step 12"
    assert {r["level"] for r in tail} == {"error"}
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs), "the resume cursor follows the order too"


def test_a_chained_traceback_is_error_lines_from_its_first_line_to_its_last(node: LocalNode) -> None:
    records = crash(node, "chained", CHAINED)
    assert records[0]["message"] == "falling back" and records[0]["level"] == "info"
    traceback = records[1:]
    messages = [r["message"] for r in traceback]
    assert messages[0] == "Traceback (most recent call last):"
    assert "KeyError: 'model'" in messages
    assert "The above exception was the direct cause of the following exception:" in messages
    assert messages.count("Traceback (most recent call last):") == 2
    assert messages[-1] == "RuntimeError: no model configured"
    assert {r["level"] for r in traceback} == {"error"}, [(r["level"], r["message"]) for r in traceback]


def test_a_syntax_error_without_a_traceback_header_is_error_lines(node: LocalNode) -> None:
    records = crash(node, "typo", "print('unclosed)")
    assert records, "the syntax error was logged"
    assert records[-1]["message"].startswith("SyntaxError: unterminated string literal")
    assert records[0]["message"].startswith('  File "<string>", line 1')
    assert {r["level"] for r in records} == {"error"}, [(r["level"], r["message"]) for r in records]
    as_json = [json.loads(line) for line in node.ok("logs", "--agent", "typo", "--json").splitlines()]
    assert [r["level"] for r in own(as_json)] == ["error"] * len(records)
