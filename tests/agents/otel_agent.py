"""An agent built on the OpenTelemetry SDK alone (no fleetdeck code): it makes model calls and tool calls
as GenAI-convention spans, counts orders as a metric and logs through Python's logging, exported with the
SDK's own OTLP/HTTP exporters to wherever ``OTEL_EXPORTER_OTLP_ENDPOINT`` points.

    python otel_agent.py SERVICE [protobuf|json] [CALLS] [FAILING]

Every call is a ``chat`` span on gpt-4o with 100 input and 40 output tokens, lasting about 20 ms, and a
tool call; the last FAILING calls end in an error status. It logs "placed order N" per call and, at the
end, "payment declined" at ERROR (outside any span); then it flushes every exporter and prints "exported".
"""

import logging
import sys
import time

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

service = sys.argv[1]
encoding = sys.argv[2] if len(sys.argv) > 2 else "protobuf"
calls = int(sys.argv[3]) if len(sys.argv) > 3 else 5
failing = int(sys.argv[4]) if len(sys.argv) > 4 else 0

if encoding == "json":
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

resource = Resource.create({"service.name": service})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
meter_provider = MeterProvider(
    resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), 60_000)]
)
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
log = logging.getLogger(service)
log.addHandler(LoggingHandler(logger_provider=logger_provider))
log.setLevel(logging.INFO)
log.propagate = False

tracer = tracer_provider.get_tracer("shop.agent")
orders = meter_provider.get_meter("shop.agent").create_counter("orders.placed", unit="1")
for n in range(calls):
    with tracer.start_as_current_span("invoke_agent shopper") as run:
        run.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("gen_ai.usage.input_tokens", 100)
            span.set_attribute("gen_ai.usage.output_tokens", 40)
            time.sleep(0.02)
            if n >= calls - failing:
                span.set_status(Status(StatusCode.ERROR, "rate limited by the provider"))
        with tracer.start_as_current_span("execute_tool lookup_price") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "lookup_price")
        orders.add(1)
        log.info("placed order %d", n)  # inside the run's span: the record carries its trace and span ids
log.error("payment declined")
tracer_provider.shutdown()
meter_provider.shutdown()
logger_provider.shutdown()
print("exported", flush=True)
