"""Shared pieces for the http backend tests: config entries, and hand-made nodes (raw ASGI apps, served by a
real uvicorn through ``tests.serving.serve_asgi``) that answer whatever a test needs, garbage included.

No tests here; the ``test_`` name keeps it with the files it serves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.http import HttpBackend
from backends.model import ALL_CAPABILITIES, NodeInfo, to_json
from backends.node_api import PREFIX, Whoami
from console.core.config import NodeConfig

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

FAKE_INFO = NodeInfo(
    id="fake-01",
    name="fake-01",
    backend="demo",
    version="9.9",
    hostname="fake-host",
    capabilities=ALL_CAPABILITIES,  # type: ignore[arg-type]
)
FAKE_WHOAMI = Whoami(name="alice", role="operator", authenticated=True)


def node_config(url: str, *, name: str = "gpu-01", **fields: Any) -> NodeConfig:
    return NodeConfig(name=name, backend="http", url=url, **fields)


def backend_for(url: str, *, name: str = "gpu-01", **fields: Any) -> HttpBackend:
    return HttpBackend.from_config(node_config(url, name=name, **fields), clock=time.time)


# --- a hand-made node ----------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the hand-made node received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeNode:
    """A raw ASGI app: ``routes`` maps "METHOD /path" (or "/path" for any method) to a handler; whoami and
    info answer a valid operator view unless a route overrides them. Every request is kept in ``seen``."""

    routes: dict[str, Handler]
    seen: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        self.seen.append(Seen(method, path, headers, body))
        handler = self.routes.get(f"{method} {path}") or self.routes.get(path) or DEFAULT_ROUTES.get(path)
        if handler is None:
            handler = reply(404, b"<html><body>Not Found</body></html>", "text/html")
        await handler(scope, _replay(body), send)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def _replay(body: bytes) -> Receive:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def reply(
    status: int, body: bytes, content_type: str = "application/json", headers: Iterable[tuple[str, str]] = ()
) -> Handler:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-type", content_type.encode())] + [(k.encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    return handler


def json_reply(value: Any, status: int = 200) -> Handler:
    body = value if isinstance(value, bytes) else to_json(value)
    return reply(status, body)


def problem_reply(status: int, detail: str, slug: str = "conflict") -> Handler:
    body = json.dumps(
        {"type": f"urn:fleetdeck:problem:{slug}", "title": slug, "status": status, "detail": detail}
    ).encode()
    return reply(status, body, "application/problem+json")


def drop_connection() -> Handler:
    """Start an answer, then die: the client sees the connection closed mid-body."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})
        raise ConnectionAbortedError("the test drops this connection on purpose")

    return handler


def slow(seconds: float, then: Handler) -> Handler:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(seconds)
        await then(scope, receive, send)

    return handler


def in_turn(*handlers: Handler) -> Handler:
    """The first request gets the first handler, and so on; the last one answers every request after."""
    calls = 0

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal calls
        chosen = handlers[min(calls, len(handlers) - 1)]
        calls += 1
        await chosen(scope, receive, send)

    return handler


def sse_reply(events: Iterable[tuple[str, str | bytes, int | None]], *, end: bool = True) -> Handler:
    """A text/event-stream of ``(event, data, id)``; with ``end=False`` it then stays open (idle)."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunks = []
        for event, data, event_id in events:
            text = data.decode() if isinstance(data, bytes) else data
            head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
            chunks.append(f"{head}data: {text}\n\n".encode())
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": not end})
        if not end:
            await asyncio.sleep(3600)

    return handler


DEFAULT_ROUTES: dict[str, Handler] = {
    f"{PREFIX}/whoami": json_reply(FAKE_WHOAMI),
    f"{PREFIX}/info": json_reply(FAKE_INFO),
}


def write_token(path: Path, token: str) -> Path:
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
