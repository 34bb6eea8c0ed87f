"""The OTLP/HTTP receiver: OpenTelemetry traces, metrics and logs in, agents of the local store out.

Not a backend: it writes into the local node's store, which every backend-facing reader (the console,
``fleetdeck status``, ``/metrics``, the http backend through ``node serve``) already sees. The mapping from
OTel to agents, KPIs and log lines is in :mod:`backends.otlp.mapping` and documented in docs/otel.md.
Everything here is imported only when a receiver starts: protobuf is not a cost of starting the console.
"""
