"""The access log, written here and not by uvicorn: no credential may reach it, whatever a client sends.

uvicorn logs the request target as sent, query string and all, so ``?access_token=...`` went straight into
the log. Every part of a request line is the client's to choose, so each logged part is one the server
chose instead:

    127.0.0.1:51234 - "GET /v1/audit?since_seq HTTP/1.1" 200
    127.0.0.1:51234 - "GET /v1/agents/{agent_id} HTTP/1.1" 404
    127.0.0.1:51234 - "GET <unknown path> HTTP/1.1" 401
    127.0.0.1:51234 - "GET /v1/snapshot?<1 unknown parameter> HTTP/1.1" 422

- the path is the matched route's template (an id in the path is the client's text: it is not logged);
- of the query, only the names the route knows, and a count of the others; never a value;
- the method if it is a standard one, else ``OTHER``; no header at all.

The same description of a request is what the server's error log uses (``describe``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .log_limits import ACCESS_LOGGER

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
DESCRIPTION_KEY = "fleetdeck.request"  # in the ASGI scope: the request as it may be logged

log = logging.getLogger(ACCESS_LOGGER)


class RouteNames:
    """The templates of the app's routes, and the query parameters each one knows."""

    def __init__(self, routes: Iterable[tuple[str, re.Pattern[str]]], query: Mapping[str, tuple[str, ...]]):
        self._routes = list(routes)
        self._query = dict(query)

    def describe(self, scope: Scope) -> str:
        method = str(scope.get("method", ""))
        template = self.template(str(scope.get("path", "")))
        shown = template or "<unknown path>"
        query = self.query_names(template, scope.get("query_string", b""))
        return f"{method if method in METHODS else 'OTHER'} {shown}{query}"

    def template(self, path: str) -> str | None:
        for template, pattern in self._routes:
            if pattern.match(path):
                return template
        return None

    def query_names(self, template: str | None, raw: bytes) -> str:
        if not raw:
            return ""
        known = self._query.get(template or "", ())
        names = [name for name, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True)]
        if not names:
            names = ["?"]  # a query the parser found nothing in (e.g. "?&"): still not the client's text
        seen = [name for name in dict.fromkeys(names) if name in known]
        others = sum(1 for name in names if name not in known)
        parts = list(seen)
        if others:
            parts.append(f"<{others} unknown parameter{'s' if others != 1 else ''}>")
        return "?" + "&".join(parts)


class AccessLog:
    """Outermost middleware: describes each request once, logs it with its status when it is answered."""

    def __init__(self, app: ASGIApp, names: RouteNames) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        described = self.names.describe(scope)
        scope[DESCRIPTION_KEY] = described
        answered = False

        async def logging_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                _log(scope, described, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            if not answered:
                _log(scope, described, None)


def _log(scope: Scope, described: str, status: int | None) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    who = f"{client[0]}:{client[1]}" if client else "-"
    version = scope.get("http_version", "1.1")
    log.info('%s - "%s HTTP/%s" %s', who, described, version, status if status is not None else "-")
