"""Client-side load on a node's HTTP API with real httpx: open-loop GETs, paced dispatches, an SSE follower.

Open loop: requests start on a fixed schedule (``rate`` per second), each in a task of its own, whatever
the answers before them took, so a slow server meets the same arrival rate a crowd of dashboards would
bring, and slow answers show up in the latencies instead of quietly lowering the rate. A latency is taken
from the moment the request starts to the moment its whole body is in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import msgspec

from backends import node_api
from backends.model import DispatchRequest, LogRecord, Task, to_json


@dataclass
class Series:
    """Latencies (seconds) of the requests that succeeded, and what went wrong with the others."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def planned(self) -> int:
        return len(self.latencies) + len(self.errors)


Request = Callable[[int], Awaitable[None]]


async def open_loop(rate: float, seconds: float, request: Request) -> Series:
    """Call ``await request(i)`` ``rate`` times a second for ``seconds``, each on its own schedule."""
    series = Series()

    async def one(index: int) -> None:
        started = time.perf_counter()
        try:
            await request(index)
        except Exception as exc:
            series.errors.append(f"{type(exc).__name__}: {exc}")
        else:
            series.latencies.append(time.perf_counter() - started)

    count = max(1, round(rate * seconds))
    begin = time.perf_counter() + 0.01
    tasks: list[asyncio.Task[None]] = []
    for index in range(count):
        delay = begin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    return series


def get_ok(client: httpx.AsyncClient, path: str) -> Request:
    """A request for :func:`open_loop`: GET ``path``, whole body read, anything but 200 is an error."""

    async def request(_: int) -> None:
        response = await client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")

    return request


def dispatch(client: httpx.AsyncClient, agent_ids: Sequence[str]) -> Request:
    """A request for :func:`open_loop`: what the console's dispatch sends (``HttpBackend.dispatch``): the
    body and a fresh Idempotency-Key (the client's credential names the operator), answered by the queued
    Task (201)."""

    async def request(index: int) -> None:
        body = node_api.DispatchBody(
            request=DispatchRequest(agent_id=agent_ids[index % len(agent_ids)], payload={"step": index}),
            reason="benchmark",
        )
        headers = {
            node_api.IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4()),
            "content-type": "application/json",
        }
        response = await client.post(
            node_api.ACTION_PATHS["dispatch"], content=to_json(body), headers=headers
        )
        if response.status_code != 201:
            raise RuntimeError(f"dispatch answered {response.status_code}: {response.text[:200]}")
        msgspec.json.decode(
            response.content, type=Task
        )  # acknowledged: the queued task, as the console reads it

    return request


async def follow_logs(
    client: httpx.AsyncClient, delays: list[float], subscribed: asyncio.Event, *, stamp: str = "sent_at"
) -> None:
    """Follow ``/v1/logs`` (SSE) until cancelled; for each record carrying ``fields[stamp]`` (the writer's
    wall clock just before its write) append receive time minus that to ``delays``."""
    decoder = msgspec.json.Decoder(LogRecord)
    params = {"since_seq": "0", "follow": "1"}
    timeout = httpx.Timeout(10.0, read=None)
    async with client.stream("GET", f"{node_api.PREFIX}/logs", params=params, timeout=timeout) as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET /v1/logs answered {response.status_code}")
        subscribed.set()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == node_api.SSE_LOG_EVENT:
                received = time.time()
                record = decoder.decode(line[6:])
                sent = record.fields.get(stamp)
                if isinstance(sent, int | float):
                    delays.append(received - sent)
