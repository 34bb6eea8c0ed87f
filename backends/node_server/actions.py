"""The POST routes: operator actions, each audited by the backend under the caller's name.

Order of checks, each answering a problem: the role (403, before the body is even read), the body's size
and type (413/415), the ``Idempotency-Key`` (a replay, or 422 for a reused key), then the body's content
(400/422) and the backend's own verdict (``problem_for_error``). Answers from the claim on, errors
included, are what a retry with the same key gets back; 5xx answers are not kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from backends.base import Backend
from backends.errors import BackendError
from backends.model import Target, to_json
from backends.node_api import (
    ACTION_PATHS,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_REPLAYED_HEADER,
    PROBLEM_CONTENT_TYPE,
    ActionResult,
    CheckpointBody,
    DispatchBody,
    RollbackBody,
    SignGateBody,
    TargetBody,
    problem_for_error,
)

from .auth import require_operator
from .bodies import decode_body, read_body
from .idempotency import Answer, idempotency_key
from .problems import ProblemError, fail
from .service import JSON, json_response, service

# (backend, decoded body, operator, the route's path parameters) -> (status, wire value)
Act = Callable[[Backend, Any, str, Mapping[str, str]], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    body_type: type
    act: Act


def _target(text: str) -> Target:
    try:
        return Target.parse(text)
    except ValueError as exc:
        raise fail(422, "invalid", str(exc), field="$.target") from None


async def _dispatch(
    backend: Backend, body: DispatchBody, operator: str, _: Mapping[str, str]
) -> tuple[int, Any]:
    return 201, await backend.dispatch(body.request, operator=operator, reason=body.reason)


def _control(verb: str) -> Act:
    async def act(backend: Backend, body: TargetBody, operator: str, _: Mapping[str, str]) -> tuple[int, Any]:
        target = _target(body.target)
        await getattr(backend, verb)(target, operator=operator, reason=body.reason)
        return 200, ActionResult(ok=True, detail=f"{verb} {target}")

    return act


async def _checkpoint(
    backend: Backend, body: CheckpointBody, operator: str, _: Mapping[str, str]
) -> tuple[int, Any]:
    return 201, await backend.checkpoint(body.label, operator=operator, reason=body.reason)


async def _rollback(
    backend: Backend, body: RollbackBody, operator: str, _: Mapping[str, str]
) -> tuple[int, Any]:
    return 200, await backend.rollback(body.checkpoint_id, operator=operator, reason=body.reason)


async def _sign_gate(
    backend: Backend, body: SignGateBody, operator: str, path: Mapping[str, str]
) -> tuple[int, Any]:
    gate = await backend.sign_gate(path["phase_id"], body.decision, operator=operator, reason=body.reason)
    return 200, gate


ACTIONS: dict[str, ActionSpec] = {
    "dispatch": ActionSpec("dispatch", DispatchBody, _dispatch),
    "pause": ActionSpec("pause", TargetBody, _control("pause")),
    "resume": ActionSpec("resume", TargetBody, _control("resume")),
    "stop": ActionSpec("stop", TargetBody, _control("stop")),
    "checkpoint": ActionSpec("checkpoint", CheckpointBody, _checkpoint),
    "rollback": ActionSpec("rollback", RollbackBody, _rollback),
    "sign_gate": ActionSpec("sign_gate", SignGateBody, _sign_gate),
}
assert set(ACTIONS) == set(ACTION_PATHS)


def action_route(spec: ActionSpec) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        node = service(request)
        caller = require_operator(request, spec.name)
        raw = await read_body(request, node.max_body)
        key = idempotency_key(request.headers.get(IDEMPOTENCY_KEY_HEADER))
        if key is None:
            return _response(await _answer(request, spec, raw, caller.name))
        async with node.idempotency.claim((caller.name, request.url.path, key), raw) as claim:
            if claim.replay is not None:
                return _response(claim.replay, {IDEMPOTENCY_REPLAYED_HEADER: "true"})
            claim.answer = await _answer(request, spec, raw, caller.name)
            return _response(claim.answer)

    handler.__name__ = f"action_{spec.name}"
    return handler


async def _answer(request: Request, spec: ActionSpec, raw: bytes, operator: str) -> Answer:
    """The action's answer, refusals included (they are answers a retry must get too)."""
    node = service(request)
    try:
        body: Any = decode_body(raw, spec.body_type, f"{spec.name} body")
        status, value = await spec.act(node.backend, body, operator, request.path_params)
    except ProblemError as exc:
        return Answer(exc.problem.status, to_json(exc.problem), PROBLEM_CONTENT_TYPE)
    except BackendError as exc:
        refusal = problem_for_error(exc)
        return Answer(refusal.status, to_json(refusal), PROBLEM_CONTENT_TYPE)
    finally:
        node.cache.invalidate()  # the caller's next read must see what it did (or tried)
    return Answer(status, to_json(value), JSON)


def _response(answer: Answer, headers: dict[str, str] | None = None) -> Response:
    if answer.media_type == JSON:
        return json_response(answer.body, answer.status, headers)
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type, headers=headers)
