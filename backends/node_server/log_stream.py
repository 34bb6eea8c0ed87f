"""``GET /v1/logs``: the node's log as server-sent events, resumable by seq.

    retry: 2000             first, on every stream (``SSE_RETRY_MS``): a browser's EventSource waits this
                            long (ms) before it reconnects, not its own default; a field alone, so no event
                            is dispatched

    event: log              one per LogRecord; ``id`` is its seq, so a reconnecting EventSource (or the http
    id: 1042                backend) sends it back as ``Last-Event-ID`` and gets exactly the records after it
    data: {"seq":1042,...}

    event: gap              records between after_seq and next_seq are gone (dropped by the node's retention);
    id: 1999                ``id`` is next_seq - 1, so a resume after the gap does not report it again
    data: {"after_seq":1042,"next_seq":2000,"missed":957}

    event: problem          the backend failed mid-stream (data a Problem); the stream ends after it. Not
    data: {"status":503,..} `error`, which EventSource fires itself on every dropped connection. An http
                            backend of API revision 1 knows only `error`, and is sent that (node_api.py).
                            A browser page closes its EventSource on `problem`, or it reconnects after
                            ``retry`` (and may get the same problem again)
    : ping                  a comment every ``keepalive_s`` while idle, so proxies and clients see it alive

Where a gap is told: a gap is only knowable when seqs are dense (every seq from 1 up was handed out, and
only retention deletes - from the old end). The local store is such a log (SQLite AUTOINCREMENT, one write
lock, retention by age and count): the records "available" are those retention has not deleted, and the
first one after the cursor tells exactly how many were dropped. A backend declares this with a class
attribute ``log_seqs_dense = True`` (the local backend is recognised by name). Other backends (the demo's
seqs are positional, with holes) just start later, and no gap is reported. A client starting from 0 asks
for "whatever you have" and is never told of a gap; a resuming client (cursor > 0) and a long follow (whose
reader fell behind retention) are.

The stream ends when the client disconnects (a watcher on ``receive`` cancels the pump and the writer, and
the backend's generator is closed), or, without ``follow``, after the records there are now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from backends.base import Backend
from backends.errors import BackendError
from backends.model import LogRecord, to_json
from backends.node_api import (
    API_REVISION_HEADER,
    SSE_GAP_EVENT,
    SSE_LOG_EVENT,
    SSE_PROBLEM_EVENT,
    SSE_RETRY_MS,
    LogGap,
    log_failure_event,
    problem,
    problem_for_error,
)

from .problems import fail

log = logging.getLogger("fleetdeck.node_server")

KEEPALIVE_S = 10.0
QUEUE_RECORDS = 1_000  # back-pressure: the pump waits while the client is this far behind
BATCH_RECORDS = 200  # records written per send when a backlog is waiting
_END = object()
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def log_seqs_dense(backend: Backend) -> bool:
    declared = getattr(backend, "log_seqs_dense", None)
    return bool(declared) if declared is not None else backend.name == "local"


def stream_params(request: Request) -> tuple[int, bool]:
    """(cursor, follow) from the query and ``Last-Event-ID``, which wins over ``since_seq``."""
    follow_text = request.query_params.get("follow", "0").strip().lower()
    if follow_text not in _TRUE | _FALSE:
        raise fail(422, "invalid", f"follow must be 1 or 0, not {follow_text!r}", field="follow")
    since_seq = parse_seq(
        request.query_params.get("since_seq", "0"), "since_seq"
    )  # checked even when overridden
    last_event_id = request.headers.get("last-event-id")
    if last_event_id is not None:
        return parse_seq(last_event_id, "Last-Event-ID"), follow_text in _TRUE
    return since_seq, follow_text in _TRUE


MAX_SEQ = 10**18 - 1  # within SQLite's 64-bit integers, with room to spare


def parse_seq(text: str, name: str) -> int:
    """A seq cursor: plain decimal digits only (``int()`` would also take "+5", " 5" and "1_000")."""
    if not re.fullmatch(r"[0-9]{1,18}", text):
        detail = f"{name} must be a whole number from 0 to {MAX_SEQ}, not {text[:40]!r}"
        raise fail(422, "invalid", detail, field=name)
    return int(text)


def sse_event(event: str, data: bytes, event_id: int | None = None) -> bytes:
    """One event. ``data`` is compact JSON (no newlines), so it is a single ``data:`` line."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


PING = b": ping\n\n"
RETRY = f"retry: {SSE_RETRY_MS}\n\n".encode()
_REVISION_HEADER = API_REVISION_HEADER.lower().encode()


def failure_event(scope: Scope) -> str:
    """The failure event's name for this request's client (node_api.log_failure_event)."""
    headers = dict(scope.get("headers") or ())
    user_agent, revision = headers.get(b"user-agent"), headers.get(_REVISION_HEADER)
    return log_failure_event(
        None if user_agent is None else user_agent.decode("latin-1"),
        None if revision is None else revision.decode("latin-1"),
    )


class LogEventStream:
    """The ASGI response for one ``/v1/logs`` request."""

    def __init__(
        self,
        backend: Backend,
        cursor: int,
        follow: bool,
        *,
        keepalive_s: float = KEEPALIVE_S,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.backend = backend
        self.stopping = stopping or asyncio.Event()
        self.cursor = cursor
        self.follow = follow
        self.dense = log_seqs_dense(backend)
        self._last = cursor  # the seq of the last record sent (or the client's cursor)
        self.keepalive_s = keepalive_s
        self.failure_event = SSE_PROBLEM_EVENT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.failure_event = failure_event(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
                ],
            }
        )
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_RECORDS)
        pump = asyncio.create_task(self._pump(queue))
        writer = asyncio.create_task(self._write(queue, send))
        watcher = asyncio.create_task(_disconnected(receive))
        stop = asyncio.create_task(self.stopping.wait())  # the server is shutting down
        tasks = (pump, writer, watcher, stop)
        try:
            done, _ = await asyncio.wait({writer, watcher, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if watcher in done or (writer in done and writer.exception() is not None):
            return  # the client left (or the socket broke): nothing more to say to it
        # a client that stopped reading (its socket buffers full) must not hold the end, nor a shutdown
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(send({"type": "http.response.body", "body": b"", "more_body": False}), 1.0)

    async def _pump(self, queue: asyncio.Queue[Any]) -> None:
        """Backend records into the queue; ends with _END, or the error that stopped it."""
        try:
            records: AsyncIterator[LogRecord] = self.backend.logs(since_seq=self.cursor, follow=self.follow)
            async with contextlib.aclosing(records):  # type: ignore[type-var]
                async for record in records:
                    await queue.put(record)
            await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, BackendError):
                log.exception("the backend's log stream failed")
            await queue.put(exc)

    async def _write(self, queue: asyncio.Queue[Any], send: Send) -> None:
        # Not asyncio.wait_for(queue.get(), keepalive): on 3.11 it can drop a cancellation that arrives as
        # the get completes (gh-86296), leaving this task waiting forever on a queue nobody fills any more.
        # asyncio.wait neither cancels the pending get on a timeout (no record lost) nor eats a cancel.
        getter: asyncio.Future[Any] | None = None
        await _send(send, RETRY)
        try:
            while True:
                getter = getter or asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter}, timeout=self.keepalive_s)
                if not done:
                    await _send(send, PING)
                    continue
                items, getter = [getter.result()], None
                while len(items) < BATCH_RECORDS and not queue.empty():
                    items.append(queue.get_nowait())
                chunk, finished = self._encode(items)
                if chunk:
                    await _send(send, chunk)
                if finished:
                    return
        finally:
            if getter is not None:
                getter.cancel()

    def _encode(self, items: list[Any]) -> tuple[bytes, bool]:
        """The events for a batch of queue items, and whether the stream ends with them."""
        chunks: list[bytes] = []
        for item in items:
            if isinstance(item, LogRecord):
                last = self._last
                if self.dense and last > 0 and item.seq > last + 1:
                    gap = LogGap(after_seq=last, next_seq=item.seq, missed=item.seq - last - 1)
                    chunks.append(sse_event(SSE_GAP_EVENT, to_json(gap), item.seq - 1))
                chunks.append(sse_event(SSE_LOG_EVENT, to_json(item), item.seq))
                self._last = max(last, item.seq)
                continue
            if item is not _END:  # the error that stopped the pump
                body = (
                    problem_for_error(item)
                    if isinstance(item, BackendError)
                    else problem(500, "internal", "the node's log stream failed; the error is in its log")
                )
                chunks.append(sse_event(self.failure_event, to_json(body)))
            return b"".join(chunks), True
        return b"".join(chunks), False


async def _send(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
