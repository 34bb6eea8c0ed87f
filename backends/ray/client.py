"""One pooled HTTP connection to a Ray dashboard: JSON requests, retries, failures in words.

Retried with jittered backoff: calls that are safe to repeat — every GET, and a job submission, which
carries a stable ``submission_id`` so Ray refuses a second copy instead of running it twice. A job stop is
idempotent as well. Retried on no answer at all and on 502/503/504; never on another status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx

from backends.errors import Unreachable
from backends.remote import pooled_client

from .failures import NotRayAnswer, error_for_response, transport_failure
from .settings import RaySettings

Sleep = Callable[[float], Awaitable[None]]
RETRY_STATUSES = frozenset({502, 503, 504})
BUDGET_S = 15.0  # no new try starts this long after the call began
# A followed log file is silent while nothing is written (Ray sends no keepalive): only a stream quiet for
# this long is taken for a dead connection, and opened again from where its reader had got to.
STREAM_SILENCE_S = 300.0


class RayClient:
    def __init__(self, settings: RaySettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._rng = random.Random()
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        if self._client is not None:
            return
        s = self.settings
        self._client = pooled_client(
            s.url,
            token=s.token,
            user_agent="fleetdeck-ray-backend",
            connect_timeout_s=s.connect_timeout_s,
            read_timeout_s=s.read_timeout_s,
            verify=s.verify(),
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.decode(await self.send("GET", path, params=params, retry=True))

    async def post_json(self, path: str, body: Any, *, retry: bool) -> httpx.Response:
        """POST; the caller decides what an error answer means (a 400 may be "already exists")."""
        return await self.send("POST", path, json_body=body, retry=retry)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        retry: bool,
    ) -> httpx.Response:
        """The last answer (maybe an error status); a request that never got one raises Unreachable."""
        if self._client is None:
            raise Unreachable(f"Ray cluster {self.settings.node_name}: the connection is closed")
        attempts = self.settings.attempts if retry else 1
        deadline = time.monotonic() + BUDGET_S
        attempt = 0
        while True:
            failure: Unreachable | None = None
            try:
                response = await self._client.request(method, path, params=params, json=json_body)
            except httpx.TransportError as exc:
                failure = transport_failure(exc, self.settings)
            except RuntimeError as exc:  # httpx: the client was closed while this call waited
                raise Unreachable(
                    f"Ray cluster {self.settings.node_name}: connection closed ({exc})"
                ) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
            # "equal jitter": half to all of an exponential step, so consoles do not retry in lock-step
            ceiling = min(2.0, 0.2 * 2**attempt)
            delay = self._rng.uniform(ceiling / 2, ceiling)
            attempt += 1
            if attempt >= attempts or time.monotonic() + delay > deadline:
                if failure is not None:
                    raise failure
                return response
            await self._sleep(delay)

    async def get_text(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        response = await self.send("GET", path, params=params, retry=True)
        if not response.is_success:
            raise error_for_response(response, self.settings)
        return response.text

    @contextlib.asynccontextmanager
    async def stream_text(self, path: str, params: Mapping[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        """A streamed GET's text as it comes (one try: the caller knows how to resume)."""
        if self._client is None:
            raise Unreachable(f"Ray cluster {self.settings.node_name}: the connection is closed")
        timeout = httpx.Timeout(STREAM_SILENCE_S, connect=self.settings.connect_timeout_s)
        try:
            async with self._client.stream("GET", path, params=params, timeout=timeout) as response:
                if not response.is_success:
                    await response.aread()
                    raise error_for_response(response, self.settings)
                yield response.aiter_text()
        except httpx.TransportError as exc:
            raise transport_failure(exc, self.settings) from None

    def decode(self, response: httpx.Response) -> Any:
        if not response.is_success:
            raise error_for_response(response, self.settings)
        try:
            return json.loads(response.content)
        except ValueError:
            snippet = " ".join(response.content[:80].decode("utf-8", "replace").split())
            raise NotRayAnswer(
                f"Ray cluster {self.settings.node_name}: {response.request.url.path} answered something "
                f"that is not JSON ({snippet!r}): is {self.settings.url} a Ray dashboard?"
            ) from None
