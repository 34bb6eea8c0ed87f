"""What every route needs, in one object on ``app.state.node``: the backend and the server's own state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from backends.base import Backend

from .idempotency import IdempotencyStore
from .log_stream import KEEPALIVE_S
from .metrics import MetricsExporter
from .snapshot_cache import SnapshotCache
from .tokens import TokenBook

JSON = "application/json"


@dataclass
class NodeService:
    backend: Backend
    cache: SnapshotCache
    tokens: TokenBook | None = None
    max_body: int = 64 * 1024
    keepalive_s: float = KEEPALIVE_S
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)
    metrics: MetricsExporter = field(default_factory=MetricsExporter)
    openapi_json: bytes | None = None  # built on first request: most servers are never asked
    # set when the server shuts down: open log streams end at once instead of holding the shutdown
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


def service(request: Request) -> NodeService:
    node = request.app.state.node
    assert isinstance(node, NodeService)
    return node


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=headers)
