"""The http backend's log stream: resume by seq, gaps, dedupe, following, and a node that dies mid-stream.

Real servers throughout: hand-made SSE apps for the cases a real node cannot be made to produce on cue
(a gap, a duplicate, a malformed event), the real node server over the demo and local backends for the rest,
and ``fleetdeck node serve`` in a subprocess for the kill-and-restart test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from backends.demo import DemoBackend
from backends.errors import NotFound, Unreachable
from backends.local.backend import LocalBackend
from backends.local.reporter import AgentReporter
from backends.model import LogRecord, to_json
from backends.node_api import PREFIX, LogGap
from backends.node_server.app import create_app

from .serving import ServedNode, same_state_home, serve_asgi
from .test_http_backend_support import FakeNode, backend_for, in_turn, reply, sse_reply

LOGS = f"{PREFIX}/logs"
T0 = 1_767_225_600.0
WAIT_S = 60.0  # a deadline for a test that would otherwise hang, never an assertion about speed


def record(seq: int, message: str | None = None) -> str:
    line = LogRecord(seq=seq, ts=T0 + seq, level="info", source="a1", message=message or f"line {seq}")
    return to_json(line).decode()


def log_event(seq: int) -> tuple[str, str, int]:
    return ("log", record(seq), seq)


async def collect(records: AsyncIterator[LogRecord]) -> list[LogRecord]:
    return [r async for r in records]


# --- hand-made streams -----------------------------------------------------------------------------------


async def test_a_gap_becomes_one_warning_record_and_seqs_stay_increasing() -> None:
    gap = to_json(LogGap(after_seq=2, next_seq=10, missed=7)).decode()
    events = [log_event(1), log_event(2), ("gap", gap, 9), log_event(10), log_event(11)]
    node = FakeNode({LOGS: sse_reply(events)})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            got = await collect(backend.logs())
    assert [r.seq for r in got] == [1, 2, 9, 10, 11]
    warning = got[2]
    assert (warning.level, warning.source, warning.fields) == ("warning", "node", {"gap": 7})
    assert "7 log lines" in warning.message and "dropped" in warning.message


async def test_duplicates_and_unknown_events_are_dropped() -> None:
    events = [log_event(5), log_event(5), log_event(4), ("metrics", '{"x":1}', None), log_event(6)]
    node = FakeNode({LOGS: sse_reply(events)})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            got = await collect(backend.logs(since_seq=3))
    assert [r.seq for r in got] == [5, 6]


async def test_resume_sends_the_cursor_as_since_seq_and_last_event_id() -> None:
    node = FakeNode({LOGS: sse_reply([log_event(42), log_event(43)])})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            got = await collect(backend.logs(since_seq=41))
    assert [r.seq for r in got] == [42, 43]
    request = node.requests_to(LOGS)[0]
    assert request.headers["last-event-id"] == "41"
    assert request.headers["accept"] == "text/event-stream"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("{not json", "JSON is malformed"),
        (json.dumps({"seq": "7", "ts": 1.0, "level": "info", "source": "a", "message": "m"}), "at `$.seq`"),
        (json.dumps({"seq": 7, "ts": 1.0, "level": "loud", "source": "a", "message": "m"}), "at `$.level`"),
        (json.dumps({"seq": 7}), "missing required field"),
    ],
    ids=["malformed", "wrong-type", "bad-level", "missing-fields"],
)
async def test_a_malformed_event_is_an_error_in_words(data: str, words: str) -> None:
    node = FakeNode({LOGS: sse_reply([log_event(1), ("log", data, 7)])})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            got: list[LogRecord] = []
            with pytest.raises(Unreachable) as caught:
                async for line in backend.logs(follow=True):
                    got.append(line)
    assert [r.seq for r in got] == [1]  # the good line before it still came through
    assert str(caught.value).startswith("node gpu-01 sent a 'log' event that is not a LogRecord: ")
    assert words in str(caught.value)


@pytest.mark.parametrize("name", ["problem", "error"], ids=["problem", "error-from-a-revision-1-node"])
async def test_a_failure_event_keeps_its_kind_under_either_name(name: str) -> None:
    problem = {"type": "urn:x", "title": "Not found", "status": 404, "detail": "no agent a9"}
    node = FakeNode({LOGS: sse_reply([log_event(1), (name, json.dumps(problem), None)])})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            with pytest.raises(NotFound, match=r"^no agent a9$"):
                await collect(backend.logs())


def dropping_stream(*seqs: int) -> Any:
    """Send these records, then die mid-stream (the connection is cut, the chunked body left incomplete)."""

    async def handler(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = "".join(f"event: log\nid: {s}\ndata: {record(s)}\n\n" for s in seqs)
        await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
        raise ConnectionResetError("cut on purpose")

    return handler


async def test_a_dropped_stream_resumes_from_the_last_seq_by_itself() -> None:
    node = FakeNode({LOGS: in_turn(dropping_stream(1, 2, 3), sse_reply([log_event(3), log_event(4)]))})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            got = await collect(backend.logs())
    assert [r.seq for r in got] == [1, 2, 3, 4]
    first, second = node.requests_to(LOGS)
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "3"


async def test_a_node_that_stays_away_ends_the_stream_with_unreachable_and_a_resume_point() -> None:
    node = FakeNode({LOGS: dropping_stream(1, 2)})  # every try dies
    with serve_asgi(node) as url:
        backend = backend_for(url, options={"stream_reconnect_s": 1.0})
        got: list[LogRecord] = []
        async with backend:
            with pytest.raises(Unreachable, match=r"lost the log stream of node gpu-01 .*resume from seq 2"):
                async for line in backend.logs(follow=True):
                    got.append(line)
    assert [r.seq for r in got] == [1, 2]
    assert len(node.requests_to(LOGS)) >= 2  # it did try again before giving up


async def test_a_stream_that_is_not_a_stream() -> None:
    node = FakeNode({LOGS: reply(200, b"<html>please log in</html>", "text/html")})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            with pytest.raises(Unreachable, match="not a log stream: an HTML page"):
                await collect(backend.logs())


# --- the real node server --------------------------------------------------------------------------------


async def test_logs_over_a_served_demo_node_are_its_own_and_resume_by_seq() -> None:
    demo = DemoBackend(seed=7, clock=lambda: T0, genesis=T0 - 3600)
    own = await collect(demo.logs())
    assert len(own) > 100
    middle = own[len(own) // 2].seq
    with serve_asgi(create_app(demo)) as url:
        async with backend_for(url) as backend:
            everything = await collect(backend.logs())
            rest = await collect(backend.logs(since_seq=middle))
    assert everything == own
    assert rest == [r for r in own if r.seq > middle]


async def wait_for_lines(got: list[LogRecord], count: int, task: asyncio.Task[None]) -> None:
    """Until ``got`` has ``count`` lines (or the reader failed); a hung stream fails the test at WAIT_S."""

    async def until() -> None:
        while len(got) < count and not task.done():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(until(), WAIT_S)
    if task.done() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def follow_into(backend: Backend, got: list[LogRecord], source: str) -> asyncio.Task[None]:
    async def read() -> None:
        async for line in backend.logs(follow=True):
            if line.source == source or (line.source == "node" and "gap" in line.fields):
                got.append(line)

    return asyncio.create_task(read())


async def test_follow_delivers_new_lines(tmp_path: Path) -> None:
    state = tmp_path / "node"
    reporter = AgentReporter("writer", state_dir=state)
    reporter.log("info", "before 0")
    with serve_asgi(create_app(LocalBackend(state_dir=state))) as url:
        async with backend_for(url) as backend:
            got: list[LogRecord] = []
            reader = follow_into(backend, got, "writer")
            await wait_for_lines(got, 1, reader)
            for i in range(5):
                reporter.log("warning", f"after {i}", i=i)
            await wait_for_lines(got, 6, reader)
            reader.cancel()
    reporter.close()
    assert [r.message for r in got] == ["before 0", *(f"after {i}" for i in range(5))]
    assert got[-1].fields == {"i": 4} and got[-1].level == "warning"


async def test_a_node_killed_and_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state = tmp_path / "node"
    reporter = AgentReporter("writer", state_dir=state)
    expected: list[str] = []

    def write(batch: str, count: int) -> None:
        for i in range(count):
            expected.append(f"{batch} {i}")
            reporter.log("info", f"{batch} {i}")

    write("before", 50)
    served = ServedNode(
        "--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-access-log", env=same_state_home(cli_env)
    )
    await asyncio.to_thread(served.start)
    try:
        async with backend_for(served.url, options={"stream_reconnect_s": 60}) as backend:
            got: list[LogRecord] = []
            reader = follow_into(backend, got, "writer")
            await wait_for_lines(got, 50, reader)
            await asyncio.to_thread(served.kill)
            write("while down", 30)  # the store is the hub: agents keep writing while the server is away
            await asyncio.to_thread(served.restart)
            write("after", 20)
            await wait_for_lines(got, 100, reader)
            await asyncio.sleep(0.5)  # room for a doubled line to show up, if one were coming
            reader.cancel()
    finally:
        await asyncio.to_thread(served.stop)
        reporter.close()
    assert [r.message for r in got] == expected
    seqs = [r.seq for r in got]
    assert seqs == sorted(set(seqs))


async def test_the_caller_can_resume_after_giving_up(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The console's log worker resumes from ``link.last_seq`` after an Unreachable: nothing lost then."""
    state = tmp_path / "node"
    reporter = AgentReporter("writer", state_dir=state)
    for i in range(10):
        reporter.log("info", f"line {i}")
    served = ServedNode(
        "--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-access-log", env=same_state_home(cli_env)
    )
    await asyncio.to_thread(served.start)
    try:
        async with backend_for(served.url, options={"stream_reconnect_s": 0.5}) as backend:
            got: list[LogRecord] = []
            reader = follow_into(backend, got, "writer")
            await wait_for_lines(got, 10, reader)
            await asyncio.to_thread(served.kill)
            with pytest.raises(Unreachable, match="lost the log stream"):
                await asyncio.wait_for(reader, WAIT_S)
            for i in range(10, 15):
                reporter.log("info", f"line {i}")
            await asyncio.to_thread(served.restart)
            last = got[-1].seq
            rest = [r async for r in backend.logs(since_seq=last) if r.source == "writer"]
    finally:
        await asyncio.to_thread(served.stop)
        reporter.close()
    assert [r.message for r in got + rest] == [f"line {i}" for i in range(15)]
