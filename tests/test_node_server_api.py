"""The node server's HTTP API against a demo node: a real uvicorn on 127.0.0.1, real httpx, no mocks."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.demo import demo_fleet
from backends.demo.backend import DemoBackend
from backends.local_token import os_user
from backends.model import Agent, AuditEntry, DispatchRequest, NodeSnapshot, Task, from_json
from backends.node_api import (
    ACTION_PATHS,
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_REPLAYED_HEADER,
    PROBLEM_CONTENT_TYPE,
    Problem,
    Whoami,
)
from backends.node_server.app import create_app
from backends.node_server.tokens import TokenBook, parse_tokens
from console.core.clock import FrozenClock
from tests.conftest import T0
from tests.serving import as_owner, owner_auth, serve_asgi

VIEWER_TOKEN = "viewer-token-0123456789"
OPERATOR_TOKEN = "operator-token-0123456789"


def token_book() -> TokenBook:
    import hashlib

    return parse_tokens(
        {
            "tokens": [
                {"name": "grace", "role": "viewer", "token": VIEWER_TOKEN},
                {
                    "name": "alice",
                    "role": "operator",
                    "sha256": hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest(),
                },
            ]
        },
        "test",
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def problem_of(response: httpx.Response) -> Problem:
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE, response.text
    body = from_json(response.content, Problem)
    assert body.status == response.status_code
    return body


@pytest.fixture
def demo() -> DemoBackend:
    return demo_fleet(seed=7, nodes=1, clock=FrozenClock(T0 + 120))[0]


@pytest.fixture
def open_url(demo: DemoBackend) -> Iterator[str]:
    """A demo node served without tokens (loopback: every caller an operator)."""
    with serve_asgi(create_app(demo, max_body=4096)) as url:
        yield url


@pytest.fixture
def secured_url(demo: DemoBackend) -> Iterator[str]:
    with serve_asgi(create_app(demo, tokens=token_book())) as url:
        yield url


def first_agent(url: str, headers: dict[str, str] | None = None) -> Agent:
    """The node's first agent, read with ``headers`` (default: the owner's, for a node without tokens)."""
    agents = from_json(httpx.get(f"{url}/v1/agents", headers=headers or owner_auth()).content, list[Agent])
    return agents[0]


# --- reading -----------------------------------------------------------------------------------------------


def test_reads_return_the_wire_model(open_url: str, demo: DemoBackend) -> None:
    snap = as_owner.get(f"{open_url}/v1/snapshot")
    assert snap.status_code == 200 and snap.headers["content-type"] == "application/json"
    snapshot = from_json(snap.content, NodeSnapshot)
    assert snapshot.node.name == demo.info.name and snapshot.agents
    agents = from_json(as_owner.get(f"{open_url}/v1/agents").content, list[Agent])
    assert [a.id for a in agents] == [a.id for a in snapshot.agents]
    one = as_owner.get(f"{open_url}/v1/agents/{agents[0].id}")
    assert from_json(one.content, Agent) == agents[0]
    for name in ("phases", "tasks", "checkpoints"):
        listed = as_owner.get(f"{open_url}/v1/{name}").json()
        assert listed == json.loads(snap.content)[name]
    health = as_owner.get(f"{open_url}/healthz").json()
    assert health["node"] == demo.info.name and health["status"] == "ok"
    whoami = from_json(as_owner.get(f"{open_url}/v1/whoami").content, Whoami)
    assert whoami == Whoami(name=os_user(), role="operator", authenticated=True)


def test_unknown_agent_route_and_method_are_problems(open_url: str) -> None:
    assert problem_of(as_owner.get(f"{open_url}/v1/agents/no-such-agent")).status == 404
    missing = problem_of(as_owner.get(f"{open_url}/v1/nothing-here"))
    assert missing.status == 404 and "/v1/nothing-here" in missing.detail
    wrong = as_owner.delete(f"{open_url}/v1/snapshot")
    assert problem_of(wrong).status == 405 and "GET" in wrong.headers["allow"]
    assert problem_of(as_owner.get(f"{open_url}/v1/actions/pause")).status == 405


# --- auth --------------------------------------------------------------------------------------------------


def test_auth_matrix(secured_url: str) -> None:
    url = secured_url
    # no token, a wrong one, a wrong scheme: 401 with a Bearer challenge, the token never echoed back
    for headers in ({}, bearer("not-a-known-token-at-all"), {"Authorization": f"Basic {VIEWER_TOKEN}"}):
        refused = httpx.get(f"{url}/v1/snapshot", headers=headers)
        assert problem_of(refused).status == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "not-a-known-token" not in refused.text and VIEWER_TOKEN not in refused.text
    # public: health and the API document
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/openapi.json").status_code == 200
    # a viewer reads...
    assert httpx.get(f"{url}/v1/snapshot", headers=bearer(VIEWER_TOKEN)).status_code == 200
    assert httpx.get(f"{url}/metrics", headers=bearer(VIEWER_TOKEN)).status_code == 200
    who = from_json(httpx.get(f"{url}/v1/whoami", headers=bearer(VIEWER_TOKEN)).content, Whoami)
    assert who == Whoami(name="grace", role="viewer", authenticated=True)
    # ...but may not act: 403 naming the token, its role and the role needed
    agent = first_agent(url, bearer(VIEWER_TOKEN))
    denied = httpx.post(
        f"{url}{ACTION_PATHS['pause']}", json={"target": agent.id}, headers=bearer(VIEWER_TOKEN)
    )
    detail = problem_of(denied).detail
    assert denied.status_code == 403 and "grace" in detail and "viewer" in detail and "operator" in detail
    # an operator acts, and the audit trail names the token's name, whatever header claims otherwise
    headers = {**bearer(OPERATOR_TOKEN), "X-Fleetdeck-Operator": "mallory"}
    done = httpx.post(
        f"{url}{ACTION_PATHS['pause']}", json={"target": agent.id, "reason": "test"}, headers=headers
    )
    assert done.status_code == 200, done.text
    audit = from_json(httpx.get(f"{url}/v1/audit", headers=bearer(VIEWER_TOKEN)).content, list[AuditEntry])
    last = audit[-1]
    assert (last.operator, last.action, last.target, last.reason) == (
        "alice",
        "pause",
        f"agent:{agent.id}",
        "test",
    )
    assert not any(e.operator == "grace" for e in audit)


def test_without_tokens_only_the_owners_token_is_let_in_and_it_names_the_operator(open_url: str) -> None:
    agent = first_agent(open_url)
    path = f"{open_url}{ACTION_PATHS['pause']}"
    for headers in ({}, bearer("not-the-local-operator-token-0123456789"), {"X-Fleetdeck-Operator": "dana"}):
        refused = httpx.post(path, json={"target": agent.id}, headers=headers)
        assert problem_of(refused).status == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert problem_of(httpx.get(f"{open_url}/v1/snapshot", headers=headers)).status == 401
    assert httpx.get(f"{open_url}/healthz").status_code == 200  # public in both modes
    # the operator is whoever the credential proves, not who a header claims to be
    done = as_owner.post(path, json={"target": agent.id}, headers={"X-Fleetdeck-Operator": "dana"})
    assert done.status_code == 200
    audit = from_json(as_owner.get(f"{open_url}/v1/audit").content, list[AuditEntry])
    assert audit[-1].operator == os_user() and audit[-1].action == "pause"
    assert "dana" not in {e.operator for e in audit}


# --- bodies ------------------------------------------------------------------------------------------------


def test_body_too_large_is_413(open_url: str) -> None:
    big = {"target": "x" * 10_000}
    declared = as_owner.post(f"{open_url}{ACTION_PATHS['pause']}", json=big)
    assert problem_of(declared).status == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count what it receives
        yield b'{"target": "'
        for _ in range(20):
            yield b"y" * 1000
        yield b'"}'

    streamed = as_owner.post(
        f"{open_url}{ACTION_PATHS['pause']}", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert problem_of(streamed).status == 413


def test_malformed_json_is_400_and_wrong_types_422_naming_the_field(open_url: str) -> None:
    path = f"{open_url}{ACTION_PATHS['pause']}"
    broken = as_owner.post(path, content=b'{"target": ', headers={"Content-Type": "application/json"})
    assert problem_of(broken).status == 400
    typed = problem_of(as_owner.post(path, json={"target": 42}))
    assert (typed.status, typed.field) == (422, "$.target")
    unknown = problem_of(as_owner.post(path, json={"target": "a", "tagret": "b"}))
    assert (unknown.status, unknown.field) == (422, "$.tagret")
    missing = problem_of(as_owner.post(path, json={}))
    assert (missing.status, missing.field) == (422, "$.target")
    nested = problem_of(
        as_owner.post(f"{open_url}{ACTION_PATHS['dispatch']}", json={"request": {"agent_id": 3}})
    )
    assert (nested.status, nested.field) == (422, "$.request.agent_id")
    bad_target = problem_of(as_owner.post(path, json={"target": "robot:1"}))
    assert (bad_target.status, bad_target.field) == (422, "$.target")
    text = as_owner.post(path, content=b'{"target": "a"}', headers={"Content-Type": "text/plain"})
    assert problem_of(text).status == 415
    assert problem_of(as_owner.get(f"{open_url}/v1/audit?since_seq=abc")).field == "since_seq"


# --- idempotency -------------------------------------------------------------------------------------------


def test_idempotent_retry_of_a_dispatch_acts_once(open_url: str) -> None:
    agent = first_agent(open_url)
    path = f"{open_url}{ACTION_PATHS['dispatch']}"
    body = {"request": {"agent_id": agent.id, "payload": {"job": "reindex"}}, "reason": "retry test"}
    headers = {IDEMPOTENCY_KEY_HEADER: "dispatch-0001"}
    first = as_owner.post(path, json=body, headers=headers)
    assert first.status_code == 201 and IDEMPOTENCY_REPLAYED_HEADER not in first.headers
    retry = as_owner.post(path, json=body, headers=headers)
    assert retry.status_code == 201 and retry.headers[IDEMPOTENCY_REPLAYED_HEADER] == "true"
    assert from_json(retry.content, Task).id == from_json(first.content, Task).id
    reused = as_owner.post(path, json={**body, "reason": "another"}, headers=headers)
    assert problem_of(reused).status == 422 and problem_of(reused).field == IDEMPOTENCY_KEY_HEADER
    tasks = from_json(as_owner.get(f"{open_url}/v1/tasks").content, list[Task])
    assert [t.id for t in tasks].count(from_json(first.content, Task).id) == 1
    audit = from_json(as_owner.get(f"{open_url}/v1/audit").content, list[AuditEntry])
    assert [e.reason for e in audit if e.action == "dispatch"].count("retry test") == 1
    # a new key is new work
    again = as_owner.post(path, json=body, headers={IDEMPOTENCY_KEY_HEADER: "dispatch-0002"})
    assert again.status_code == 201 and from_json(again.content, Task).id != from_json(first.content, Task).id


def test_concurrent_requests_with_one_key_dispatch_once(open_url: str) -> None:
    agent = first_agent(open_url)
    body = {"request": {"agent_id": agent.id, "payload": {"n": 1}}, "reason": "concurrent"}

    def post(_: int) -> httpx.Response:
        return as_owner.post(
            f"{open_url}{ACTION_PATHS['dispatch']}", json=body, headers={IDEMPOTENCY_KEY_HEADER: "same-key"}
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({from_json(a.content, Task).id for a in answers}) == 1
    assert sum(1 for a in answers if IDEMPOTENCY_REPLAYED_HEADER not in a.headers) == 1
    audit = from_json(as_owner.get(f"{open_url}/v1/audit").content, list[AuditEntry])
    assert [e.reason for e in audit].count("concurrent") == 1


def test_refusals_are_replayed_but_keys_are_per_caller(secured_url: str) -> None:
    path = f"{secured_url}{ACTION_PATHS['pause']}"
    headers = {**bearer(OPERATOR_TOKEN), IDEMPOTENCY_KEY_HEADER: "k1"}
    first = httpx.post(path, json={"target": "agent:ghost"}, headers=headers)
    assert problem_of(first).status == 404
    retry = httpx.post(path, json={"target": "agent:ghost"}, headers=headers)
    assert retry.status_code == 404 and retry.headers[IDEMPOTENCY_REPLAYED_HEADER] == "true"
    # the viewer's request with the same key is its own (and refused for its role, not replayed)
    viewer = httpx.post(
        path, json={"target": "agent:ghost"}, headers={**bearer(VIEWER_TOKEN), IDEMPOTENCY_KEY_HEADER: "k1"}
    )
    assert viewer.status_code == 403 and IDEMPOTENCY_REPLAYED_HEADER not in viewer.headers


# --- metrics -----------------------------------------------------------------------------------------------


def test_metrics_parse_and_match_the_snapshot(open_url: str) -> None:
    response = as_owner.get(f"{open_url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    snapshot = from_json(as_owner.get(f"{open_url}/v1/snapshot").content, NodeSnapshot)

    def samples(name: str) -> list[tuple[dict[str, str], float]]:
        return [(s.labels, s.value) for s in families[f"fleetdeck_{name}"].samples]

    assert samples("node_info")[0][0]["node"] == snapshot.node.name
    states = {labels["agent"]: labels["state"] for labels, value in samples("agent_state") if value == 1}
    assert states == {a.id: a.state for a in snapshot.agents}
    by_state = {labels["state"]: value for labels, value in samples("agents_by_state")}
    assert sum(by_state.values()) == len(snapshot.agents) and "paused" in by_state
    rss = {labels["agent"]: value for labels, value in samples("agent_resident_memory_bytes")}
    assert rss == {a.id: float(a.rss_bytes) for a in snapshot.agents if a.rss_bytes is not None}
    if snapshot.gpus:
        temps = {labels["gpu"]: value for labels, value in samples("gpu_temperature_celsius")}
        assert temps == {str(g.index): g.temperature_c for g in snapshot.gpus if g.temperature_c is not None}
    if snapshot.system.mem_total is not None:
        assert samples("host_memory_total_bytes")[0][1] == snapshot.system.mem_total
    progress = {labels["phase"]: value for labels, value in samples("phase_progress_ratio")}
    assert progress == {p.id: p.progress for p in snapshot.phases if p.progress is not None}


def test_metrics_leave_unknown_values_out() -> None:
    from backends.model import NodeInfo, SystemMetrics
    from backends.node_server.metrics import MetricsExporter

    snapshot = NodeSnapshot(
        node=NodeInfo(id="n", name="n", backend="test"),
        observed_at=T0,
        system=SystemMetrics(cpu_percent=12.5),
        agents=(Agent(id="a", name="a", state="running", rss_bytes=None, cpu_percent=0.0),),
    )
    text = MetricsExporter().render(snapshot).decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert "fleetdeck_host_cpu_usage_ratio" in names and "fleetdeck_host_memory_total_bytes" not in names
    assert "fleetdeck_agent_cpu_usage_ratio" in names  # a real 0 is kept...
    assert "fleetdeck_agent_resident_memory_bytes" not in names  # ...an unknown is not made one
    assert "fleetdeck_agent_heartbeat_timestamp_seconds" not in names


def test_concurrent_reads_share_one_backend_snapshot(demo: DemoBackend) -> None:
    app = create_app(demo, snapshot_ttl_s=3600)
    with serve_asgi(app) as url:

        def read(i: int) -> int:
            path = ("/v1/snapshot", "/metrics", "/v1/agents")[i % 3]
            return as_owner.get(f"{url}{path}").status_code

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            assert set(pool.map(read, range(60))) == {200}
        assert app.state.node.cache.backend_calls == 1
        # an action invalidates it: the actor's next read sees what it did
        agent = first_agent(url)
        as_owner.post(f"{url}{ACTION_PATHS['pause']}", json={"target": agent.id})
        paused = from_json(as_owner.get(f"{url}/v1/agents/{agent.id}").content, Agent)
        assert paused.state == "paused"
        assert app.state.node.cache.backend_calls == 2


# --- failures inside ---------------------------------------------------------------------------------------


class _BrokenBackend(DemoBackend):
    async def snapshot(self) -> NodeSnapshot:
        raise RuntimeError("secret internal detail /etc/passwd")


def test_an_unexpected_error_is_a_500_problem_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    backend = _BrokenBackend(seed=7, clock=FrozenClock(T0))
    with serve_asgi(create_app(backend)) as url:
        response = as_owner.get(f"{url}/v1/snapshot")
    body = problem_of(response)
    assert body.status == 500 and "secret" not in response.text and "Traceback" not in response.text
    assert any("secret internal detail" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_backend_errors_map_to_their_status(demo: DemoBackend) -> None:
    read_only = demo_fleet(seed=7, nodes=1, clock=FrozenClock(T0), read_only=True)[0]
    with serve_asgi(create_app(read_only)) as url:
        agent = first_agent(url)
        refused = as_owner.post(f"{url}{ACTION_PATHS['stop']}", json={"target": agent.id})
        assert problem_of(refused).status == 403 and "read-only" in problem_of(refused).detail
        missing = as_owner.post(f"{url}{ACTION_PATHS['rollback']}", json={"checkpoint_id": "nope"})
        assert problem_of(missing).status in (403, 404)


def test_unknown_query_parameters_are_refused(open_url: str) -> None:
    typo = problem_of(as_owner.get(f"{open_url}/v1/audit", params={"sinceseq": "5"}))
    assert (typo.status, typo.field) == (422, "sinceseq")
    assert problem_of(as_owner.get(f"{open_url}/v1/snapshot", params={"x": "1"})).field == "x"
    assert as_owner.get(f"{open_url}/v1/audit", params={"since_seq": "1"}).status_code == 200


class _FlakyDemo(DemoBackend):
    """Fails its first dispatch with a bug (a 500), then works."""

    failures = 1

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("disk full")
        return await super().dispatch(request, operator=operator, reason=reason)


def test_a_failed_action_is_not_kept_so_its_retry_acts() -> None:
    backend = _FlakyDemo(seed=7, clock=FrozenClock(T0 + 60))
    with serve_asgi(create_app(backend)) as url:
        agent = first_agent(url)
        body = {"request": {"agent_id": agent.id, "payload": {}}}
        headers = {IDEMPOTENCY_KEY_HEADER: "after-a-500"}
        path = f"{url}{ACTION_PATHS['dispatch']}"
        failed = as_owner.post(path, json=body, headers=headers)
        assert problem_of(failed).status == 500 and "disk full" not in failed.text
        retry = as_owner.post(path, json=body, headers=headers)
        assert retry.status_code == 201 and IDEMPOTENCY_REPLAYED_HEADER not in retry.headers
        again = as_owner.post(path, json=body, headers=headers)
        assert again.headers[IDEMPOTENCY_REPLAYED_HEADER] == "true"
        assert from_json(again.content, Task).id == from_json(retry.content, Task).id


async def test_idempotency_answers_expire_and_the_store_is_bounded() -> None:
    from backends.node_server.idempotency import Answer, IdempotencyStore

    clock = FrozenClock(0)
    store = IdempotencyStore(max_entries=3, ttl_s=100, clock=clock)

    async def act(scope: tuple[str, str, str], status: int = 201) -> bool:
        """True when the store let the request act (False: it replayed)."""
        async with store.claim(scope, b"{}") as claim:
            if claim.replay is not None:
                return False
            claim.answer = Answer(status, b"{}", "application/json")
            return True

    assert await act(("alice", "/p", "k1")) and not await act(("alice", "/p", "k1"))
    assert await act(("bob", "/p", "k1"))  # keys are per caller...
    assert await act(("alice", "/q", "k1"))  # ...and per path
    clock.advance(101)
    assert await act(("alice", "/p", "k1"))  # expired: acts again
    for n in range(10):
        await act(("alice", "/p", f"many-{n}"))
    assert len(store) == 3
    assert await act(("alice", "/p", "many-0"))  # evicted, least recently used first
    assert not await act(("alice", "/p", "many-9"))
    assert await act(
        (
            "alice",
            "/p",
            "fails",
        ),
        status=503,
    ) and await act(("alice", "/p", "fails"), status=503)
