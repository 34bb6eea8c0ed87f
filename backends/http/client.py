"""One pooled HTTP connection to a node: requests with retries, answers decoded into the wire model.

Retried: every GET, and every POST, because each action carries an ``Idempotency-Key`` that the caller
makes once per logical action and that this module sends unchanged on every try; the node answers a
repeated key with its first answer instead of acting twice. Retried on: no answer at all (refused, reset,
timed out, TLS failure) and 502/503/504. Never on another status: a 4xx would be refused again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource, aconnect_sse

from backends.errors import Unreachable
from backends.model import ModelError, from_json, to_json
from backends.node_api import API_REVISION, API_REVISION_HEADER, HTTP_BACKEND_USER_AGENT
from backends.remote import pooled_client

from .failures import (
    NodeBusy,
    NotTheModel,
    content_type,
    describe_body,
    error_for_response,
    transport_reason,
    unreachable,
)
from .retry import RETRY_STATUSES, parse_retry_after
from .settings import HttpSettings

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class NodeClient:
    def __init__(self, settings: HttpSettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        self._client = pooled_client(
            s.url,
            token=s.token,
            auth=s.local_auth,
            user_agent=HTTP_BACKEND_USER_AGENT,
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            verify=s.verify(),
        )
        # what this client speaks, so a node answers it in this revision's terms (node_api.py)
        self._client.headers[API_REVISION_HEADER] = str(API_REVISION)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise unreachable(self.settings, "the connection is closed")
        return self._client

    # --- requests ----------------------------------------------------------------------------------------

    async def get(
        self,
        path: str,
        type_: type[T],
        *,
        params: Mapping[str, Any] | None = None,
        expected: str | None = None,
    ) -> T:
        """GET ``path`` as ``type_``; ``expected`` names the type in messages (``list[X]`` would not)."""
        response = await self.send("GET", path, params=params)
        return self.decode(response, type_, expected)

    async def post(self, path: str, body: Any, type_: type[T], *, headers: Mapping[str, str]) -> T:
        """POST ``body`` (a wire struct); ``headers`` must hold the action's Idempotency-Key."""
        response = await self.send(
            "POST", path, content=to_json(body), headers={**headers, "Content-Type": "application/json"}
        )
        return self.decode(response, type_)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries; the last answer (maybe a 5xx) is returned, a request that never got one
        raises :class:`Unreachable` with the reason in words."""
        policy = self.settings.retry
        deadline = time.monotonic() + policy.budget_s
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                reason = transport_reason(exc, self.settings)
                failure: Unreachable | None = unreachable(
                    self.settings, reason, timed_out=isinstance(exc, httpx.TimeoutException)
                )
                retry_after = None
            except RuntimeError as exc:  # httpx: the client was closed while this call waited
                raise unreachable(self.settings, f"the connection was closed ({exc})") from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                failure, retry_after = None, parse_retry_after(response.headers.get("retry-after"))
            delay = policy.delay(attempt, retry_after)
            attempt += 1
            if attempt >= policy.attempts or time.monotonic() + delay > deadline:
                if failure is not None:
                    raise failure
                return response
            await self._sleep(delay)

    def decode(self, response: httpx.Response, type_: type[T], expected: str | None = None) -> T:
        """The answer's body as ``type_``, or the error it stands for, in words."""
        if not response.is_success:
            raise error_for_response(response, self.settings)
        method, path = response.request.method, response.request.url.path
        expected = expected or _type_name(type_)
        if (
            not response.content.strip()
            or content_type(response) == "text/html"
            or response.content.lstrip()[:1] == b"<"
        ):
            raise NotTheModel(self.settings.node_name, method, path, expected, describe_body(response))
        try:
            return from_json(response.content, type_)
        except ModelError as exc:
            problem = str(exc).removeprefix(f"invalid {_type_name(type_)}: ")
            raise NotTheModel(self.settings.node_name, method, path, expected, problem) from None

    # --- streams -----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def event_stream(
        self, path: str, *, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[EventSource]:
        """An open text/event-stream (one try, no retries: the log stream does its own reconnecting).
        Raises the mapped error for an error status, :class:`NotTheModel` for a body that is not a stream;
        transport errors pass through as httpx exceptions for the caller to classify."""
        timeout = httpx.Timeout(
            self.settings.stream_timeout_s,
            connect=self.settings.connect_timeout_s,
            pool=self.settings.connect_timeout_s,
        )
        async with aconnect_sse(
            self.http, "GET", path, params=params, headers=dict(headers), timeout=timeout
        ) as source:
            response = source.response
            if not response.is_success:
                await response.aread()
                error = error_for_response(response, self.settings)
                if response.status_code in RETRY_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    raise NodeBusy(str(error), retry_after)
                raise error
            if content_type(response) != "text/event-stream":
                await response.aread()
                raise NotTheModel(self.settings.node_name, "GET", path, "log stream", describe_body(response))
            yield source


def _type_name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or str(type_)
