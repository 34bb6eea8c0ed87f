"""Everything that can go wrong talking to a node, turned into the backend error an operator can act on.

Three kinds: the request never got an answer (:func:`transport_reason`: refused, timed out, TLS), the node
answered with an error status (:func:`error_for_response`: problem+json, or a proxy's page), or it answered
2xx with something that is not the wire model (:class:`NotTheModel`). None of them is ever shown as a raw
exception, and none of them ever shows the token.
"""

from __future__ import annotations

import socket
import ssl

import httpx

from backends import node_api
from backends.errors import AuthFailed, BackendError, TimedOut, Unreachable

from .settings import HttpSettings

SNIPPET = 80  # characters of an unexpected body quoted in a message


class NotTheModel(Unreachable):
    """A 2xx answer that does not decode as the wire type asked for: the node is not (this version of) a
    fleetdeck node, or something in between (a proxy, a captive portal) answered instead."""

    def __init__(self, node: str, method: str, path: str, expected: str, problem: str) -> None:
        self.method, self.path, self.expected, self.problem = method, path, expected, problem
        super().__init__(f"node {node} answered something that is not {_article(expected)}: {problem}")


class NodeBusy(Unreachable):
    """A 502/503/504 answer: the node (or its gateway) cannot answer just now, and may soon."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def transport_reason(exc: BaseException, settings: HttpSettings) -> str:
    """A short human reason for a request that got no answer: "connection refused", "timed out after 3 s
    connecting", "TLS certificate verify failed: ..."."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out after {_secs(settings.connect_timeout_s)} connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timed out after {_secs(settings.read_timeout_s)} waiting for an answer"
    if isinstance(exc, httpx.WriteTimeout):
        return "timed out sending the request"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verify failed: {cause.verify_message or cause.reason or cause}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the node"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause.strerror or cause})"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in str(exc):
            hint = " (does it serve https?)" if not settings.is_https else ""
            return f"the node closed the connection without answering{hint}"
        return f"the node dropped the connection mid-answer ({_first_line(exc)})"
    if isinstance(exc, httpx.ReadError):
        return f"the connection broke while reading ({_first_line(exc)})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({_first_line(exc)})"
    return f"{type(exc).__name__}: {_first_line(exc)}" if str(exc) else type(exc).__name__


def unreachable(settings: HttpSettings, reason: str, *, timed_out: bool = False) -> Unreachable:
    """``timed_out``: the node may be slow rather than gone; the console shows its data stale, not offline."""
    error = TimedOut if timed_out else Unreachable
    return error(f"cannot reach node {settings.node_name} at {settings.url}: {reason}")


def error_for_response(response: httpx.Response, settings: HttpSettings) -> BackendError:
    """The backend error for a non-2xx answer: the problem's detail when the node sent problem+json (the
    node's own words), else "HTTP 502 from URL" and what the body looked like."""
    status = response.status_code
    problem = node_api.decode_problem(response.content)
    if problem is not None:
        detail = problem.detail
    else:
        detail = f"HTTP {status} {response.reason_phrase} from {response.request.url}".rstrip()
        if describe := describe_body(response):
            detail = f"{detail} ({describe})"
    if status == 401:
        return auth_failed(settings, detail)
    return node_api.error_for_problem(status, detail)


def auth_failed(settings: HttpSettings, detail: str) -> AuthFailed:
    if settings.token is None:
        # a loopback node: say what became of the local operator token too (sent, missing, withheld)
        note = settings.local_auth.note if settings.local_auth is not None else ""
        return AuthFailed(
            f"node {settings.node_name} wants a token, and none is configured "
            f"(set token_env or token_file){'; ' + note if note else ''}: {detail}"
        )
    return AuthFailed(f"node {settings.node_name} rejected the token from {settings.token_source}: {detail}")


def describe_body(response: httpx.Response) -> str:
    """What an unexpected body looks like, briefly: a proxy's HTML page is the usual suspect."""
    ctype = content_type(response)
    if ctype == "text/html" or response.content.lstrip()[:1] == b"<":
        return "an HTML page: a proxy or another server answered?"
    text = response.content[:SNIPPET].decode("utf-8", "replace")
    text = " ".join(text.split())
    if not text:
        return "an empty body"
    more = "…" if len(response.content) > SNIPPET else ""
    return f"{ctype or 'no content type'}: {text!r}{more}"


def content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").partition(";")[0].strip().lower()


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: httpx hides the OSError or SSLError two or three levels down."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _secs(value: float) -> str:
    return f"{value:g} s"
