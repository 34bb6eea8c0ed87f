"""The http backend against nodes that misbehave: hand-made ASGI apps on a real uvicorn, answering garbage,
errors, slowly, or not at all. Every failure must be a BackendError whose message says what was wrong."""

from __future__ import annotations

import json

import pytest

from backends.errors import (
    AuthFailed,
    BackendError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TimedOut,
    Unreachable,
)
from backends.http import HttpBackend
from backends.http.settings import settings_from_config
from backends.model import DispatchRequest, NodeSnapshot, Target, Task, to_builtins
from backends.node_api import IDEMPOTENCY_KEY_HEADER, PREFIX

from .serving import free_port, serve_asgi
from .test_http_backend_support import (
    FAKE_INFO,
    FakeNode,
    backend_for,
    drop_connection,
    in_turn,
    json_reply,
    node_config,
    problem_reply,
    reply,
    slow,
)

SNAPSHOT = f"{PREFIX}/snapshot"
DISPATCH = f"{PREFIX}/actions/dispatch"
PAUSE = f"{PREFIX}/actions/pause"
GOOD_SNAPSHOT = NodeSnapshot(node=FAKE_INFO, observed_at=1_700_000_000.0)
GOOD_TASK = Task(
    id="t-1", kind="task", target="agent:a1", created_at=1.0, updated_at=1.0, submitted_by="alice"
)
HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def snapshot_with(**changes: object) -> bytes:
    data = to_builtins(GOOD_SNAPSHOT)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return json.dumps(data).encode()


_DELETE = object()


async def snapshot_error(node: FakeNode, **options: object) -> BackendError:
    with serve_asgi(node) as url:
        backend = backend_for(url, options=options)
        try:
            with pytest.raises(BackendError) as caught:
                await backend.snapshot()
        finally:
            await backend.close()
    return caught.value


# --- answers that are not the wire model -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (HTML, "text/html", "not a NodeSnapshot: an HTML page"),
        (b'{"node": {"id": "x",, }', "application/json", "not a NodeSnapshot: JSON is malformed"),
        (
            snapshot_with(system__cpu_percent="high"),
            "application/json",
            "not a NodeSnapshot: Expected `float | null`, got `str` - at `$.system.cpu_percent`",
        ),
        (
            snapshot_with(node__id=_DELETE),
            "application/json",
            "not a NodeSnapshot: Object missing required field `id` - at `$.node`",
        ),
        (b"{}", "application/json", "not a NodeSnapshot: Object missing required field `node`"),
        (b"", "application/json", "not a NodeSnapshot: an empty body"),
    ],
    ids=["html", "malformed-json", "wrong-type", "missing-field", "empty-object", "empty-body"],
)
async def test_a_snapshot_that_is_not_the_model_is_said_in_words(
    body: bytes, content_type: str, words: str
) -> None:
    error = await snapshot_error(FakeNode({SNAPSHOT: reply(200, body, content_type)}))
    assert isinstance(error, Unreachable)
    assert str(error).startswith("node gpu-01 answered something that is not a NodeSnapshot")
    assert words in str(error)


async def test_the_good_snapshot_passes_so_the_garbage_cases_can_fail() -> None:
    node = FakeNode({SNAPSHOT: json_reply(GOOD_SNAPSHOT)})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            assert await backend.snapshot() == GOOD_SNAPSHOT


async def test_a_wrongly_typed_task_after_a_dispatch() -> None:
    node = FakeNode({DISPATCH: json_reply({"id": "t-1", "kind": 3}, status=201)})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            with pytest.raises(Unreachable, match=r"not a Task: Expected `str`, got `int` - at `\$.kind`"):
                await backend.dispatch(DispatchRequest(agent_id="a1"), operator="alice")


async def test_an_audit_that_is_not_a_list() -> None:
    node = FakeNode({f"{PREFIX}/audit": json_reply({"seq": 1})})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            with pytest.raises(Unreachable) as caught:
                await backend.audit()
    assert str(caught.value) == (
        "node gpu-01 answered something that is not a list of AuditEntry: Expected `array`, got `object`"
    )


# --- servers that are not (this version of) a fleetdeck node ------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        # an older server: no /v1 at all
        (
            {"/v1/whoami": reply(404, b"<html>404</html>", "text/html")},
            "GET /v1/whoami was refused: HTTP 404",
        ),
        ({"/v1/whoami": reply(200, HTML, "text/html")}, "not a Whoami (an HTML page"),
        ({"/v1/whoami": json_reply({"name": "x"})}, "not a Whoami (Object missing required field `role`)"),
        ({"/v1/info": json_reply({})}, "not a NodeInfo (Object missing required field `id`)"),
    ],
    ids=["older-server", "html-whoami", "partial-whoami", "empty-info"],
)
async def test_a_server_that_does_not_speak_the_api_is_named(routes: dict, words: str) -> None:
    node = FakeNode(routes)
    with serve_asgi(node) as url:
        backend = backend_for(url)
        with pytest.raises(Unreachable) as caught:
            await backend.open()
        await backend.close()
    message = str(caught.value)
    assert message.startswith(f"node at {url} does not speak the fleetdeck node API v1: ")
    assert words in message


# --- error answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, Invalid), (403, Forbidden), (404, NotFound), (409, Conflict), (422, Invalid)],
)
async def test_a_problem_answer_becomes_the_matching_error_with_the_nodes_words(
    status: int, error_class: type[BackendError]
) -> None:
    node = FakeNode({PAUSE: problem_reply(status, f"the node says no ({status})")})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            with pytest.raises(error_class) as caught:
                await backend.pause(Target(kind="agent", id="a1"), operator="alice")
    assert str(caught.value) == f"the node says no ({status})"
    assert type(caught.value) is error_class
    assert len(node.requests_to(PAUSE)) == 1  # a 4xx is never retried


async def test_a_proxys_error_page_says_status_url_and_what_came_back() -> None:
    node = FakeNode({SNAPSHOT: reply(502, HTML, "text/html")})
    error = await snapshot_error(node)
    assert isinstance(error, Unreachable)
    assert "HTTP 502 Bad Gateway from http://127.0.0.1:" in str(error)
    assert "/v1/snapshot (an HTML page" in str(error)
    assert len(node.requests_to(SNAPSHOT)) == 3  # 502 is retried: three attempts by default


async def test_a_non_problem_4xx_keeps_its_status_mapping() -> None:
    node = FakeNode({SNAPSHOT: reply(409, b"busy, try later", "text/plain")})
    error = await snapshot_error(node)
    assert type(error) is Conflict
    assert "HTTP 409 Conflict from" in str(error) and "'busy, try later'" in str(error)


async def test_a_rejected_token_says_so_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "a-token-that-must-never-be-printed"
    monkeypatch.setenv("FLEETDECK_TOKEN_T", secret)
    node = FakeNode({"/v1/whoami": problem_reply(401, "the bearer token is not known", "unauthorized")})
    with serve_asgi(node) as url:
        backend = backend_for(url, token_env="FLEETDECK_TOKEN_T")
        with pytest.raises(AuthFailed) as caught:
            await backend.open()
        await backend.close()
    assert str(caught.value) == (
        "node gpu-01 rejected the token from $FLEETDECK_TOKEN_T: the bearer token is not known"
    )
    assert node.seen[0].headers["authorization"] == f"Bearer {secret}"


async def test_no_token_configured_says_what_to_set() -> None:
    node = FakeNode({"/v1/whoami": problem_reply(401, "this node needs a token", "unauthorized")})
    with serve_asgi(node) as url:
        backend = backend_for(url)
        with pytest.raises(AuthFailed, match="none is configured"):
            await backend.open()
        await backend.close()
    assert "authorization" not in node.seen[0].headers


# --- no answer ------------------------------------------------------------------------------------------


async def test_a_closed_port_is_unreachable_with_connection_refused() -> None:
    port = free_port()
    backend = backend_for(f"http://127.0.0.1:{port}")
    with pytest.raises(Unreachable) as caught:
        await backend.snapshot()
    await backend.close()
    assert str(caught.value) == f"cannot reach node gpu-01 at http://127.0.0.1:{port}: connection refused"
    assert not isinstance(caught.value, TimedOut)


async def test_a_slow_node_times_out_in_words() -> None:
    node = FakeNode({SNAPSHOT: slow(2.0, json_reply(GOOD_SNAPSHOT))})
    error = await snapshot_error(node, read_timeout_s=0.3, attempts=1)
    assert isinstance(error, TimedOut)  # slow, not known dead: the console shows its data stale
    assert str(error).endswith(": timed out after 0.3 s waiting for an answer")
    assert len(node.requests_to(SNAPSHOT)) == 1


# --- retries --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["dropped", "503"])
async def test_a_retried_action_carries_the_same_idempotency_key(first: str) -> None:
    failure = drop_connection() if first == "dropped" else problem_reply(503, "restarting", "unavailable")
    node = FakeNode({DISPATCH: in_turn(failure, json_reply(GOOD_TASK, status=201))})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            task = await backend.dispatch(DispatchRequest(agent_id="a1"), operator="alice")
            await backend.dispatch(DispatchRequest(agent_id="a1"), operator="alice")  # a second action
    assert task == GOOD_TASK
    posts = node.requests_to(DISPATCH)
    assert len(posts) == 3
    keys = [p.headers[IDEMPOTENCY_KEY_HEADER.lower()] for p in posts]
    assert keys[0] == keys[1]  # the retry of one action
    assert keys[2] != keys[0]  # a new action, a new key
    assert posts[0].body == posts[1].body
    assert not any("x-fleetdeck-operator" in p.headers for p in posts)  # the credential names who acts


async def test_a_node_that_stays_down_gives_up_after_the_attempts() -> None:
    node = FakeNode({DISPATCH: problem_reply(503, "the backend is down", "unavailable")})
    with serve_asgi(node) as url:
        async with backend_for(url) as backend:
            with pytest.raises(Unreachable, match=r"^the backend is down$"):
                await backend.dispatch(DispatchRequest(agent_id="a1"), operator="alice")
    assert len(node.requests_to(DISPATCH)) == 3


async def test_retry_after_is_honoured_up_to_the_cap() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    busy = reply(503, b"", headers=[("Retry-After", "1.5")])
    node = FakeNode({SNAPSHOT: in_turn(busy, busy, json_reply(GOOD_SNAPSHOT))})
    with serve_asgi(node) as url:
        backend = HttpBackend(settings_from_config(node_config(url)), sleep=sleep)
        async with backend:
            assert await backend.snapshot() == GOOD_SNAPSHOT
    assert len(node.requests_to(SNAPSHOT)) == 3
    assert len(waits) == 2 and all(1.5 <= w <= 2.0 for w in waits)
