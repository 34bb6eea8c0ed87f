"""Request bodies: bounded, JSON, validated into the ``node_api`` body types with the bad field named.

The size limit is checked twice: against ``Content-Length`` before reading anything, and against the bytes
actually received, since a chunked body has no length and a client may lie about it.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request

from .problems import fail, validation_problem

T = TypeVar("T")
DEFAULT_MAX_BODY = 64 * 1024


async def read_body(request: Request, max_body: int) -> bytes:
    """The raw body (at most ``max_body`` bytes), or a 413/415/400 problem."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise fail(400, "bad-request", "Content-Length is not a number", field="Content-Length") from None
        if length > max_body:
            raise _too_large(max_body)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body:
            raise _too_large(max_body)
        chunks.append(chunk)
    body = b"".join(chunks)
    if body.strip() and not _is_json(request.headers.get("content-type")):
        got = request.headers.get("content-type") or "no Content-Type"
        raise fail(415, "invalid", f"the body must be application/json, not {got}", field="Content-Type")
    return body


def decode_body(body: bytes, type_: type[T], what: str) -> T:
    """Validate a JSON body into ``type_``; an empty body counts as ``{}`` (all defaults)."""
    try:
        return msgspec.json.decode(body.strip() or b"{}", type=type_)
    except msgspec.ValidationError as exc:
        raise validation_problem(exc, what) from None
    except msgspec.DecodeError as exc:
        raise fail(400, "bad-request", f"the body is not valid JSON: {exc}") from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _too_large(max_body: int) -> Exception:
    return fail(413, "too-large", f"the body is larger than this node accepts ({max_body} bytes)")
