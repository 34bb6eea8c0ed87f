"""``GET /openapi.json``: the node API as OpenAPI 3.1, built from the same types the server speaks.

The schemas come from ``msgspec.json.schema_components`` over the wire model and the ``node_api`` bodies,
so the document cannot drift from what the server validates; the paths are written out here, next to the
statuses each can answer. Every error is ``application/problem+json`` (``Problem``). It is what the
schemathesis fuzz test drives the server with.
"""

from __future__ import annotations

from typing import Any

import msgspec

from backends.model import Agent, AuditEntry, Checkpoint, LogRecord, NodeInfo, NodeSnapshot, Phase, Task
from backends.node_api import (
    ACTION_PATHS,
    API_VERSION,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_REPLAYED_HEADER,
    PREFIX,
    PROBLEM_CONTENT_TYPE,
    SSE_ERROR_EVENT,
    SSE_GAP_EVENT,
    SSE_LOG_EVENT,
    ActionResult,
    CheckpointBody,
    DispatchBody,
    HealthReport,
    LogGap,
    Problem,
    RollbackBody,
    RollbackPreview,
    TargetBody,
    Whoami,
)

from .idempotency import MAX_KEY_LENGTH
from .log_stream import MAX_SEQ
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

REF = "#/components/schemas/{name}"
_WIRE_TYPES: tuple[Any, ...] = (
    HealthReport, NodeInfo, Whoami, NodeSnapshot, list[Agent], list[Phase], list[Task], list[Checkpoint],
    Agent, list[AuditEntry], LogRecord, LogGap, RollbackPreview, Problem,
    DispatchBody, TargetBody, CheckpointBody, RollbackBody, Task, ActionResult, Checkpoint,
)  # fmt: skip
_STATUS_TEXT = {
    400: "Malformed request (not JSON, a bad header)",
    401: "No token, or a token this node does not know",
    403: "The caller's role may not do this, or the node is read-only",
    404: "No such resource",
    409: "The action does not fit the current state",
    413: "The body is too large",
    415: "The body is not application/json",
    422: "A field is invalid (named in `field`)",
    501: "This node's backend cannot do this",
    503: "The node's backend is unreachable",
}
_READ_ERRORS = (401, 403, 404, 422, 501, 503)
_ACTION_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 501, 503)


def build_openapi(node: NodeInfo, version: str) -> dict[str, Any]:
    schemas, components = msgspec.json.schema_components(_WIRE_TYPES, ref_template=REF)
    by_type = dict(zip(_WIRE_TYPES, schemas, strict=True))
    components["Problem"]["properties"]["status"]["minimum"] = 400
    # DispatchRequest.__post_init__'s rule, which msgspec cannot see: an agent_id or a non-empty command
    components["DispatchRequest"]["oneOf"] = [
        {
            "required": ["agent_id"],
            "properties": {"agent_id": {"type": "string"}, "command": {"type": "null"}},
        },
        {
            "required": ["command"],
            "properties": {"command": {"type": "array", "minItems": 1}, "agent_id": {"type": "null"}},
        },
    ]

    def ok(type_: Any, status: int = 200, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "description": "OK" if status == 200 else "Created",
            "content": {"application/json": {"schema": by_type[type_]}},
        }
        if headers:
            answer["headers"] = headers
        return {str(status): answer}

    def errors(statuses: tuple[int, ...]) -> dict[str, Any]:
        problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": REF.format(name="Problem")}}}
        return {str(s): {"description": _STATUS_TEXT[s], "content": problem} for s in statuses}

    def get(summary: str, responses: dict[str, Any], *, public: bool = False, **extra: Any) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
        if public:
            operation["security"] = []
        else:
            operation["responses"].update(errors(_READ_ERRORS))
        return {"get": operation}

    since_seq = {
        "name": "since_seq",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
    }
    paths: dict[str, Any] = {
        "/healthz": get("Is the server up, and which node it serves", ok(HealthReport), public=True),
        "/openapi.json": get(
            "This document",
            {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
            public=True,
        ),
        "/metrics": get(
            "Prometheus text exposition of the snapshot",
            {"200": {"description": "OK", "content": {METRICS_CONTENT_TYPE: {"schema": {"type": "string"}}}}},
        ),
        f"{PREFIX}/info": get("The node", ok(NodeInfo)),
        f"{PREFIX}/whoami": get("Who the server takes the caller for", ok(Whoami)),
        f"{PREFIX}/snapshot": get("Everything about the node, now", ok(NodeSnapshot)),
        f"{PREFIX}/agents": get("The snapshot's agents", ok(list[Agent])),
        f"{PREFIX}/phases": get("The snapshot's plan phases", ok(list[Phase])),
        f"{PREFIX}/tasks": get("The snapshot's dispatched tasks", ok(list[Task])),
        f"{PREFIX}/checkpoints": get("The snapshot's checkpoints", ok(list[Checkpoint])),
        f"{PREFIX}/agents/{{agent_id}}": get("One agent", ok(Agent), parameters=[_path_param("agent_id")]),
        f"{PREFIX}/audit": get(
            "The audit trail after since_seq", ok(list[AuditEntry]), parameters=[since_seq]
        ),
        f"{PREFIX}/checkpoints/{{checkpoint_id}}/preview": get(
            "What a rollback to the checkpoint would change beyond it",
            ok(RollbackPreview),
            parameters=[_path_param("checkpoint_id")],
        ),
        f"{PREFIX}/logs": get(
            "Log records as server-sent events: `log` (data LogRecord, id = seq), `gap` (data LogGap), "
            "`error` (data Problem); Last-Event-ID wins over since_seq",
            {
                "200": {
                    "description": "An event stream",
                    "content": {"text/event-stream": {"schema": _sse_event()}},
                }
            },
            parameters=[
                since_seq,
                {
                    "name": "follow",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
            ],
        ),
    }
    bodies = {
        "dispatch": (DispatchBody, Task, 201),
        "pause": (TargetBody, ActionResult, 200),
        "resume": (TargetBody, ActionResult, 200),
        "stop": (TargetBody, ActionResult, 200),
        "checkpoint": (CheckpointBody, Checkpoint, 201),
        "rollback": (RollbackBody, Checkpoint, 200),
    }
    replayed = {
        IDEMPOTENCY_REPLAYED_HEADER: {
            "description": "true when this answer is a replay",
            "schema": {"type": "string"},
        }
    }
    for name, path in ACTION_PATHS.items():
        body_type, answer_type, status = bodies[name]
        paths[path] = {
            "post": {
                "summary": f"{name} (needs role operator; audited under the credential's name)",
                "parameters": [
                    {
                        "name": IDEMPOTENCY_KEY_HEADER,
                        "in": "header",
                        "description": "a retry with the same key and body gets the first answer back",
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_KEY_LENGTH,
                            "pattern": "^[!-~]+$",
                        },
                    },
                ],
                "requestBody": {
                    "required": body_type is not CheckpointBody,  # its fields all have defaults
                    "content": {"application/json": {"schema": by_type[body_type]}},
                },
                "responses": {**ok(answer_type, status, replayed), **errors(_ACTION_ERRORS)},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"fleetdeck node API ({node.name})",
            "version": version,
            "description": f"API version {API_VERSION}; errors are RFC 9457 problem+json.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from the node's tokens file; on a node served without one, the "
                    "owner's local operator token ($XDG_STATE_HOME/fleetdeck/local-operator.token). The "
                    "audit trail names the token's name, or the server's OS user.",
                }
            },
        },
        "security": [{"bearer": []}],
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _sse_event() -> dict[str, Any]:
    """One event of the log stream (OpenAPI 3.1: the ``schema`` of text/event-stream describes each event),
    its ``data`` a JSON document of the event's type."""

    def event(name: str, type_name: str, with_id: bool) -> dict[str, Any]:
        data = {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": REF.format(name=type_name)},
        }
        properties: dict[str, Any] = {"event": {"const": name}, "data": data}
        if with_id:
            properties["id"] = {"type": "string", "pattern": "^[0-9]+$"}
        return {"type": "object", "required": list(properties), "properties": properties}

    return {
        "oneOf": [
            event(SSE_LOG_EVENT, "LogRecord", True),
            event(SSE_GAP_EVENT, "LogGap", True),
            event(SSE_ERROR_EVENT, "Problem", False),
        ]
    }
