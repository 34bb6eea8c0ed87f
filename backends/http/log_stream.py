"""A node's log records, read from its ``GET /v1/logs`` server-sent-event stream, resumable by seq.

Every try asks for the lines after the last seq this stream has yielded (``since_seq`` and the SSE
``Last-Event-ID`` header), so resuming never loses or repeats a line; a record with a seq at or below the
last one yielded is dropped all the same, in case a node sends one twice.

A ``gap`` event (the node no longer has lines the client asked for) becomes one synthetic warning record
from source "node", with seq ``next_seq - 1`` so seqs stay strictly increasing and a resume from it asks
for exactly what comes next.

Dropped streams -- the choice made here: with ``follow``, a stream that drops (the node killed or
restarted, the connection reset, a ``problem`` event saying the backend behind the node is unavailable,
no byte for ``stream_timeout_s`` although the node sends a keepalive about every 10 s) reconnects by
itself, with backoff and jitter, from the last seq. Only when the node has stayed out of reach for
``stream_reconnect_s`` does it raise :class:`Unreachable`. A restart of the node is thus invisible to
``fleetdeck logs --follow``, which would otherwise exit. The console's log worker still retries after that
error from ``link.last_seq``, and calling :meth:`LogStream.records` again with that seq resumes exactly.
Without ``follow`` a drop is retried the same way; the stream ends when the node ends it (it has sent
every line it holds). Errors that a retry would not mend (a rejected token, a malformed event) are raised
at once.

The failure event is ``problem``; a node of API revision 1 calls it ``error``, and both are understood
(node_api.py). The node's ``retry:`` field is meant for browsers: this client waits by its own backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import httpx
from httpx_sse import ServerSentEvent

from backends import node_api
from backends.errors import BackendError, Unreachable
from backends.model import LogRecord, ModelError, from_json
from backends.node_api import LogGap

from .client import NodeClient, Sleep
from .failures import NodeBusy, transport_reason
from .retry import RETRY_STATUSES

LOGS_PATH = f"{node_api.PREFIX}/logs"
LAST_EVENT_ID = "Last-Event-ID"
SETTLED_S = 5.0  # a stream that stayed open this long was working, even if no line came

T = TypeVar("T", LogRecord, LogGap)
# the failure event as this revision names it, and as a node of revision 1 does (node_api.py)
_FAILURE_EVENTS = frozenset({node_api.SSE_PROBLEM_EVENT, node_api.SSE_LEGACY_ERROR_EVENT})


class LogStream:
    def __init__(
        self, client: NodeClient, *, clock: Callable[[], float], sleep: Sleep = asyncio.sleep
    ) -> None:
        self.client = client
        self.clock = clock
        self._sleep = sleep

    async def records(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        settings = self.client.settings
        policy = settings.retry
        last = since_seq
        failures = 0  # consecutive tries that ended without progress: the backoff grows with them
        down_since: float | None = None  # the first of those failures
        while True:
            progressed = False
            connected_at: float | None = None
            retry_after: float | None = None
            try:
                params = {"since_seq": last, "follow": 1} if follow else {"since_seq": last}
                headers = {LAST_EVENT_ID: str(last)} if last > 0 else {}
                async with self.client.event_stream(LOGS_PATH, params=params, headers=headers) as source:
                    connected_at = time.monotonic()
                    async for event in source.aiter_sse():
                        record = self._record(event, last)
                        if record is not None:
                            yield record
                            last, progressed = record.seq, True
                if not follow:
                    return
                reason = "the node ended the log stream"
            except httpx.TransportError as exc:
                reason = transport_reason(exc, settings)
            except NodeBusy as exc:
                reason, retry_after = str(exc), exc.retry_after
            now = time.monotonic()
            # A try that brought new lines, or held a quiet follow open for a while, was a working stream:
            # this failure starts a new outage. One that connected and died at once (a node accepting and
            # dropping, a proxy closing every stream) is part of the same outage, so it cannot loop forever.
            if progressed or (connected_at is not None and now - connected_at >= SETTLED_S):
                failures, down_since = 0, None
            delay = policy.delay(failures, retry_after)
            failures += 1
            down_since = now if down_since is None else down_since
            if now - down_since + delay > policy.stream_reconnect_s:
                raise Unreachable(
                    f"lost the log stream of node {settings.node_name} at {settings.url} "
                    f"(resume from seq {last}): {reason}"
                )
            await self._sleep(delay)

    def _record(self, event: ServerSentEvent, last: int) -> LogRecord | None:
        """The record an event stands for, or None (an event type this client does not know, a keepalive,
        a record already yielded)."""
        if event.event == node_api.SSE_LOG_EVENT:
            record = self._decode(event, LogRecord)
            return record if record.seq > last else None
        if event.event == node_api.SSE_GAP_EVENT:
            return self._gap_record(self._decode(event, LogGap), last)
        if event.event in _FAILURE_EVENTS:
            raise self._stream_error(event)
        return None  # newer servers may send events this client has no use for (and ``retry:`` alone)

    def _decode(self, event: ServerSentEvent, type_: type[T]) -> T:
        try:
            return from_json(event.data, type_)
        except ModelError as exc:
            problem = str(exc).removeprefix(f"invalid {type_.__name__}: ")
            raise Unreachable(
                f"node {self.client.settings.node_name} sent a {event.event!r} event that is not "
                f"a {type_.__name__}: {problem}"
            ) from None

    def _stream_error(self, event: ServerSentEvent) -> BackendError:
        """The node's backend failed mid-stream (headers were sent, so the status travels in the event)."""
        problem = node_api.decode_problem(event.data.encode())
        name = self.client.settings.node_name
        if problem is None:
            return Unreachable(f"node {name} ended its log stream with an error it did not describe")
        if problem.status in RETRY_STATUSES:
            return NodeBusy(problem.detail)  # the backend behind the node is down: worth reconnecting
        return node_api.error_for_problem(problem.status, problem.detail)

    def _gap_record(self, gap: LogGap, last: int) -> LogRecord | None:
        seq = gap.next_seq - 1
        if gap.missed <= 0 or seq <= last:
            return None
        lines = "line" if gap.missed == 1 else "lines"
        return LogRecord(
            seq=seq,
            ts=self.clock(),
            level="warning",
            source="node",
            message=(
                f"{gap.missed} log {lines} (seq {gap.after_seq + 1}–{seq}) had already been dropped by the "
                "node's retention before they could be read"
            ),
            fields={"gap": gap.missed},
        )
