"""The receiver's HTTP side: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` as OTLP/HTTP defines them.

- Auth is the node API's (AuthMiddleware): a tokens file's bearer tokens (roles operator and reporter may
  send; a viewer may not), or without one the owner's local operator token, on loopback only. Exporters
  send it with ``OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <token>"``.
- Each request is decoded and mapped in a mapper process (mapper_pool.py), then stored on one thread,
  one transaction each; the reply waits for the commit, so a 200 means stored.
- Never a silent drop: while more than ``max_pending_bytes`` of requests wait to be mapped and stored the
  answer is 429 with ``Retry-After``; when the store cannot be written (locked past its timeout, disk
  full) or a mapper process died holding the request, it is 503 with ``Retry-After`` and nothing of it was
  kept. The SDK's exporters retry both. Records refused on purpose (an agent or KPI past its limit) are
  counted in the reply's ``partial_success``.
- Bodies: protobuf or JSON, gzip or not; a bad one is 400 (413 too large, 415 an unknown media type or
  encoding) with a ``google.rpc.Status`` in the request's encoding saying what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backends.local.store import StoreError
from backends.node_server.auth import AuthMiddleware, LocalOperator
from backends.node_server.tokens import Caller, Role, TokenBook
from backends.safe_text import terminal_safe

from .ingest import Ingestor
from .mapper_pool import MapperLost, MapperPool
from .self_report import ReceiverReport
from .wire import BodyError, Encoding, Signal, encoding_of, media_type, reply, status

DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024
BUSY_RETRY_AFTER_S = 1
STORE_RETRY_AFTER_S = 5
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
OTLP_ROLES: frozenset[Role] = frozenset({"operator", "reporter"})
PUBLIC_PATHS = frozenset({"/healthz"})


def _refusal(caller: Caller) -> str:
    return f"token {caller.name!r} has role {caller.role}: sending telemetry needs role reporter or operator"


class Receiver:
    """The receiver's state: its mappers, the store's thread, what waits for them, what it has taken."""

    def __init__(
        self,
        ingestor: Ingestor,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        report: ReceiverReport | None = None,
        mappers: MapperPool | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.max_body = max_body
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0
        self.report = report
        self.mappers = mappers if mappers is not None else MapperPool()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otlp-store")

    async def start(self) -> None:
        await self.mappers.start()

    def close(self) -> None:
        self.mappers.close()
        self._writer.shutdown(wait=True)

    async def export(self, signal: Signal, request: Request) -> Response:
        try:
            encoding = encoding_of(request.headers.get("content-type"))
        except BodyError as exc:
            return _error(exc.status, str(exc), "json")
        try:
            body = await _read(request, self.max_body)
        except BodyError as exc:
            return _error(exc.status, str(exc), encoding)
        if self.pending_bytes and self.pending_bytes + len(body) > self.max_pending_bytes:
            if self.report is not None:
                self.report.busy()
            detail = f"the receiver has {self.pending_bytes} bytes waiting to be stored; retry shortly"
            return _error(429, detail, encoding, retry_after=BUSY_RETRY_AFTER_S)
        self.pending_bytes += len(body)
        loop = asyncio.get_running_loop()
        content_encoding = request.headers.get("content-encoding")
        content_type = request.headers.get("content-type")
        now = self.ingestor.now()
        try:
            batch = await self.mappers.map(signal, body, content_type, content_encoding, now)
            outcome = await loop.run_in_executor(self._writer, self.ingestor.take, signal, batch, now)
        except BodyError as exc:
            return _error(exc.status, str(exc), encoding)
        except MapperLost as exc:
            detail = f"{exc}; nothing of this request was kept"
            _say(detail)
            return _error(503, detail, encoding, retry_after=BUSY_RETRY_AFTER_S)
        except (StoreError, sqlite3.Error, OSError) as exc:
            detail = f"the store cannot take this now ({type(exc).__name__}: {exc}); nothing of it was kept"
            _say(detail)
            if self.report is not None:
                self.report.store_failed(detail)
            return _error(503, detail, encoding, retry_after=STORE_RETRY_AFTER_S)
        finally:
            self.pending_bytes -= len(body)
        if self.report is not None:
            self.report.taken(signal, outcome)
        body_out = reply(signal, encoding, outcome.rejected, outcome.message)
        return Response(body_out, media_type=media_type(encoding))


async def _read(request: Request, max_body: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise BodyError(f"the body is larger than this receiver accepts ({max_body} bytes)", 413)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body:
            raise BodyError(f"the body is larger than this receiver accepts ({max_body} bytes)", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(code: int, detail: str, encoding: Encoding, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = status(code, detail, encoding)
    return Response(body, status_code=code, media_type=media_type(encoding), headers=headers)


def _say(line: str) -> None:
    print(f"fleetdeck otlp: {terminal_safe(line)}", file=sys.stderr, flush=True)


def create_receiver_app(
    receiver: Receiver, *, tokens: TokenBook | None = None, local: LocalOperator | None = None
) -> Starlette:
    def endpoint(signal: Signal) -> Any:
        async def handle(request: Request) -> Response:
            try:
                return await receiver.export(signal, request)
            except Exception as exc:  # a bug: one line on the server's stderr, a 500 to the client
                _say(f"internal error on /v1/{signal}: {type(exc).__name__}: {exc}")
                return _error(500, "internal error in the receiver; see its log", "json")

        return handle

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await receiver.start()
        report = receiver.report
        task = asyncio.create_task(report.run()) if report is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.get_running_loop().run_in_executor(None, receiver.close)
            if report is not None:
                await asyncio.to_thread(report.stopped)

    routes = [Route(f"/v1/{signal}", endpoint(signal), methods=["POST"]) for signal in SIGNALS]
    routes.append(Route("/healthz", healthz, methods=["GET"]))
    middleware = [
        Middleware(
            AuthMiddleware,
            tokens=tokens,
            local=local,
            admit=OTLP_ROLES,
            refusal=_refusal,
            public_paths=PUBLIC_PATHS,
        )
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
