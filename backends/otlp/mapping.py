"""OTLP export requests as what fleetdeck keeps of them: per agent, counter increments, cumulative series,
gauges, request samples (latency, error) and log lines. Pure: no store, no clock but the one handed in.

The rules are docs/otel.md's; in short:

- spans: a model call (a ``gen_ai.operation.name`` other than execute_tool, invoke_agent, create_agent) or,
  without GenAI attributes, a SERVER/CONSUMER span is a *request*: its duration a latency sample, an error
  status an error; ``gen_ai.usage.*_tokens`` count tokens; execute_tool spans count tool calls,
  invoke_agent spans runs. Failed spans and span events become log lines with their trace and span ids.
- metrics: Claude Code's and the GenAI conventions' names map onto fleetdeck's KPIs (``KNOWN_METRICS``); any
  other Sum or Gauge becomes a KPI of its own sanitised name; histograms of known latency metrics become
  samples at their buckets' midpoints.
- logs: severity mapped onto fleetdeck's levels, body as the message, attributes kept as bounded fields;
  Claude Code's and Codex's events (``api_request``, ``api_error``, ``tool_result``, ...) also count.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from backends.kpis import infer_unit
from backends.local.store_db import dumps
from backends.local.store_telemetry import LogRow

from .identity import MAX_VALUE_CHARS, Attributes, ResourceView, attributes, plain, text
from .wire import hex_id

MAX_FIELDS = 16  # attributes kept on one log line
MAX_EVENTS_PER_SPAN = 16
MESSAGE_CHARS = 2000
_NANOS = 1e-9

# gen_ai.operation.name values that are not a call to a model
_NOT_REQUESTS = frozenset({"execute_tool", "invoke_agent", "create_agent"})
_SPAN_KIND_SERVER, _SPAN_KIND_CONSUMER = 2, 5
_STATUS_ERROR = 2
_TEMPORALITY_DELTA = 1


@dataclass(frozen=True)
class Known:
    """A metric fleetdeck knows: the KPI it feeds (per value of ``split``, when it has one) and its unit."""

    kpi: str | None
    unit: str
    split: str | None = None
    by_value: tuple[tuple[str, str], ...] = ()
    latency: bool = False  # a duration histogram: its buckets are latency samples

    def kpi_for(self, attrs: Attributes) -> str | None:
        if self.split is None:
            return self.kpi
        value = str(attrs.get(self.split, ""))
        return next((kpi for key, kpi in self.by_value if key == value), None)


_TOKEN_TYPES = (
    ("input", "tokens_in_total"),
    ("output", "tokens_out_total"),
    ("cacheRead", "tokens_cache_read_total"),
    ("cacheCreation", "tokens_cache_creation_total"),
    ("prompt", "tokens_in_total"),  # the conventions' names before input/output
    ("completion", "tokens_out_total"),
)
KNOWN_METRICS: dict[str, Known] = {
    # Claude Code (https://code.claude.com/docs/en/monitoring-usage)
    "claude_code.token.usage": Known(None, "tokens", "type", _TOKEN_TYPES),
    "claude_code.cost.usage": Known("cost_usd_total", "usd"),
    "claude_code.session.count": Known("sessions_total", "count"),
    "claude_code.lines_of_code.count": Known(
        None, "count", "type", (("added", "lines_added_total"), ("removed", "lines_removed_total"))
    ),
    "claude_code.commit.count": Known("commits_total", "count"),
    "claude_code.pull_request.count": Known("pull_requests_total", "count"),
    "claude_code.active_time.total": Known("active_time_s_total", "s"),
    "claude_code.code_edit_tool.decision": Known(
        None, "count", "decision", (("accept", "edits_accepted_total"), ("reject", "edits_rejected_total"))
    ),
    # OpenTelemetry GenAI semantic conventions (client metrics)
    "gen_ai.client.token.usage": Known(None, "tokens", "gen_ai.token.type", _TOKEN_TYPES),
    "gen_ai.client.operation.duration": Known(None, "s", latency=True),
    "gen_ai.server.request.duration": Known(None, "s", latency=True),
}
TOKEN_KPIS = frozenset(kpi for _, kpi in _TOKEN_TYPES)
_UCUM_UNITS = {
    "ms": "ms", "s": "s", "By": "bytes", "%": "percent", "{token}": "tokens", "{tokens}": "tokens",
    "tokens": "tokens", "USD": "usd", "usd": "usd", "1/s": "per_s", "{request}/s": "per_s",
}  # fmt: skip
_KPI_CHARS = re.compile(r"[^a-z0-9_]+")


@dataclass
class AgentData:
    """What one export request says about one agent."""

    agent_id: str
    labels: dict[str, str]
    records: int = 0
    increments: dict[str, tuple[float, str]] = field(default_factory=dict)  # counters' deltas
    cumulative: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)  # (kpi, series)
    gauges: dict[str, tuple[float, str]] = field(default_factory=dict)
    span_tokens: dict[str, float] = field(default_factory=dict)  # counted only while no token metric is
    samples: list[tuple[float, float | None, bool]] = field(default_factory=list)  # (at, ms, error)
    histograms: list[tuple[str, int, tuple[float, ...], tuple[int, ...], float]] = field(default_factory=list)
    logs: list[LogRow] = field(default_factory=list)
    token_metrics: bool = False
    raw_model: Any = None  # the model and provider attributes last read, as sent
    raw_provider: Any = None

    def add(self, kpi: str, delta: float, unit: str) -> None:
        before = self.increments.get(kpi)
        self.increments[kpi] = ((before[0] if before else 0.0) + delta, unit)


@dataclass
class Batch:
    agents: dict[str, AgentData] = field(default_factory=dict)
    records: int = 0  # spans, data points or log records read

    def agent(self, resource: ResourceView, record_attrs: Attributes) -> AgentData:
        agent_id, labels = resource.agent_of(record_attrs)
        data = self.agents.get(agent_id)
        if data is None:
            data = self.agents[agent_id] = AgentData(agent_id, dict(labels))
        if record_attrs:
            get = record_attrs.get
            raw = get("gen_ai.response.model") or get("gen_ai.request.model") or get("model")
            if raw is not None and raw != data.raw_model:  # most records repeat the last one's model
                data.raw_model = raw
                model = text(record_attrs, "gen_ai.response.model", "gen_ai.request.model", "model")
                if model:
                    data.labels["model"] = model
            raw = get("gen_ai.provider.name") or get("gen_ai.system")
            if raw is not None and raw != data.raw_provider:
                data.raw_provider = raw
                provider = text(record_attrs, "gen_ai.provider.name", "gen_ai.system")
                if provider:
                    data.labels["provider"] = provider
        return data


def _time(nanos: int, fallback: float) -> float:
    return nanos * _NANOS if nanos > 0 else fallback


# --- traces ---------------------------------------------------------------------------------------------


def map_traces(request: Any, now: float) -> Batch:
    batch = Batch()
    for resource_spans in request.resource_spans:
        resource = ResourceView(attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            framework = scope_spans.scope.name or None
            for span in scope_spans.spans:
                batch.records += 1
                _span(batch, resource, framework, span, now)
    return batch


def _span(batch: Batch, resource: ResourceView, framework: str | None, span: Any, now: float) -> None:
    attrs = attributes(span.attributes)
    data = batch.agent(resource, attrs)
    data.records += 1
    if framework and "framework" not in data.labels:
        data.labels["framework"] = framework[:64]
    end = _time(span.end_time_unix_nano, now)
    error = span.status.code == _STATUS_ERROR
    operation = text(attrs, "gen_ai.operation.name")
    if operation == "execute_tool":
        data.add("tool_calls_total", 1, "count")
    elif operation == "invoke_agent":
        data.add("runs_total", 1, "count")
    elif operation is not None or span.kind in (_SPAN_KIND_SERVER, _SPAN_KIND_CONSUMER):
        duration = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        data.samples.append((end, duration if duration >= 0 else None, error))
    for key, kpi in (
        ("gen_ai.usage.input_tokens", "tokens_in_total"),
        ("gen_ai.usage.output_tokens", "tokens_out_total"),
    ):
        value = attrs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            data.span_tokens[kpi] = data.span_tokens.get(kpi, 0.0) + float(value)
    ids = {"trace_id": hex_id(span.trace_id), "span_id": hex_id(span.span_id)}
    if error:
        why = span.status.message or "error status"
        fields = _fields(attrs, ids, span=span.name)
        data.logs.append(_log_row(end, "error", f"{span.name or 'span'} failed: {why}", fields))
    for event in span.events[:MAX_EVENTS_PER_SPAN]:
        event_attrs = attributes(event.attributes)
        level = "error" if event.name == "exception" else "info"
        message = text(event_attrs, "exception.message") if level == "error" else None
        line = f"{event.name}: {message}" if message else event.name or "span event"
        fields = _fields(event_attrs, ids, span=span.name)
        data.logs.append(_log_row(_time(event.time_unix_nano, end), level, line, fields))


# --- metrics --------------------------------------------------------------------------------------------


def map_metrics(request: Any, now: float) -> Batch:
    batch = Batch()
    for resource_metrics in request.resource_metrics:
        resource = ResourceView(attributes(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _metric(batch, resource, metric)
    return batch


def _metric(batch: Batch, resource: ResourceView, metric: Any) -> None:
    kind = metric.WhichOneof("data")
    known = KNOWN_METRICS.get(metric.name)
    if kind in ("sum", "gauge"):
        body = getattr(metric, kind)
        monotonic = kind == "sum" and body.is_monotonic
        delta = kind == "sum" and body.aggregation_temporality == _TEMPORALITY_DELTA
        for point in body.data_points:
            batch.records += 1
            value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
            if not math.isfinite(value):
                continue
            attrs = attributes(point.attributes)
            data = batch.agent(resource, attrs)
            data.records += 1
            kpi, unit = _kpi_of(metric, known, attrs, monotonic)
            if kpi is None:
                continue
            if kpi in TOKEN_KPIS:
                data.token_metrics = True
            if not monotonic:
                before = data.gauges.get(kpi)
                # several attribute sets of one gauge: the largest (a figure to worry about, not a sum)
                if before is None or value > before[0]:
                    data.gauges[kpi] = (value, unit)
            elif delta:
                data.add(kpi, value, unit)
            else:
                series = f"{metric.name}|{_series_key(attrs)}|{point.start_time_unix_nano}"
                data.cumulative[(kpi, series)] = (value, unit)
    elif kind == "histogram":
        body = metric.histogram
        for point in body.data_points:
            batch.records += 1
            attrs = attributes(point.attributes)
            data = batch.agent(resource, attrs)
            data.records += 1
            if known is None:
                continue
            if known.latency:
                scale = 1000.0 if (metric.unit or known.unit) == "s" else 1.0
                series = f"{metric.name}|{_series_key(attrs)}|{point.start_time_unix_nano}"
                data.histograms.append(
                    (
                        series,
                        body.aggregation_temporality,
                        tuple(bound * scale for bound in point.explicit_bounds),
                        tuple(point.bucket_counts),
                        _time(point.time_unix_nano, 0.0),
                    )
                )
                continue
            kpi = known.kpi_for(attrs)
            if kpi is None or not math.isfinite(point.sum):
                continue
            if kpi in TOKEN_KPIS:
                data.token_metrics = True
            if body.aggregation_temporality == _TEMPORALITY_DELTA:
                data.add(kpi, point.sum, known.unit)
            else:
                data.cumulative[(kpi, f"{metric.name}|{_series_key(attrs)}|{point.start_time_unix_nano}")] = (
                    point.sum,
                    known.unit,
                )
    else:  # exponential histograms and summaries: read, counted, not mapped (docs/otel.md)
        body = getattr(metric, kind) if kind else None
        for point in getattr(body, "data_points", ()):
            batch.records += 1
            data = batch.agent(resource, attributes(point.attributes))
            data.records += 1


def _kpi_of(metric: Any, known: Known | None, attrs: Attributes, monotonic: bool) -> tuple[str | None, str]:
    if known is not None:
        return known.kpi_for(attrs), known.unit
    name = kpi_name(metric.name, monotonic)
    if name is None:
        return None, "count"
    unit = _UCUM_UNITS.get(metric.unit)
    return name, unit or infer_unit(name)


def kpi_name(metric_name: str, counter: bool) -> str | None:
    """A metric's name as a KPI's: lower case, runs of other characters as '_', a counter ending in _total."""
    name = _KPI_CHARS.sub("_", metric_name.lower()).strip("_")
    name = name.lstrip("0123456789_")
    if not name:
        return None
    if counter and not name.endswith("_total"):
        name = f"{name[:58]}_total"
    return name[:64]


def _series_key(attrs: Attributes) -> str:
    return json.dumps(attrs, sort_keys=True, default=str)[:512]


# --- logs -----------------------------------------------------------------------------------------------

# Claude Code's and Codex's events, by name without the "claude_code." / "codex." prefix
_REQUEST_EVENTS = frozenset({"api_request"})
_ERROR_EVENTS = frozenset({"api_error"})
_TOOL_EVENTS = frozenset({"tool_result"})


def map_logs(request: Any, now: float) -> Batch:
    batch = Batch()
    for resource_logs in request.resource_logs:
        resource = ResourceView(attributes(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                batch.records += 1
                _log(batch, resource, record, now)
    return batch


def level_of(severity_number: int, severity_text: str) -> str:
    """OTel's 1-24 severity onto fleetdeck's five levels; the text when the number is unset."""
    if severity_number >= 21:
        return "critical"
    if severity_number >= 17:
        return "error"
    if severity_number >= 13:
        return "warning"
    if severity_number >= 9:
        return "info"
    if severity_number >= 1:
        return "debug"
    word = severity_text.strip().lower()
    return {
        "warn": "warning", "warning": "warning", "error": "error", "err": "error", "fatal": "critical",
        "critical": "critical", "debug": "debug", "trace": "debug",
    }.get(word, "info")  # fmt: skip


def _log(batch: Batch, resource: ResourceView, record: Any, now: float) -> None:
    attrs = attributes(record.attributes)
    data = batch.agent(resource, attrs)
    data.records += 1
    at = _time(record.time_unix_nano, _time(record.observed_time_unix_nano, now))
    body = plain(record.body) if record.HasField("body") else None
    event = getattr(record, "event_name", "") or text(attrs, "event.name") or ""
    if not event and isinstance(body, str) and body.startswith(("claude_code.", "codex.")):
        event = body
    short = event.split(".", 1)[1] if event.startswith(("claude_code.", "codex.")) else event
    level = level_of(record.severity_number, record.severity_text)
    if short in _REQUEST_EVENTS or short in _ERROR_EVENTS:
        failed = short in _ERROR_EVENTS
        data.samples.append((at, _number(attrs, "duration_ms"), failed))
        if failed and level in ("debug", "info", "warning"):
            level = "error"
    elif short in _TOOL_EVENTS:
        data.add("tool_calls_total", 1, "count")
    message = _event_line(short, attrs) if short else None
    if message is None:
        message = (
            body if isinstance(body, str) and body else (str(body) if body is not None else event or "log")
        )
    ids = {"trace_id": hex_id(record.trace_id), "span_id": hex_id(record.span_id)}
    fields = _fields(attrs, ids, event=event or None)
    data.logs.append(_log_row(at, level, message, fields))


def _number(attrs: Attributes, key: str) -> float | None:
    value = attrs.get(key)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    return None


def _event_line(name: str, attrs: Attributes) -> str | None:
    """A readable line for the coding agents' known events; None for any other."""
    model = text(attrs, "model") or "model"
    if name == "api_request":
        parts = [f"API request to {model}"]
        if (ms := _number(attrs, "duration_ms")) is not None:
            parts.append(f"{ms:.0f} ms")
        if (cost := _number(attrs, "cost_usd")) is not None:
            parts.append(f"${cost:.4f}")
        tokens = [
            f"{label} {int(n)}"
            for key, label in (("input_tokens", "in"), ("output_tokens", "out"))
            if (n := _number(attrs, key)) is not None
        ]
        return ", ".join(parts + tokens)
    if name == "api_error":
        status = text(attrs, "status_code")
        error = text(attrs, "error") or "error"
        attempt = text(attrs, "attempt")
        return (
            f"API error from {model}"
            + (f" ({status})" if status else "")
            + f": {error}"
            + (f", attempt {attempt}" if attempt else "")
        )
    if name == "tool_result":
        tool = text(attrs, "tool_name") or "tool"
        ok = str(attrs.get("success", "")).lower() in ("true", "1")
        ms = _number(attrs, "duration_ms")
        return f"{tool} {'ran' if ok else 'failed'}" + (f" in {ms:.0f} ms" if ms is not None else "")
    if name == "tool_decision":
        tool = text(attrs, "tool_name") or "tool"
        decision = text(attrs, "decision") or "decided"
        source = text(attrs, "source")
        return f"{tool} {decision}" + (f" ({source})" if source else "")
    if name == "user_prompt":
        length = text(attrs, "prompt_length")
        prompt = text(attrs, "prompt")
        return (
            f"prompt: {prompt}"
            if prompt
            else f"prompt submitted ({length} chars)"
            if length
            else "prompt submitted"
        )
    return None


def _fields(attrs: Attributes, ids: dict[str, str | None], **extra: str | None) -> dict[str, Any]:
    """Trace and span ids, then the record's attributes (bounded), as a log line's fields."""
    fields: dict[str, Any] = {key: value for key, value in ids.items() if value}
    fields.update({key: value for key, value in extra.items() if value})
    for key, value in attrs.items():
        if len(fields) >= MAX_FIELDS:
            fields["attributes_left_out"] = len(attrs) - sum(1 for k in attrs if k in fields)
            break
        if value is not None and key not in fields:
            fields[key] = value if not isinstance(value, str) else value[:MAX_VALUE_CHARS]
    return fields


def _log_row(at: float, level: str, message: str, fields: dict[str, Any]) -> LogRow:
    line = message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"
    return (at, level, line, dumps(fields) if fields else None)


MAPPERS = {"traces": map_traces, "metrics": map_metrics, "logs": map_logs}


def total_records(batches: Iterable[Batch]) -> int:
    return sum(batch.records for batch in batches)
