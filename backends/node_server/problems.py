"""Every answer the server refuses with is an RFC 9457 problem+json body (``node_api.Problem``).

One place builds them, so a client (the http backend) can always decode an error the same way: routing
errors (404/405), auth (401/403), bodies (400/413/415/422), backend errors (``problem_for_error``) and the
last resort for a bug (500, with no traceback in the body).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.errors import BackendError
from backends.model import to_json
from backends.node_api import PROBLEM_CONTENT_TYPE, Problem, problem, problem_for_error

from .access_log import DESCRIPTION_KEY

log = logging.getLogger("fleetdeck.node_server")


class ProblemError(Exception):
    """Raised anywhere in a handler to answer with ``problem``; caught by the app's exception handler."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = dict(headers or {})


def problem_response(body: Problem, headers: Mapping[str, str] | None = None) -> Response:
    return Response(to_json(body), status_code=body.status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def fail(status: int, slug: str, detail: str, field: str | None = None) -> ProblemError:
    """``raise fail(422, "invalid", "...", field="$.target")`` - a short spelling for handlers."""
    return ProblemError(problem(status, slug, detail, field))


# msgspec names the failing path as ``... - at `$.request.agent_id```; missing and unknown fields are named
# separately (``Object missing required field `target```), relative to that path or the root.
_AT = re.compile(r" - at `(?P<path>\$[^`]*)`$")
_NAMED = re.compile(r"(?:missing required field|contains unknown field) `(?P<name>[^`]+)`")


def validation_field(message: str) -> str:
    """The JSON path a msgspec validation message blames, e.g. ``$.request.agent_id`` (``$`` for the root)."""
    at = _AT.search(message)
    path = at["path"] if at else "$"
    named = _NAMED.search(message)
    return f"{path}.{named['name']}" if named else path


def validation_problem(exc: msgspec.ValidationError | ValueError, what: str) -> ProblemError:
    message = str(exc)
    detail = _AT.sub("", message)
    return fail(422, "invalid", f"invalid {what}: {detail}", field=validation_field(message))


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown route, method not allowed) as problems, keeping ``Allow``."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        body = problem(404, "not-found", f"no such resource: {request.url.path}")
    elif exc.status_code == 405:
        allowed = headers.get("Allow", "")
        body = problem(
            405,
            "method-not-allowed",
            f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})",
        )
    else:
        body = problem(exc.status_code, "bad-request", str(exc.detail))
    return problem_response(body, headers)


async def problem_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.problem, exc.headers)


async def backend_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return problem_response(problem_for_error(exc))


EXCEPTION_HANDLERS = {
    HTTPException: http_exception_handler,
    ProblemError: problem_error_handler,
    BackendError: backend_error_handler,
}


class ProblemGuard:
    """The outermost middleware: a bug anywhere becomes a 500 problem, logged here with its traceback.

    Starlette's ServerErrorMiddleware would answer text/plain and re-raise (uvicorn then logs it again);
    this answers problem+json once, and never puts the exception's text in the body: it may hold paths or
    data the caller should not see.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # the request as the access log shows it: never the path or query as sent (they may hold secrets)
            log.exception("unexpected error answering %s", scope.get(DESCRIPTION_KEY, "a request"))
            if started:
                return  # too late for a problem body: the client sees the stream end
            body = to_json(problem(500, "internal", "the node server failed; the error is in its log"))
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
