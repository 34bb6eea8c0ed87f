"""``GET /openapi.json``: the node API as OpenAPI 3.1, built from the same types the server speaks.

The schemas come from ``msgspec.json.schema_components`` over the wire model and the ``node_api`` bodies,
so the document cannot drift from what the server validates; the paths are written out here, next to the
statuses each can answer. Every error is ``application/problem+json`` (``Problem``). It is what the
schemathesis fuzz test drives the server with, and what openapi-python-client makes a client of: every
array says its items, every operation has an operationId (the generated function's name), and the title is
the API's, the same on every node (the node is named in the description and ``x-fleetdeck-node``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from backends.model import (
    Agent,
    AuditEntry,
    Checkpoint,
    Gate,
    KpiSeries,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    Phase,
    Task,
)
from backends.node_api import (
    ACTION_PATHS,
    API_REVISION,
    API_REVISION_HEADER,
    API_VERSION,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_REPLAYED_HEADER,
    KPI_COMPLETE_SINCE_HEADER,
    KPI_LEFT_OUT_HEADER,
    KPIS_PATH,
    MAX_KPI_POINTS,
    PREFIX,
    PROBLEM_CONTENT_TYPE,
    SSE_GAP_EVENT,
    SSE_LEGACY_ERROR_EVENT,
    SSE_LOG_EVENT,
    SSE_PROBLEM_EVENT,
    SSE_RETRY_MS,
    ActionResult,
    CheckpointBody,
    DispatchBody,
    HealthReport,
    LogGap,
    Problem,
    RollbackBody,
    RollbackPreview,
    SignGateBody,
    TargetBody,
    Whoami,
)

from .idempotency import MAX_KEY_LENGTH
from .log_stream import MAX_SEQ
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

REF = "#/components/schemas/{name}"
TITLE = "fleetdeck node API"
_WIRE_TYPES: tuple[Any, ...] = (
    HealthReport, NodeInfo, Whoami, NodeSnapshot, list[Agent], list[Phase], list[Task], list[Checkpoint],
    Agent, list[AuditEntry], LogRecord, LogGap, RollbackPreview, Problem,
    DispatchBody, TargetBody, CheckpointBody, RollbackBody, Task, ActionResult, Checkpoint,
    list[KpiSeries], SignGateBody, Gate,
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
    _dispatch_alternatives(components)
    _pairs_as_arrays(components["KpiSeries"]["properties"]["points"])

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

    def get(
        operation_id: str,
        summary: str,
        responses: dict[str, Any],
        *,
        public: bool = False,
        tag: str = "reads",
        **extra: Any,
    ) -> dict[str, Any]:
        """One GET; its operationId names the function a generated client gets, its tag the module."""
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "tags": [tag],
            "summary": summary,
            "responses": responses,
            **extra,
        }
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
        "/healthz": get(
            "get_health",
            "Is the server up, and which node it serves",
            ok(HealthReport),
            public=True,
            tag="server",
        ),
        "/openapi.json": get(
            "get_openapi",
            "This document",
            {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}},
            public=True,
            tag="server",
        ),
        "/metrics": get(
            "get_metrics",
            "Prometheus text exposition of the snapshot",
            {"200": {"description": "OK", "content": {METRICS_CONTENT_TYPE: {"schema": {"type": "string"}}}}},
            tag="server",
        ),
        f"{PREFIX}/info": get("get_info", "The node", ok(NodeInfo)),
        f"{PREFIX}/whoami": get("get_whoami", "Who the server takes the caller for", ok(Whoami)),
        f"{PREFIX}/snapshot": get("get_snapshot", "Everything about the node, now", ok(NodeSnapshot)),
        f"{PREFIX}/agents": get("list_agents", "The snapshot's agents", ok(list[Agent])),
        f"{PREFIX}/phases": get("list_phases", "The snapshot's plan phases", ok(list[Phase])),
        f"{PREFIX}/tasks": get("list_tasks", "The snapshot's dispatched tasks", ok(list[Task])),
        f"{PREFIX}/checkpoints": get("list_checkpoints", "The snapshot's checkpoints", ok(list[Checkpoint])),
        f"{PREFIX}/agents/{{agent_id}}": get(
            "get_agent", "One agent", ok(Agent), parameters=[_path_param("agent_id")]
        ),
        f"{PREFIX}/audit": get(
            "list_audit", "The audit trail after since_seq", ok(list[AuditEntry]), parameters=[since_seq]
        ),
        f"{PREFIX}/checkpoints/{{checkpoint_id}}/preview": get(
            "get_rollback_preview",
            "What a rollback to the checkpoint would change beyond it",
            ok(RollbackPreview),
            parameters=[_path_param("checkpoint_id")],
        ),
        f"{PREFIX}/logs": get(
            "stream_logs",
            "Log records as server-sent events",
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
                    "description": "the id of the last event seen: wins over since_seq",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
                {
                    "name": API_REVISION_HEADER,
                    "in": "header",
                    "description": f"the API revision the client speaks ({API_REVISION} now); any value "
                    "says it is not a revision 1 http backend",
                    "schema": {"type": "string"},
                },
            ],
            description=_LOGS_DESCRIPTION,
        ),
        KPIS_PATH: get(
            "list_kpis",
            "The KPI history the node keeps: one series per agent and KPI, oldest point first",
            ok(list[KpiSeries], headers=_KPI_HEADERS),
            parameters=_KPI_PARAMETERS,
            description=_KPIS_DESCRIPTION,
        ),
    }
    bodies = {
        "dispatch": (DispatchBody, Task, 201),
        "pause": (TargetBody, ActionResult, 200),
        "resume": (TargetBody, ActionResult, 200),
        "stop": (TargetBody, ActionResult, 200),
        "checkpoint": (CheckpointBody, Checkpoint, 201),
        "rollback": (RollbackBody, Checkpoint, 200),
        "sign_gate": (SignGateBody, Gate, 200),
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
                "operationId": name,
                "tags": ["actions"],
                "summary": f"{name} (needs role operator; audited under the credential's name)",
                "parameters": [
                    *(_path_param(n) for n in re.findall(r"\{(\w+)\}", path)),
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
        # The title is the API's, the same on every node (generators name the client package after it);
        # which node answers is in the description and in x-fleetdeck-node
        "info": {
            "title": TITLE,
            "version": version,
            "description": f"Served by node {node.name} (backend {node.backend}). API version {API_VERSION}, "
            f"revision {API_REVISION}; errors are RFC 9457 problem+json.",
            "x-fleetdeck-node": {"id": node.id, "name": node.name, "backend": node.backend},
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
                    # declared on both kinds of node: one without a tokens file answers only that token
                }
            },
        },
        "security": [{"bearer": []}],
    }


_LOGS_DESCRIPTION = (
    f"The stream opens with `retry: {SSE_RETRY_MS}` (a browser's EventSource waits that many milliseconds "
    f"before it reconnects). Events: `{SSE_LOG_EVENT}` (data a LogRecord, id its seq), `{SSE_GAP_EVENT}` "
    f"(data a LogGap, id next_seq - 1), and `{SSE_PROBLEM_EVENT}` (data a Problem), after which the stream "
    "ends: the backend failed once the answer had begun. A reconnect sends the last id as Last-Event-ID and "
    "gets exactly the records after it. A fleetdeck http backend from before API revision 2 (which sends no "
    f"{API_REVISION_HEADER} header) is sent `{SSE_LEGACY_ERROR_EVENT}` in place of `{SSE_PROBLEM_EVENT}`, "
    "the only name it knows; any other client gets `problem`, which an EventSource cannot mistake for its "
    "own `error` event."
)


_KPI_PARAMETERS = [
    {
        "name": "since",
        "in": "query",
        "description": "UTC epoch seconds: only points measured at or after it (default 0: all it keeps)",
        "schema": {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,9})?$"},
    },
    *(
        {
            "name": name,
            "in": "query",
            "description": f"only this {what} (repeat it for several; none: every one)",
            "style": "form",
            "explode": True,
            "schema": {"type": "array", "items": schema},
        }
        for name, what, schema in (
            ("name", "KPI", {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 64}),
            ("agent", "agent's", {"type": "string", "minLength": 1, "maxLength": 200}),
        )
    ),
]
_KPI_HEADERS = {
    KPI_COMPLETE_SINCE_HEADER: {
        "description": "only when points were left out: every matching point at or after this time "
        "(UTC epoch seconds) is in the answer",
        "schema": {"type": "string"},
    },
    KPI_LEFT_OUT_HEADER: {
        "description": "only when points were left out: how many, the oldest first",
        "schema": {"type": "string"},
    },
}
_KPIS_DESCRIPTION = (
    f"An answer holds at most {MAX_KPI_POINTS} points. When more match, the oldest are left out, exactly "
    f"as if `since` were later, and `{KPI_COMPLETE_SINCE_HEADER}` and `{KPI_LEFT_OUT_HEADER}` say from "
    "when the answer is complete and how many points it left out. The role is the snapshot's (a viewer "
    "may read it); a backend that keeps no KPI history answers 501."
)


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
            event(SSE_PROBLEM_EVENT, "Problem", False),
        ]
    }


def _dispatch_alternatives(components: dict[str, Any]) -> None:
    """DispatchRequest.__post_init__'s rule, which msgspec cannot see: an agent_id or a non-empty command,
    never both. Written as two whole object schemas (a generator makes a class of each) built from
    msgspec's own schema of DispatchRequest, so every field (the command's items too) stays msgspec's."""
    request = components["DispatchRequest"]
    fields = request["properties"]
    shared = {name: schema for name, schema in fields.items() if name not in ("agent_id", "command")}
    absent = {"type": "null"}  # the other alternative's field: left out, or null
    components["DispatchToAgent"] = {
        "title": "DispatchToAgent",
        "description": "A payload for an existing agent.",
        "type": "object",
        "properties": {"agent_id": _not_null(fields["agent_id"]), **shared, "command": absent},
        "required": ["agent_id"],
    }
    components["DispatchCommand"] = {
        "title": "DispatchCommand",
        "description": "A command (its argv, not empty) to start as a new agent.",
        "type": "object",
        "properties": {
            "command": {**_not_null(fields["command"]), "minItems": 1},
            **shared,
            "agent_id": absent,
        },
        "required": ["command"],
    }
    components["DispatchRequest"] = {
        "title": request["title"],
        "description": request["description"],
        "oneOf": [{"$ref": REF.format(name=name)} for name in ("DispatchToAgent", "DispatchCommand")],
    }


def _pairs_as_arrays(points: dict[str, Any]) -> None:
    """msgspec writes a ``(when, value)`` pair as ``prefixItems`` with ``items: false``, which is valid
    JSON Schema but which openapi-python-client cannot parse; the pair keeps its two typed places and its
    length, and says its items are numbers (both are)."""
    pair = points["items"]
    pair["items"] = {"type": "number"}
    pair["description"] = "(when measured in UTC epoch seconds, value)"


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of ``X`` in msgspec's schema of ``X | None`` (``anyOf`` X and null)."""
    (inner,) = [s for s in schema["anyOf"] if s != {"type": "null"}]
    return dict(inner)
