"""The GET routes: the node's state as the wire model's JSON (``backends.model.to_json``).

Everything taken from the snapshot comes through the single-flight cache, and each encoding is made once
per snapshot, so a crowd of pollers costs one backend call and one encode every half second.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from backends.errors import NotFound
from backends.model import NodeSnapshot, to_json
from backends.node_api import HealthReport, RollbackPreview, Whoami

from .auth import caller_of
from .log_stream import LogEventStream, parse_seq, stream_params
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .service import json_response, service

SNAPSHOT_LISTS = ("agents", "phases", "tasks", "checkpoints")


async def healthz(request: Request) -> Response:
    """Cheap and without backend I/O: says the server is up and which node it serves."""
    info = service(request).backend.info
    report = HealthReport(node=info.name, backend=info.backend, version=info.version or "unknown")
    return json_response(to_json(report))


async def info(request: Request) -> Response:
    return json_response(to_json(service(request).backend.info))


async def whoami(request: Request) -> Response:
    caller = caller_of(request)
    # a reporter's token never gets this far: the node API admits viewers and operators only (auth.py)
    role: Literal["viewer", "operator"] = "operator" if caller.role == "operator" else "viewer"
    return json_response(to_json(Whoami(name=caller.name, role=role, authenticated=caller.authenticated)))


async def snapshot(request: Request) -> Response:
    cached = await service(request).cache.get()
    return json_response(cached.encoded("snapshot", to_json))


def snapshot_list(name: str) -> Callable[[Request], Awaitable[Response]]:
    """The handler for ``/v1/<name>``: one of the snapshot's lists."""

    def encode(snap: NodeSnapshot) -> bytes:
        return to_json(getattr(snap, name))

    async def handler(request: Request) -> Response:
        cached = await service(request).cache.get()
        return json_response(cached.encoded(name, encode))

    handler.__name__ = f"list_{name}"
    return handler


async def agent(request: Request) -> Response:
    agent_id = request.path_params["agent_id"]
    cached = await service(request).cache.get()
    for candidate in cached.snapshot.agents:
        if candidate.id == agent_id:
            return json_response(to_json(candidate))
    raise NotFound(f"no agent {agent_id!r} on node {cached.snapshot.node.name}")


async def audit(request: Request) -> Response:
    since_seq = query_seq(request, "since_seq")
    entries = await service(request).backend.audit(since_seq)
    return json_response(to_json(entries))


async def logs(request: Request) -> Response:
    node = service(request)
    cursor, follow = stream_params(request)
    stream = LogEventStream(
        node.backend, cursor, follow, keepalive_s=node.keepalive_s, stopping=node.stopping
    )
    return stream  # type: ignore[return-value]  # an ASGI app, as Starlette accepts


async def checkpoint_preview(request: Request) -> Response:
    lines = await service(request).backend.rollback_preview(request.path_params["checkpoint_id"])
    return json_response(to_json(RollbackPreview(lines=tuple(lines))))


async def metrics(request: Request) -> Response:
    """The exposition, gzipped when the scraper accepts it (Prometheus does): the one-series-per-state
    families repeat themselves, so a 5,000-agent scrape shrinks from 6 MB to 0.5 MB. Built and compressed
    once per snapshot, however many scrape it."""
    node = service(request)
    cached = await node.cache.get()
    text = cached.encoded("metrics", node.metrics.render)
    if not _accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(text, media_type=METRICS_CONTENT_TYPE, headers={"Vary": "Accept-Encoding"})
    import gzip

    body = cached.encoded("metrics.gz", lambda _: gzip.compress(text, compresslevel=1, mtime=0))
    return Response(
        body,
        media_type=METRICS_CONTENT_TYPE,
        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
    )


def _accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (``gzip;q=0`` refuses it)."""
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip().startswith("q=") or float(q) > 0
            except ValueError:
                return False
    return False


def query_seq(request: Request, name: str) -> int:
    return parse_seq(request.query_params.get(name, "0"), name)
