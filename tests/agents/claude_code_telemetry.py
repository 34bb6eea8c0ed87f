"""Claude Code's telemetry, as Claude Code sends it (https://code.claude.com/docs/en/monitoring-usage),
sent by the OpenTelemetry SDK's own exporters: resource ``service.name=claude-code``; metrics
``claude_code.token.usage`` (by ``type``), ``claude_code.cost.usage``, ``claude_code.session.count`` with the
``session.id`` attribute on every point, in delta temporality (Claude Code's default); and the
``claude_code.api_request`` / ``claude_code.api_error`` events as log records.

    python claude_code_telemetry.py SESSION_ID [protobuf|json]
"""

import sys

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

session = sys.argv[1]
encoding = sys.argv[2] if len(sys.argv) > 2 else "protobuf"
if encoding == "json":
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

resource = Resource.create({"service.name": "claude-code", "service.version": "2.1.0"})
common = {"session.id": session, "user.account_uuid": "acct-42", "terminal.type": "tmux"}
exporter = OTLPMetricExporter(preferred_temporality={Counter: AggregationTemporality.DELTA})
meters = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(exporter, 60_000)])
meter = meters.get_meter("com.anthropic.claude_code")
tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
cost = meter.create_counter("claude_code.cost.usage", unit="USD")
sessions = meter.create_counter("claude_code.session.count", unit="count")
model = "claude-sonnet-4-5"
sessions.add(1, common)
for kind, count in (("input", 1200), ("output", 350), ("cacheRead", 8000), ("cacheCreation", 400)):
    tokens.add(count, {**common, "type": kind, "model": model})
cost.add(0.0423, {**common, "model": model})

logs = LoggerProvider(resource=resource)
logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
events = logs.get_logger("com.anthropic.claude_code.events")
for duration, status in ((1840, None), (2210, None), (950, "529")):
    name = "api_error" if status else "api_request"
    attributes = {**common, "event.name": name, "model": model, "duration_ms": duration}
    if status:
        attributes |= {"status_code": status, "error": "Overloaded", "attempt": 1}
    else:
        attributes |= {"cost_usd": 0.0211, "input_tokens": 600, "output_tokens": 175}
    events.emit(body=f"claude_code.{name}", attributes=attributes, severity_number=SeverityNumber.INFO)
meters.shutdown()
logs.shutdown()
print("exported", flush=True)
