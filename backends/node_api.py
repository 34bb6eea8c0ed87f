"""The node HTTP API's contract, shared by the node server and the http backend.

Neither side imports the other: both import this module, so the paths, request bodies, SSE events and
the mapping between backend errors and HTTP statuses are written once. Responses are the wire model
itself (``backends.model``); errors are RFC 9457 problem+json bodies (:class:`Problem`).

    GET  /healthz                       HealthReport (no token needed)
    GET  /metrics                       Prometheus text exposition (viewer; a token like every route)
    GET  /openapi.json                  this API as OpenAPI 3.1 (no token needed)
    GET  /v1/info                       NodeInfo
    GET  /v1/whoami                     Whoami: the caller's token name and role
    GET  /v1/snapshot                   NodeSnapshot
    GET  /v1/agents | phases | tasks | checkpoints     the snapshot's lists
    GET  /v1/agents/{agent_id}          Agent
    GET  /v1/audit?since_seq=N          [AuditEntry]
    GET  /v1/logs?since_seq=N&follow=1  text/event-stream: ``retry:`` first, then `log` events (id = seq)
                                        and `gap` events (LogGap); a ``Last-Event-ID`` header takes
                                        precedence over since_seq; a `problem` event (Problem) ends a
                                        failed stream (`error` to an http backend of revision 1)
    GET  /v1/checkpoints/{id}/preview   RollbackPreview
    POST /v1/actions/dispatch           DispatchBody -> Task (201)
    POST /v1/actions/pause|resume|stop  TargetBody -> ActionResult
    POST /v1/actions/checkpoint         CheckpointBody -> Checkpoint (201)
    POST /v1/actions/rollback           RollbackBody -> Checkpoint (the safety checkpoint taken first)
    GET  /v1/kpis?since=T&name=N&agent=A  [KpiSeries] (name and agent repeatable; at most MAX_KPI_POINTS
                                        points: the oldest left out past it, as if since were later, and
                                        ``Fleetdeck-KPI-Complete-Since`` / ``-Left-Out`` say so)
    POST /v1/phases/{phase_id}/gate     SignGateBody -> Gate (the phase's gate with the sign-off in signed)

Every route but /healthz and /openapi.json needs ``Authorization: Bearer <token>``: a token from the
server's tokens file (``--tokens``), or, on a node served without one (loopback only), the owner's local
operator token (``backends/local_token.py``). The operator the audit trail names is the credential's: the
token's name, or the server's OS user. No header a caller sets can name it.

API revisions: the paths stay ``/v1`` while the contract grows in ways old clients survive, and each
revision is numbered (``API_REVISION``). The http backend says which it speaks in a
``Fleetdeck-API-Revision`` header on every request. Revision 2 renamed the log stream's failure event from
`error` to `problem`: a browser's EventSource fires its own `error` event when a connection drops, so a page
could not tell the node's report from a reconnect (its onerror ran, it reconnected, got the same report,
and looped). An http backend of revision 1 knows only `error`, and it sent no revision header, only its
User-Agent; a server still sends it `error` (:func:`log_failure_event`), so every fleetdeck console keeps
working against a newer node. The http backend understands both names, for older nodes.

Revision 3 added ``/v1/kpis`` and the gate sign-off (``/v1/phases/{phase_id}/gate``); a node of revision 2
lacks both, and its info carries neither the ``kpi_history`` nor the ``sign_gate`` capability, so a
console never asks it.

Every POST accepts an ``Idempotency-Key`` header: a retry with the same key (and the same body) gets the
first answer back, marked ``Idempotency-Replayed: true``, and the action is not done twice - also after
the server restarted (the keys are kept in a file beside the node's state for 24 hours).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from .errors import (
    AuthFailed,
    BackendError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Unreachable,
    Unsupported,
)
from .model import DispatchRequest, SignedDecision

API_VERSION = "1"
API_REVISION = 3  # see the module docstring: what changed within API_VERSION, and how old clients are kept
API_REVISION_HEADER = "Fleetdeck-API-Revision"
HTTP_BACKEND_USER_AGENT = "fleetdeck-http-backend"  # the http backend's, in every revision
PREFIX = "/v1"

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_REPLAYED_HEADER = "Idempotency-Replayed"
PROBLEM_CONTENT_TYPE = "application/problem+json"

SSE_LOG_EVENT = "log"
SSE_GAP_EVENT = "gap"
# The backend failed mid-stream: data is a Problem; the stream ends after it (the headers were already sent).
SSE_PROBLEM_EVENT = "problem"
# The same event's name in revision 1, still sent to an http backend of that revision (log_failure_event)
SSE_LEGACY_ERROR_EVENT = "error"
# The stream's first field: how long an EventSource waits before reconnecting, in milliseconds
SSE_RETRY_MS = 2000


def log_failure_event(user_agent: str | None, revision: str | None) -> str:
    """The name a server gives the log stream's failure event, for a request with these headers: `error`
    only for an http backend of revision 1 (its User-Agent, and no revision header), else `problem`."""
    if revision is None and user_agent == HTTP_BACKEND_USER_AGENT:
        return SSE_LEGACY_ERROR_EVENT
    return SSE_PROBLEM_EVENT


MAX_REASON = 1000
Reason = Annotated[str, Meta(max_length=MAX_REASON)] | None

ACTION_PATHS = {
    "dispatch": f"{PREFIX}/actions/dispatch",
    "pause": f"{PREFIX}/actions/pause",
    "resume": f"{PREFIX}/actions/resume",
    "stop": f"{PREFIX}/actions/stop",
    "checkpoint": f"{PREFIX}/actions/checkpoint",
    "rollback": f"{PREFIX}/actions/rollback",
    "sign_gate": f"{PREFIX}/phases/{{phase_id}}/gate",  # a template: the phase's id, quoted, in its place
}

KPIS_PATH = f"{PREFIX}/kpis"
# The most KPI points one /v1/kpis answer holds (about 2.5 MB of JSON): past it the oldest are left out,
# exactly as if ``since`` were later, as the node's own retention leaves out what it no longer keeps
MAX_KPI_POINTS = 100_000
KPI_COMPLETE_SINCE_HEADER = "Fleetdeck-KPI-Complete-Since"  # every matching point at or after it is in
KPI_LEFT_OUT_HEADER = "Fleetdeck-KPI-Left-Out"  # how many matching points were left out for the bound


def action_path(action: str, **params: str) -> str:
    """The path to POST ``action`` to, its template filled with ``params`` (quoted: an id may hold '/')."""
    from urllib.parse import quote

    return ACTION_PATHS[action].format_map({k: quote(v, safe="") for k, v in params.items()})


class Body(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies reject unknown fields: a typo in a request must not be silently dropped."""


class DispatchBody(Body, frozen=True, kw_only=True):
    request: DispatchRequest
    reason: Reason = None


class TargetBody(Body, frozen=True, kw_only=True):
    target: Annotated[str, Meta(min_length=1, max_length=250)]  # agent:ID, phase:ID, task:ID or an agent id
    reason: Reason = None


class CheckpointBody(Body, frozen=True, kw_only=True):
    label: Annotated[str, Meta(max_length=200)] = ""
    reason: Reason = None


class RollbackBody(Body, frozen=True, kw_only=True):
    checkpoint_id: Annotated[str, Meta(min_length=1, max_length=200)]
    reason: Reason = None


class SignGateBody(Body, frozen=True, kw_only=True):
    decision: SignedDecision
    reason: Reason = None


class ActionResult(Struct, frozen=True, kw_only=True):
    ok: bool = True
    detail: str | None = None


class RollbackPreview(Struct, frozen=True, kw_only=True):
    lines: tuple[str, ...] = ()


class HealthReport(Struct, frozen=True, kw_only=True):
    status: str = "ok"
    node: str
    backend: str
    version: str
    api: str = API_VERSION


class Whoami(Struct, frozen=True, kw_only=True):
    """Who the server takes the caller for; a viewer's console turns its action keys off up front."""

    name: str
    role: Literal["viewer", "operator"]
    # True whenever a credential was checked (every route but the public ones); False only for the
    # anonymous caller of /healthz and /openapi.json
    authenticated: bool


class LogGap(Struct, frozen=True, kw_only=True):
    """Sent instead of lines the node no longer has (dropped by its retention) when a client resumes."""

    after_seq: int
    next_seq: int
    missed: int


class Problem(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem detail. ``field`` names the request field at fault, when there is one."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


# error class -> (HTTP status, problem slug); the client maps back by status
_ERROR_STATUS: dict[type[BackendError], tuple[int, str]] = {
    AuthFailed: (401, "unauthorized"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not-found"),
    Conflict: (409, "conflict"),
    Invalid: (422, "invalid"),
    Unsupported: (501, "unsupported"),
    Unreachable: (503, "unavailable"),
}
_STATUS_ERROR: dict[int, type[BackendError]] = {
    400: Invalid,
    401: AuthFailed,
    403: Forbidden,
    404: NotFound,
    405: Invalid,
    409: Conflict,
    413: Invalid,
    415: Invalid,
    422: Invalid,
    501: Unsupported,
    502: Unreachable,
    503: Unreachable,
    504: Unreachable,
}
_TITLES = {
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not-found": "Not found",
    "conflict": "Conflict",
    "invalid": "Invalid request",
    "unsupported": "Not supported by this node",
    "unavailable": "Node unavailable",
    "request-timeout": "Request timeout",
    "too-large": "Request body too large",
    "bad-request": "Bad request",
    "method-not-allowed": "Method not allowed",
    "internal": "Internal error",
}


def problem(status: int, slug: str, detail: str, field: str | None = None) -> Problem:
    return Problem(
        type=f"urn:fleetdeck:problem:{slug}",
        title=_TITLES.get(slug, slug),
        status=status,
        detail=detail,
        field=field,
    )


def problem_for_error(exc: BackendError) -> Problem:
    """The problem body a server answers for a backend error."""
    for cls in type(exc).__mro__:
        if cls in _ERROR_STATUS:
            status, slug = _ERROR_STATUS[cls]
            return problem(status, slug, str(exc) or type(exc).__name__)
    return problem(500, "internal", str(exc) or type(exc).__name__)


def error_for_problem(status: int, detail: str) -> BackendError:
    """The backend error a client raises for an error answer (``detail`` already in words)."""
    cls = _STATUS_ERROR.get(status)
    if cls is None:
        cls = Unreachable if status >= 500 else Invalid
    return cls(detail)


def decode_problem(content: bytes) -> Problem | None:
    """A problem body, or None when the answer is not one (a proxy's HTML page, say)."""
    try:
        return msgspec.json.decode(content, type=Problem)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
