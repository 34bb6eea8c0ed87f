"""Who is calling: bearer tokens from the tokens file, or (without one) whoever is at this loopback host.

With a tokens file every request but ``/healthz`` and ``/openapi.json`` needs ``Authorization: Bearer``;
the token's name is the caller (and the audit trail's operator), its role says whether it may act.
Without one the server listens on loopback only (the serve command refuses anything else) and every
caller is an operator named by the ``X-Fleetdeck-Operator`` header, as a local console would be. Tokens
are never logged, echoed in a problem, or kept after the check.
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from backends.node_api import OPERATOR_HEADER, decode_operator, problem

from .problems import ProblemError, problem_response
from .tokens import Caller, TokenBook

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
ANONYMOUS = "anonymous"
MAX_OPERATOR_NAME = 100
_CHALLENGE = 'Bearer realm="fleetdeck"'


class AuthMiddleware:
    """Sets ``request.state.caller`` or answers 401; the role check is the action routes'
    (:func:`require_operator`)."""

    def __init__(self, app: ASGIApp, tokens: TokenBook | None) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        public = scope["path"] in PUBLIC_PATHS
        claimed, refusal = _operator_header(headers)
        if refusal is not None:
            caller = None
        elif self.tokens is None:
            caller, refusal = _loopback_caller(scope, claimed)
        else:
            caller, refusal = _token_caller(self.tokens, headers)
        if caller is None and not public:
            assert refusal is not None
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller or Caller(ANONYMOUS, "viewer", False)
        await self.app(scope, receive, send)


def _token_caller(tokens: TokenBook, headers: Headers) -> tuple[Caller | None, ASGIApp | None]:
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        detail = "this node needs a token: send Authorization: Bearer <token>"
        return None, problem_response(problem(401, "unauthorized", detail), {"WWW-Authenticate": _CHALLENGE})
    caller = tokens.check(token)
    if caller is None:
        return None, problem_response(
            problem(401, "unauthorized", "the bearer token is not known to this node"),
            {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
    return caller, None


def _operator_header(headers: Headers) -> tuple[str, ASGIApp | None]:
    """The name ``X-Fleetdeck-Operator`` claims (or anonymous). Checked in both modes - with tokens it is
    ignored, but a malformed header is a client bug worth a 400 either way."""
    try:
        name = decode_operator(headers.get(OPERATOR_HEADER, "")).strip() or ANONYMOUS
    except UnicodeDecodeError:
        name = "\x00"  # refused below, as any other malformed name
    if len(name) > MAX_OPERATOR_NAME or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        detail = f"{OPERATOR_HEADER} must be 1 to {MAX_OPERATOR_NAME} printable characters"
        return name, problem_response(problem(400, "bad-request", detail, field=OPERATOR_HEADER))
    return name, None


def _loopback_caller(scope: Scope, name: str) -> tuple[Caller | None, ASGIApp | None]:
    # Defence in depth: the serve command only binds loopback without tokens, but an app mounted some other
    # way must not hand operator rights to the network.
    client = scope.get("client")
    if client is not None and not is_loopback(str(client[0])):
        detail = "this node has no tokens file and only answers callers on its own host"
        return None, problem_response(problem(403, "forbidden", detail))
    return Caller(name, "operator", False), None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (and ::ffff:127.x) or the name localhost."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def caller_of(request: Request) -> Caller:
    caller = getattr(request.state, "caller", None)
    assert isinstance(caller, Caller), "AuthMiddleware must run before the routes"
    return caller


def require_operator(request: Request, action: str) -> Caller:
    """The caller, if it may act; else a 403 problem naming the token, its role and the role needed."""
    caller = caller_of(request)
    if not caller.may_act:
        who = f"token {caller.name!r}" if caller.authenticated else f"caller {caller.name!r}"
        raise ProblemError(
            problem(403, "forbidden", f"{who} has role {caller.role}; {action} needs role operator")
        )
    return caller
