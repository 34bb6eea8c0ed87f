"""``GET /v1/logs`` read by SSE clients nobody here wrote, as a browser's EventSource reads it.

aiohttp-sse-client (an EventSource after the WHATWG spec: it reconnects by itself, sends Last-Event-Id, and
takes ``retry:``), sseclient-py and httpx-sse, against real served nodes: the local node served by
``fleetdeck node serve`` in a subprocess, and the node server over a backend whose log fails mid-stream.
The failure event is `problem`, never `error` (an EventSource's own event for a dropped connection), except
for the one client that knows no other name: an http backend of API revision 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sseclient
from aiohttp_sse_client import client as aiohttp_sse
from httpx_sse import connect_sse

from backends.demo.backend import DemoBackend
from backends.errors import Unsupported
from backends.local.reporter import AgentReporter
from backends.local.store import Store
from backends.model import LogRecord, from_json
from backends.node_api import (
    API_REVISION,
    API_REVISION_HEADER,
    HTTP_BACKEND_USER_AGENT,
    SSE_RETRY_MS,
    Problem,
)
from backends.node_server.app import create_app
from console.core.clock import FrozenClock
from tests.conftest import T0
from tests.serving import ServedNode, owner_auth, serve_asgi
from tests.test_http_backend_support import backend_for

DEADLINE_S = 60.0  # a guard against hanging, never an assertion about speed
FAILURE = "the log of this node cannot be read past seq 3"


@pytest.fixture
def local_node(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[tuple[ServedNode, AgentReporter]]:
    """The local node served by the real CLI, and a reporter writing into its log."""
    state = tmp_path / "node"
    Store(state).close()
    node = ServedNode("--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-access-log", env=cli_env)
    with node, AgentReporter("writer", state_dir=state) as reporter:
        yield node, reporter


def writer_lines(records: list[LogRecord]) -> list[str]:
    return [r.message for r in records if r.source == "writer"]


# --- retry, ids, resume ------------------------------------------------------------------------------------


def test_the_stream_opens_with_retry_and_every_log_event_has_its_seq_as_id(
    local_node: tuple[ServedNode, AgentReporter],
) -> None:
    node, reporter = local_node
    for i in range(5):
        reporter.log("info", f"line {i}")
    url = f"{node.url}/v1/logs"
    # the raw bytes: the reconnect delay is the stream's first field, alone
    with httpx.stream("GET", url, params={"follow": "0"}, headers=node.auth(), timeout=DEADLINE_S) as answer:
        body = answer.read()
    assert body.startswith(f"retry: {SSE_RETRY_MS}\n\n".encode())
    # httpx-sse surfaces the field as an event of its own
    with (
        httpx.Client(headers=node.auth(), timeout=DEADLINE_S) as client,
        connect_sse(client, "GET", url, params={"follow": "0"}) as source,
    ):
        first, *rest = list(source.iter_sse())
    assert (first.retry, first.data) == (SSE_RETRY_MS, "")
    assert {e.event for e in rest} == {"log"}
    # sseclient-py: only events with data are dispatched; each log event's id is its record's seq
    with httpx.stream("GET", url, params={"follow": "0"}, headers=node.auth(), timeout=DEADLINE_S) as answer:
        events = list(sseclient.SSEClient(answer.iter_bytes()).events())
    records = [from_json(e.data, LogRecord) for e in events]
    assert {e.event for e in events} == {"log"}
    assert [e.id for e in events] == [str(r.seq) for r in records]
    assert writer_lines(records) == [f"line {i}" for i in range(5)]


async def test_an_eventsource_resumes_with_last_event_id_after_the_stream_ends(
    local_node: tuple[ServedNode, AgentReporter],
) -> None:
    node, reporter = local_node
    for i in range(10):
        reporter.log("info", f"line {i}")
    opened: list[int] = []
    ended: list[int] = []

    def on_end() -> None:
        # the first stream (follow=0) ended with the lines there were: more are written while the client
        # waits the server's retry delay, and its reconnect must bring exactly those
        ended.append(len(opened))
        if len(ended) == 1:
            for i in range(10, 15):
                reporter.log("info", f"line {i}")

    got: list[tuple[int, Any]] = []  # (connection number, event)
    async with aiohttp_sse.EventSource(
        f"{node.url}/v1/logs?follow=0",
        headers=node.auth(),
        on_open=lambda: opened.append(1),
        on_error=on_end,
    ) as source:

        async def read() -> None:
            async for event in source:
                got.append((len(opened), event))
                if from_json(event.data, LogRecord).message == "line 14":
                    return

        await asyncio.wait_for(read(), DEADLINE_S)
    assert len(opened) == 2 and ended[0] == 1  # one reconnect, made by the client itself
    assert {event.type for _, event in got} == {"log"}
    records = [from_json(event.data, LogRecord) for _, event in got]
    assert [event.last_event_id for _, event in got] == [str(r.seq) for r in records]
    seqs = [r.seq for r in records]
    assert seqs == sorted(set(seqs))  # nothing repeated across the reconnect
    assert writer_lines(records) == [f"line {i}" for i in range(15)]
    second = [from_json(event.data, LogRecord) for n, event in got if n == 2]
    assert writer_lines(second) == [f"line {i}" for i in range(10, 15)]  # the resume brought only the new


# --- a stream that fails -----------------------------------------------------------------------------------


class _FailingDemo(DemoBackend):
    """A node whose log gives three records, then fails (the answer has begun: the status is in an event)."""

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        count = 0
        async for record in super().logs(since_seq, follow=False):
            yield record
            count += 1
            if count == 3:
                break
        raise Unsupported(FAILURE)


@pytest.fixture
def failing_url() -> Iterator[str]:
    backend = _FailingDemo(seed=7, agents=6, clock=FrozenClock(T0 + 60))
    with serve_asgi(create_app(backend)) as url:
        yield url


def _raw_events(url: str, headers: dict[str, str]) -> list[sseclient.Event]:
    with httpx.stream(
        "GET", f"{url}/v1/logs", headers={**owner_auth(), **headers}, timeout=DEADLINE_S
    ) as answer:
        assert answer.status_code == 200
        return list(sseclient.SSEClient(answer.iter_bytes()).events())


async def test_an_eventsource_gets_a_problem_event_it_cannot_take_for_its_own_error(failing_url: str) -> None:
    got: list[Any] = []
    async with aiohttp_sse.EventSource(f"{failing_url}/v1/logs", headers=owner_auth()) as source:

        async def read() -> None:
            async for event in source:
                got.append(event)
                if event.type != "log":
                    return

        await asyncio.wait_for(read(), DEADLINE_S)
    assert [e.type for e in got] == ["log", "log", "log", "problem"]
    problem = from_json(got[-1].data, Problem)
    assert (problem.status, problem.detail) == (501, FAILURE)
    assert problem.type == "urn:fleetdeck:problem:unsupported"


def test_only_an_http_backend_of_revision_1_is_sent_the_old_error_event(failing_url: str) -> None:
    def failure(headers: dict[str, str]) -> str:
        events = _raw_events(failing_url, headers)
        assert [e.event for e in events[:3]] == ["log"] * 3 and len(events) == 4
        assert from_json(events[3].data, Problem).detail == FAILURE
        return events[3].event

    # a revision 1 http backend: its User-Agent, no revision header; `error` is the only name it knows
    assert failure({"User-Agent": HTTP_BACKEND_USER_AGENT}) == "error"
    # this revision's http backend says what it speaks
    revision = {"User-Agent": HTTP_BACKEND_USER_AGENT, API_REVISION_HEADER: str(API_REVISION)}
    assert failure(revision) == "problem"
    # anyone else: browsers, curl, other libraries
    assert failure({"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}) == "problem"
    assert failure({}) == "problem"


async def test_the_http_backend_takes_the_problem_event_for_the_error_it_is(failing_url: str) -> None:
    got: list[LogRecord] = []
    async with backend_for(failing_url) as backend:
        with pytest.raises(Unsupported, match=f"^{FAILURE}$"):
            async for record in backend.logs():
                got.append(record)
    assert len(got) == 3
