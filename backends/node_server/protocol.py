"""The HTTP protocol the node server runs: uvicorn's h11 protocol with request deadlines and a guard.

uvicorn has no header timeout: its keep-alive timer stops at a request's first byte, so a client that
sends ``GET / HT`` and waits holds a connection (and an fd) for ever. 1,100 such clients under a 1,024-fd
limit once stopped every normal request and wrote megabytes of EMFILE tracebacks. This subclass adds:

- a header deadline: a connection that has not sent a request's complete headers within
  ``header_timeout_s`` of connecting (or of its previous answer) gets a 408 problem and is closed;
- a body deadline: a request whose body stalls for ``body_timeout_s`` gets a 408 and is closed;
- the :class:`~.connections.ConnectionGuard`: admitted on connect, evicted (503) while still waiting for
  headers when the server is full, refused with a 503 problem when every connection is busy.

Why a subclass of uvicorn's ``H11Protocol``: the protocol class is uvicorn's extension point
(``Config(http=...)``), it sees the connection from its first byte, and h11 is the parser uvicorn uses
when httptools is not installed (this project does not install it). The refusals are written as raw
bytes: h11 will not send a response before it has parsed a request.
"""

from __future__ import annotations

import asyncio
import http
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from backends.model import to_json
from backends.node_api import PROBLEM_CONTENT_TYPE, problem

from .connections import ConnectionGuard


def guarded_protocol(guard: ConnectionGuard) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to ``guard`` (uvicorn builds one per
    connection, with arguments of its own choosing)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def raw_problem(status: int, slug: str, detail: str, retry_after_s: int | None = None) -> bytes:
    body = to_json(problem(status, slug, detail))
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        f"content-type: {PROBLEM_CONTENT_TYPE}",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after_s is not None:
        lines.append(f"retry-after: {retry_after_s}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    guard: ConnectionGuard  # set by guarded_protocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._seen_cycle: object = None  # the request whose headers were last seen complete

    # --- the connection's life -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            detail = "the node server is at its connection limit, every connection busy; try again shortly"
            self._refuse(raw_problem(503, "unavailable", detail, retry_after_s=1))
            return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        self._track_request()  # a pipelined request may have been parsed just now
        cycle = self.cycle
        if cycle is None or (cycle is self._seen_cycle and cycle.response_complete):
            self._await_headers()  # idle until the next request: its headers have a deadline too

    def evict(self) -> None:
        """Closed by the guard to make room (it had not sent its request headers)."""
        detail = "the node server is at its connection limit and this connection had not sent its request"
        self._refuse(raw_problem(503, "unavailable", detail, retry_after_s=1))

    # --- deadlines ------------------------------------------------------------------------------------

    def _track_request(self) -> None:
        if self.transport.is_closing():
            self._cancel_timers()
            return
        cycle = self.cycle
        if cycle is not None and cycle is not self._seen_cycle:  # a new request's headers are complete
            self._seen_cycle = cycle
            self._cancel(self._header_timer)
            self._header_timer = None
            self.guard.headers_done(self)
        self._cancel(self._body_timer)
        self._body_timer = None
        if cycle is not None and cycle.more_body and not cycle.response_started:
            self._body_timer = self.loop.call_later(self.guard.body_timeout_s, self._body_stalled)

    def _await_headers(self) -> None:
        self.guard.awaiting_headers(self)
        self._cancel(self._header_timer)
        self._header_timer = self.loop.call_later(self.guard.header_timeout_s, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        seconds = f"{self.guard.header_timeout_s:g} s"
        self.guard.timed_out_one(f"its request headers did not arrive within {seconds}")
        self._refuse(
            raw_problem(408, "request-timeout", f"the request headers did not arrive within {seconds}")
        )

    def _body_stalled(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or cycle.response_started:
            return
        seconds = f"{self.guard.body_timeout_s:g} s"
        self.guard.timed_out_one(f"its request body stalled for {seconds}")
        cycle.disconnected = True  # the app's answer, if it still tries one, goes nowhere
        cycle.message_event.set()
        self._refuse(raw_problem(408, "request-timeout", f"the request body stalled for {seconds}"))

    def _refuse(self, response: bytes) -> None:
        self._cancel_timers()
        self.guard.release(self)
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(response)
        if transport.get_write_buffer_size():
            transport.abort()  # a client that does not read must not keep the fd while we wait to flush
        else:
            transport.close()

    def _cancel_timers(self) -> None:
        self._cancel(self._header_timer)
        self._cancel(self._body_timer)
        self._header_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()
