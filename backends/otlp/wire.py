"""OTLP/HTTP bodies in and out: the three export requests, protobuf or JSON, plain or gzip.

Decoding is opentelemetry-proto's generated messages and protobuf's own JSON mapping; the one place OTLP/JSON
departs from protobuf's mapping (trace and span ids are hex, not base64: OTLP spec, "JSON Protobuf
Encoding") is bridged before parsing. Replies use the request's encoding, as the spec requires, errors
included: a ``google.rpc.Status`` whose message says what was wrong.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

Signal = Literal["traces", "metrics", "logs"]
Encoding = Literal["protobuf", "json"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: what one request may grow to once decompressed: a gzip bomb stops here, not in memory
MAX_DECODED_BYTES = 64 * 1024 * 1024

_REQUESTS: dict[Signal, type[Message]] = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}
_RESPONSES: dict[Signal, type[Message]] = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
}
_REJECTED_FIELD: dict[Signal, str] = {
    "traces": "rejected_spans",
    "metrics": "rejected_data_points",
    "logs": "rejected_log_records",
}
# OTLP/JSON writes these bytes fields as hex (everywhere they occur: spans, links, log records, exemplars)
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_GRPC_INVALID_ARGUMENT = 3
_GRPC_UNAVAILABLE = 14
_GRPC_RESOURCE_EXHAUSTED = 8
_GRPC_UNAUTHENTICATED = 16


class BodyError(ValueError):
    """A body this receiver cannot take; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[BodyError], tuple[str, int]]:
        # raised in a mapper process, it crosses back by pickle: its status with it
        return (BodyError, (str(self), self.status))


@dataclass(frozen=True)
class Decoded:
    signal: Signal
    encoding: Encoding
    request: Any  # the signal's Export*ServiceRequest


def encoding_of(content_type: str | None) -> Encoding:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return "protobuf"
    if media == JSON:
        return "json"
    shown = media or "none"
    raise BodyError(f"Content-Type {shown!r} is not OTLP: send {PROTOBUF} or {JSON}", 415)


def decompress(body: bytes, content_encoding: str | None) -> bytes:
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return body
    if coding != "gzip":
        raise BodyError(f"Content-Encoding {coding!r} is not supported: send gzip or none", 415)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise BodyError(f"the body is not valid gzip ({exc})") from None
    if inflater.unconsumed_tail:
        raise BodyError(f"the body inflates past {MAX_DECODED_BYTES} bytes; send smaller batches", 413)
    if not inflater.eof:
        raise BodyError("the gzip body is cut short")
    return out


def decode(signal: Signal, body: bytes, content_type: str | None, content_encoding: str | None) -> Decoded:
    """The export request in ``body``, or BodyError naming what is wrong with it."""
    encoding = encoding_of(content_type)
    raw = decompress(body, content_encoding)
    request = _REQUESTS[signal]()
    if encoding == "protobuf":
        try:
            request.ParseFromString(raw)
        except DecodeError as exc:
            raise BodyError(f"the body is not a protobuf {type(request).__name__} ({exc})") from None
        return Decoded(signal, encoding, request)
    try:
        tree = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BodyError(f"the body is not JSON ({exc})") from None
    if not isinstance(tree, dict):
        raise BodyError(f"the body is not a JSON {type(request).__name__} object")
    try:
        json_format.ParseDict(_ids_to_base64(tree, "$"), request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BodyError(f"the body is not an OTLP/JSON {type(request).__name__}: {exc}") from None
    return Decoded(signal, encoding, request)


def _ids_to_base64(node: Any, path: str) -> Any:
    """The same tree with every hex trace/span id as the base64 protobuf's JSON mapping reads."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            where = f"{path}.{key}"
            if key in _HEX_ID_KEYS and isinstance(value, str):
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise BodyError(f"{where} is not a hex id: {value[:40]!r}") from None
            else:
                value = _ids_to_base64(value, where)
            out[key] = value
        return out
    if isinstance(node, list):
        return [_ids_to_base64(item, f"{path}[{i}]") for i, item in enumerate(node)]
    return node


def hex_id(raw: bytes) -> str | None:
    """A trace or span id as OTel tools show it (lowercase hex); None for the empty (absent) id."""
    if not raw:
        return None
    hexed = raw.hex()
    return hexed if hexed.strip("0") else None


def reply(decoded: Decoded | Signal, encoding: Encoding, rejected: int = 0, message: str = "") -> bytes:
    """The export response: empty when all was taken, else partial_success with the count refused."""
    signal = decoded.signal if isinstance(decoded, Decoded) else decoded
    response = _RESPONSES[signal]()
    if rejected or message:
        partial = response.partial_success
        setattr(partial, _REJECTED_FIELD[signal], rejected)
        partial.error_message = message
    return _encode(response, encoding)


def status(http_status: int, message: str, encoding: Encoding) -> bytes:
    """The body of a 4xx/5xx reply: google.rpc.Status, as the OTLP/HTTP spec asks."""
    code = {
        400: _GRPC_INVALID_ARGUMENT,
        401: _GRPC_UNAUTHENTICATED,
        413: _GRPC_INVALID_ARGUMENT,
        415: _GRPC_INVALID_ARGUMENT,
        429: _GRPC_RESOURCE_EXHAUSTED,
    }.get(http_status, _GRPC_UNAVAILABLE)
    return _encode(status_pb2.Status(code=code, message=message), encoding)


def _encode(message: Message, encoding: Encoding) -> bytes:
    if encoding == "protobuf":
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def media_type(encoding: Encoding) -> str:
    return PROTOBUF if encoding == "protobuf" else JSON
