"""``create_app(backend)``: any Backend as the node HTTP API of ``backends/node_api.py``.

    app = create_app(LocalBackend(state_dir=...), tokens=load_tokens("tokens.toml"))
    app = create_app(backend)   # no tokens: only the owner's local operator token is let in
    uvicorn.run(app)            # or backends.node_server.server.serve(...), as `fleetdeck node serve` does

Starlette rather than FastAPI: the wire model is msgspec, and the bodies, errors and OpenAPI document are
built from it directly. Middleware, outermost first: AccessLog (one line per request, no credential in
it), ProblemGuard (a bug becomes a 500 problem) and AuthMiddleware (401, or the caller on
``request.state``); then Starlette's exception handling turns ProblemError, BackendError and routing
errors (404/405) into problem+json answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backends.base import Backend
from backends.local_token import ensure_token, os_user, token_path
from backends.node_api import ACTION_PATHS, KPIS_PATH, PREFIX
from backends.package_version import package_version

from . import kpi_reads, reads
from .access_log import AccessLog, RouteNames
from .actions import ACTIONS, action_route
from .auth import AuthMiddleware, LocalOperator
from .bodies import DEFAULT_MAX_BODY
from .idempotency import IdempotencyStore
from .log_stream import KEEPALIVE_S
from .metrics import KpiThreshold, MetricsExporter
from .openapi import build_openapi
from .problems import EXCEPTION_HANDLERS, ProblemGuard, fail
from .service import NodeService, json_response, service
from .snapshot_cache import DEFAULT_TTL_S, SnapshotCache
from .tokens import TokenBook

Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(
    backend: Backend,
    *,
    tokens: TokenBook | None = None,
    local: LocalOperator | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    snapshot_ttl_s: float = DEFAULT_TTL_S,
    keepalive_s: float = KEEPALIVE_S,
    idempotency: IdempotencyStore | None = None,
    open_backend: bool = True,
    kpi_thresholds: Sequence[KpiThreshold] = (),
) -> Starlette:
    """The app serving ``backend``. With ``tokens``, bearer tokens from that file; without, only the
    owner's local operator token (``local``, by default this user's, made when missing) - loopback only:
    the serve command enforces that, and the auth middleware refuses non-loopback clients too.
    ``open_backend``: open and close the backend with the app's lifespan (the serve command opens it
    itself first, so a broken store is one line, not a traceback in uvicorn's log). ``kpi_thresholds``:
    the KPI rules the node's agents are judged by, exported in /metrics beside the figures."""
    if tokens is None and local is None:
        local = LocalOperator(ensure_token(), os_user(), str(token_path()))
    node = NodeService(
        backend=backend,
        cache=SnapshotCache(backend, ttl_s=snapshot_ttl_s),
        tokens=tokens,
        max_body=max_body,
        keepalive_s=keepalive_s,
        idempotency=idempotency
        if idempotency is not None
        else IdempotencyStore(),  # (an empty store is falsy)
        metrics=MetricsExporter(kpi_thresholds),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if open_backend:
            await backend.open()
        try:
            yield
        finally:
            if open_backend:
                await backend.close()

    table = routes()
    names = RouteNames(((r.path, r.path_regex) for r in table), QUERY_PARAMS)
    app = Starlette(
        routes=table,
        middleware=[
            Middleware(AccessLog, names=names),
            Middleware(ProblemGuard),
            Middleware(AuthMiddleware, tokens=tokens, local=local),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.node = node
    return app


# The query parameters each route knows; any other is refused (422), as unknown body fields are: a typo
# like ?sinceseq=5 must not silently mean "from the start".
QUERY_PARAMS: dict[str, tuple[str, ...]] = {
    f"{PREFIX}/audit": ("since_seq",),
    f"{PREFIX}/logs": ("since_seq", "follow"),
    KPIS_PATH: kpi_reads.QUERY,
}


def begin_shutdown(app: Starlette) -> None:
    """Tell open log streams to end now (call in the server's event loop, before it waits for them)."""
    app.state.node.stopping.set()


def routes() -> list[Route]:
    get = ["GET"]
    table = [
        Route("/healthz", reads.healthz, methods=get),
        Route("/openapi.json", openapi_document, methods=get),
        Route("/metrics", reads.metrics, methods=get),
        Route(f"{PREFIX}/info", reads.info, methods=get),
        Route(f"{PREFIX}/whoami", reads.whoami, methods=get),
        Route(f"{PREFIX}/snapshot", reads.snapshot, methods=get),
        *(Route(f"{PREFIX}/{name}", reads.snapshot_list(name), methods=get) for name in reads.SNAPSHOT_LISTS),
        Route(f"{PREFIX}/agents/{{agent_id}}", reads.agent, methods=get),
        Route(f"{PREFIX}/audit", reads.audit, methods=get),
        Route(f"{PREFIX}/logs", reads.logs, methods=get),
        Route(f"{PREFIX}/checkpoints/{{checkpoint_id}}/preview", reads.checkpoint_preview, methods=get),
        Route(KPIS_PATH, kpi_reads.kpis, methods=get),
    ]
    table += [
        Route(ACTION_PATHS[name], action_route(spec), methods=["POST"]) for name, spec in ACTIONS.items()
    ]
    return [
        Route(r.path, strict_query(r.endpoint, QUERY_PARAMS.get(r.path, ())), methods=r.methods)
        for r in table
    ]


def strict_query(handler: Endpoint, known: tuple[str, ...]) -> Endpoint:
    async def checked(request: Request) -> Response:
        unknown = sorted(set(request.query_params) - set(known))
        if unknown:
            allowed = f"known: {', '.join(known)}" if known else "this route takes none"
            raise fail(
                422, "invalid", f"unknown query parameter {unknown[0]!r} ({allowed})", field=unknown[0]
            )
        return await handler(request)

    checked.__name__ = getattr(handler, "__name__", "endpoint")
    return checked


async def openapi_document(request: Request) -> Response:
    node = service(request)
    if node.openapi_json is None:
        from backends.model import to_json

        node.openapi_json = to_json(build_openapi(node.backend.info, package_version()))
    return json_response(node.openapi_json)
