"""Everything that can go wrong talking to a Ray dashboard, as the backend error an operator can act on.

The dashboard answers errors as plain text, often a whole Python traceback; only its last line says what
happened, so that line is what a message quotes. No message ever shows the token.
"""

from __future__ import annotations

import socket
import ssl

import httpx

from backends.errors import (
    AuthFailed,
    BackendError,
    Conflict,
    Invalid,
    NotFound,
    TimedOut,
    Unreachable,
)

from .settings import RaySettings

SNIPPET = 160  # characters of an error body quoted in a message


def transport_failure(exc: BaseException, settings: RaySettings) -> Unreachable:
    """The error for a request that got no answer; TimedOut when the cluster may be slow, not gone."""
    where = f"cannot reach Ray cluster {settings.node_name} at {settings.url}"
    if isinstance(exc, httpx.ConnectTimeout):
        return TimedOut(f"{where}: timed out after {settings.connect_timeout_s:g} s connecting")
    if isinstance(exc, httpx.TimeoutException):
        return TimedOut(f"{where}: timed out after {settings.read_timeout_s:g} s waiting for an answer")
    return Unreachable(f"{where}: {_transport_reason(exc)}")


def _transport_reason(exc: BaseException) -> str:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for cause in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verify failed: {cause.verify_message or cause}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the Ray head running, with its dashboard on this port?)"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the dashboard"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause.strerror or cause})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def error_for_response(response: httpx.Response, settings: RaySettings) -> BackendError:
    """The backend error for a non-2xx answer, with the dashboard's own words when it gave some."""
    status = response.status_code
    detail = body_reason(response)
    where = f"Ray cluster {settings.node_name}"
    if status in (401, 403):
        # Ray answers 401 for a missing token and 403 for a wrong one: both are our credentials.
        if settings.token is None:
            return AuthFailed(
                f"{where} wants a token, and none is configured (set token_env or token_file): {detail}"
            )
        return AuthFailed(f"{where} rejected the token from {settings.token_source}: {detail}")
    if status == 404:
        return NotFound(f"{where}: {detail}")
    if status == 409:
        return Conflict(f"{where}: {detail}")
    if status in (400, 422):
        return Invalid(f"{where} refused the request: {detail}")
    if status >= 500:
        return Unreachable(f"{where} failed to answer {response.request.url.path}: {detail}")
    return BackendError(f"{where}: {detail}")


def body_reason(response: httpx.Response) -> str:
    """The last meaningful line of an error body (a traceback ends with the exception), shortened."""
    text = response.content.decode("utf-8", "replace")
    if response.headers.get("content-type", "").startswith("text/html") or text.lstrip()[:1] == "<":
        return f"HTTP {response.status_code} with an HTML page: a proxy or another server answered?"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    reason = lines[-1]
    return reason if len(reason) <= SNIPPET else reason[: SNIPPET - 1] + "…"


class NotRayAnswer(Unreachable):
    """A 2xx answer that is not the JSON a Ray dashboard sends: something else answers at that URL."""
