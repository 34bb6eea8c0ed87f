"""Who is calling: a bearer token from the tokens file, or (without one) the owner's local operator token.

Every request but ``/healthz`` and ``/openapi.json`` needs ``Authorization: Bearer``, in both modes:

- with ``--tokens``, the token's name is the caller (and the audit trail's operator), its role says
  whether it may act;
- without, the server listens on loopback only and admits the one token in the owner's private file
  (``backends.local_token``): the caller is the server's OS user, an operator. Another local user cannot
  read that file, so cannot call.

Who the audit names comes from the credential only. ``X-Fleetdeck-Operator``, which once let a caller name
the operator, is ignored: an audit trail that records a name anyone can type is worse than none. Tokens
are never logged, echoed in a problem, or kept after the check; comparisons are constant-time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from backends.local_token import matches
from backends.loopback import is_loopback
from backends.node_api import problem

from .problems import ProblemError, problem_response
from .tokens import Caller, Role, TokenBook

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
NODE_API_ROLES: frozenset[Role] = frozenset({"viewer", "operator"})
ANONYMOUS = "anonymous"
_CHALLENGE = 'Bearer realm="fleetdeck"'

__all__ = ["PUBLIC_PATHS", "AuthMiddleware", "LocalOperator", "caller_of", "is_loopback", "require_operator"]


@dataclass(frozen=True)
class LocalOperator:
    """The no-tokens mode's one credential: the owner's local operator token, and the owner's name."""

    token: str
    user: str
    file: str = "~/.local/state/fleetdeck/local-operator.token"  # where the owner's clients find it

    def __repr__(self) -> str:  # never the token, whoever prints this
        return f"LocalOperator(user={self.user!r})"


class AuthMiddleware:
    """Sets ``request.state.caller`` or answers 401; the role check is the action routes'
    (:func:`require_operator`). Give exactly one of ``tokens`` and ``local``."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: TokenBook | None,
        local: LocalOperator | None,
        *,
        admit: frozenset[Role] = NODE_API_ROLES,
        refusal: Callable[[Caller], str] | None = None,
        public_paths: frozenset[str] = PUBLIC_PATHS,
    ) -> None:
        """``admit``: the roles this app answers (a reporter's token opens the OTLP receiver only);
        ``refusal`` says why another role is refused."""
        if (tokens is None) == (local is None):
            raise ValueError("AuthMiddleware needs exactly one of a tokens file and a local operator token")
        self.app = app
        self.tokens = tokens
        self.local = local
        self.admit = admit
        self.refusal = refusal or _api_refusal
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.local is not None:
            caller, refusal = _local_caller(self.local, scope)
        else:
            assert self.tokens is not None
            caller, refusal = _token_caller(self.tokens, Headers(scope=scope))
        public = scope["path"] in self.public_paths
        if caller is None and not public:
            assert refusal is not None
            await refusal(scope, receive, send)
            return
        if caller is not None and caller.role not in self.admit and not public:
            await problem_response(problem(403, "forbidden", self.refusal(caller)))(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller or Caller(ANONYMOUS, "viewer", False)
        await self.app(scope, receive, send)


def _api_refusal(caller: Caller) -> str:
    return f"token {caller.name!r} has role {caller.role}: it may send telemetry (OTLP) only"


def _bearer(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _missing(detail: str) -> ASGIApp:
    return problem_response(problem(401, "unauthorized", detail), {"WWW-Authenticate": _CHALLENGE})


def _invalid(detail: str) -> ASGIApp:
    return problem_response(
        problem(401, "unauthorized", detail), {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'}
    )


def _token_caller(tokens: TokenBook, headers: Headers) -> tuple[Caller | None, ASGIApp | None]:
    token = _bearer(headers)
    if token is None:
        return None, _missing("this node needs a token: send Authorization: Bearer <token>")
    caller = tokens.check(token)
    if caller is None:
        return None, _invalid("the bearer token is not known to this node")
    return caller, None


def _local_caller(local: LocalOperator, scope: Scope) -> tuple[Caller | None, ASGIApp | None]:
    # Defence in depth: the serve command only binds loopback without tokens, but an app mounted some other
    # way must not take the owner's token over a network in plain text.
    client = scope.get("client")
    if client is not None and not is_loopback(str(client[0])):
        detail = "this node has no tokens file and only answers callers on its own host"
        return None, problem_response(problem(403, "forbidden", detail))
    token = _bearer(Headers(scope=scope))
    if token is None:
        return None, _missing(
            f"this node answers only its owner: send the local operator token ({local.file}) as "
            "Authorization: Bearer <token>"
        )
    if not matches(local.token, token):
        return None, _invalid("the bearer token is not this node's local operator token")
    return Caller(local.user, "operator", True), None


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
