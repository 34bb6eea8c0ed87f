"""OTLP/HTTP senders for the ingest benchmark: what an SDK's BatchSpanProcessor / BatchLogRecordProcessor
and their OTLP/HTTP exporters do, in a process of their own.

Each sender process takes one signal (traces or logs), builds every export request it will send before the
start (real ``opentelemetry-proto`` messages, serialized protobuf: building is the agents' cost, not the
receiver's), then, from the shared start time, sends batch ``i`` at ``start + i * batch / rate``, round-robin
over the agents. Like an SDK exporter each agent has one export in flight at a time: a batch that falls due
while its agent waits for a reply goes as soon as the reply comes. A 429 or 503 is retried with the same
body after its Retry-After (as the SDK's exporters do); any other failure is counted as an error.

What comes back (JSON at ``out``): records sent (200 replies), retries, errors, every successful request's
round trip in seconds, the first send and the last reply (wall clock).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
PROTOBUF = "application/x-protobuf"
MODELS = ("claude-sonnet-4-5", "gpt-4.1-mini", "gemini-2.5-flash")
ERROR_EVERY = 50  # one span in 50 fails (status ERROR): its failure is also a log line in the store
RETRY_STATUSES = frozenset({429, 503})
MAX_ATTEMPTS = 60


@dataclass(frozen=True)
class Plan:
    signal: str  # "traces" or "logs"
    rate: float  # records a second, all agents together
    seconds: float
    batch: int
    agents: int

    @property
    def batches(self) -> int:
        return max(1, round(self.rate * self.seconds / self.batch))


def agent_name(index: int) -> str:
    return f"bench-agent-{index:02d}"


def _resource(index: int) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    return Resource(
        attributes=[
            KeyValue(key="service.name", value=AnyValue(string_value=agent_name(index))),
            KeyValue(key="telemetry.sdk.language", value=AnyValue(string_value="python")),
        ]
    )


def build_traces(plan: Plan) -> list[tuple[int, bytes, int, int]]:
    """(agent, body, spans, failed spans) per batch, in the order they fall due."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    rng = random.Random(1)
    resources = [_resource(index) for index in range(plan.agents)]
    scope = InstrumentationScope(name="opentelemetry.instrumentation.openai_v2", version="2.1b0")
    now_ns = time.time_ns()
    out = []
    seq = 0
    for number in range(plan.batches):
        agent = number % plan.agents
        spans = []
        failed = 0
        for _ in range(plan.batch):
            seq += 1
            start = now_ns + seq * 1000
            error = seq % ERROR_EVERY == 0
            failed += error
            model = MODELS[seq % len(MODELS)]
            spans.append(
                Span(
                    trace_id=seq.to_bytes(16, "big"),
                    span_id=seq.to_bytes(8, "big"),
                    name=f"chat {model}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rng.randint(200, 4000) * 1_000_000,
                    attributes=[
                        KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                        KeyValue(key="gen_ai.provider.name", value=AnyValue(string_value="openai")),
                        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value=model)),
                        KeyValue(
                            key="gen_ai.usage.input_tokens", value=AnyValue(int_value=rng.randint(50, 4000))
                        ),
                        KeyValue(
                            key="gen_ai.usage.output_tokens", value=AnyValue(int_value=rng.randint(10, 800))
                        ),
                    ],
                    status=Status(code=Status.STATUS_CODE_ERROR, message="rate limited upstream")
                    if error
                    else Status(code=Status.STATUS_CODE_OK),
                )
            )
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(resource=resources[agent], scope_spans=[ScopeSpans(scope=scope, spans=spans)])
            ]
        )
        out.append((agent, request.SerializeToString(), plan.batch, failed))
    return out


def build_logs(plan: Plan) -> list[tuple[int, bytes, int, int]]:
    """(agent, body, log records, 0) per batch; every record carries ``bench.seq``, unique in the run, so
    the store's copy can be counted distinct (a record stored twice would not hide one lost)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    resources = [_resource(index) for index in range(plan.agents)]
    scope = InstrumentationScope(name="bench.worker")
    severities = ((9, "INFO"), (9, "INFO"), (9, "INFO"), (13, "WARN"), (5, "DEBUG"))
    now_ns = time.time_ns()
    out = []
    seq = 0
    for number in range(plan.batches):
        agent = number % plan.agents
        records = []
        for _ in range(plan.batch):
            seq += 1
            severity, severity_text = severities[seq % len(severities)]
            records.append(
                LogRecord(
                    time_unix_nano=now_ns + seq * 1000,
                    severity_number=severity,  # type: ignore[arg-type]
                    severity_text=severity_text,
                    body=AnyValue(string_value=f"step {seq} done: tool call returned 200 in {seq % 900} ms"),
                    attributes=[
                        KeyValue(key="bench.seq", value=AnyValue(int_value=seq)),
                        KeyValue(key="code.function", value=AnyValue(string_value="run_step")),
                        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value=MODELS[seq % 3])),
                    ],
                    trace_id=seq.to_bytes(16, "big"),
                    span_id=seq.to_bytes(8, "big"),
                )
            )
        request = ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=resources[agent], scope_logs=[ScopeLogs(scope=scope, log_records=records)]
                )
            ]
        )
        out.append((agent, request.SerializeToString(), plan.batch, 0))
    return out


@dataclass
class Tally:
    sent: int = 0
    failed_sent: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    first_send: float = 0.0
    last_reply: float = 0.0


async def _send_all(
    url: str, token: str, plan: Plan, batches: list[tuple[int, bytes, int, int]], start: float
) -> Tally:
    import httpx

    path = TRACES_PATH if plan.signal == "traces" else LOGS_PATH
    headers = {"Content-Type": PROTOBUF, "Authorization": f"Bearer {token}"}
    interval = plan.batch / plan.rate
    tally = Tally(first_send=start)
    limits = httpx.Limits(max_connections=plan.agents, max_keepalive_connections=plan.agents)

    async def agent_loop(client: httpx.AsyncClient, mine: list[tuple[int, bytes, int, int]]) -> None:
        for number, body, records, failed in mine:
            delay = start + number * interval - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for _attempt in range(MAX_ATTEMPTS):
                before = time.perf_counter()
                try:
                    response = await client.post(path, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    tally.errors.append(f"{type(exc).__name__}: {exc}")
                    break
                if response.status_code in RETRY_STATUSES:
                    tally.retries += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                if response.status_code != 200:
                    tally.errors.append(f"{response.status_code}: {response.text[:200]}")
                    break
                tally.latencies.append(time.perf_counter() - before)
                tally.sent += records
                tally.failed_sent += failed
                tally.last_reply = time.time()
                break
            else:
                tally.errors.append(f"gave up after {MAX_ATTEMPTS} attempts")

    per_agent: dict[int, list[tuple[int, bytes, int, int]]] = {}
    for number, (agent, body, records, failed) in enumerate(batches):
        per_agent.setdefault(agent, []).append((number, body, records, failed))
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        await asyncio.gather(*(agent_loop(client, mine) for mine in per_agent.values()))
    return tally


def sender(
    url: str,
    token: str,
    plan: Plan,
    out: str,
    ready: Event,
    go: Event,
    start_at: Any,  # a multiprocessing Value('d'): the shared start, wall clock
) -> None:
    """A sender process's body: build, say ready, wait for go, send, write the tally to ``out``."""
    batches = build_traces(plan) if plan.signal == "traces" else build_logs(plan)
    ready.set()
    go.wait(120)
    tally = asyncio.run(_send_all(url, token, plan, batches, float(start_at.value)))
    with open(out, "w", encoding="utf-8") as file:
        json.dump(tally.__dict__, file)
