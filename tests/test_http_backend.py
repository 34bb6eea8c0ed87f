"""The http backend against the real node server (``create_app`` on a real uvicorn, real httpx): what a
remote console reads is what the node's own backend says, and every action lands in the node's audit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backends.demo import DemoBackend
from backends.errors import AuthFailed, Forbidden, NotFound
from backends.http import HttpBackend
from backends.local_token import os_user
from backends.model import ACTION_CAPABILITIES, ALL_CAPABILITIES, DispatchRequest, Target
from backends.node_api import IDEMPOTENCY_KEY_HEADER, PREFIX
from backends.node_server.app import create_app
from backends.node_server.tokens import TokenBook, TokenEntry

from .serving import serve_asgi
from .test_http_backend_support import backend_for

T0 = 1_767_225_600.0  # a frozen clock: the demo node's snapshot is then the same on both sides
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
ACTIONS = frozenset({"dispatch", "pause", "resume", "stop", "checkpoint", "rollback"})


def frozen_demo() -> DemoBackend:
    return DemoBackend(seed=7, clock=lambda: T0, genesis=T0 - 3600)


def token_book() -> TokenBook:
    return TokenBook(
        [
            TokenEntry(name="alice", role="operator", token=OPERATOR_TOKEN),
            TokenEntry(name="grafana", role="viewer", token=VIEWER_TOKEN),
        ]
    )


@pytest.fixture
def demo() -> DemoBackend:
    return frozen_demo()


@pytest.fixture
def served_demo(demo: DemoBackend) -> Iterator[str]:
    with serve_asgi(create_app(demo, tokens=token_book())) as url:
        yield url


def with_token(url: str, monkeypatch: pytest.MonkeyPatch, token: str, **fields: Any) -> HttpBackend:
    monkeypatch.setenv("FLEETDECK_TOKEN_TEST", token)
    return backend_for(url, token_env="FLEETDECK_TOKEN_TEST", **fields)


# --- reading ---------------------------------------------------------------------------------------------


async def test_the_snapshot_is_the_served_backends_own(
    served_demo: str, demo: DemoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with with_token(served_demo, monkeypatch, OPERATOR_TOKEN) as backend:
        remote = await backend.snapshot()
    local = await demo.snapshot()
    assert remote.agents and remote.gpus and remote.phases  # a real fleet, not an empty one
    assert remote == local
    assert remote.agents == local.agents


async def test_info_after_open_is_the_nodes_own_with_the_served_backend_kept(
    served_demo: str, demo: DemoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = with_token(served_demo, monkeypatch, OPERATOR_TOKEN, environment="dev")
    assert backend.info.name == "gpu-01"  # the config's name until the node has answered
    async with backend:
        info = backend.info
    assert (info.id, info.name, info.hostname) == (demo.info.id, demo.info.name, demo.info.hostname)
    assert info.backend == "http"
    assert info.labels["served_backend"] == "demo" == backend.served_backend
    assert info.labels["role"] == "operator" and info.labels["token_name"] == "alice"
    assert info.labels["region"] == demo.info.labels["region"]
    assert info.environment == demo.info.environment == "production"  # the stricter of config and node
    assert info.capabilities == demo.info.capabilities == ALL_CAPABILITIES
    assert backend.capabilities == ALL_CAPABILITIES
    assert not info.read_only and backend.read_only_reason is None


async def test_a_viewer_sees_no_action_capabilities_and_is_refused(
    served_demo: str, demo: DemoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with with_token(served_demo, monkeypatch, VIEWER_TOKEN) as backend:
        assert backend.info.read_only
        # every read the served backend offers (logs, audit, KPI history...) and not one action
        assert backend.info.capabilities == demo.info.capabilities - ACTION_CAPABILITIES
        assert not any(backend.supports(action) for action in ACTION_CAPABILITIES)
        assert backend.supports("logs") and backend.supports("audit")
        reason = backend.read_only_reason or ""
        assert "'grafana', a viewer" in reason and "operator token" in reason
        assert backend.capability_note("pause") == reason
        agent = (await backend.snapshot()).agents[0]
        with pytest.raises(Forbidden, match="grafana"):
            await backend.pause(Target(kind="agent", id=agent.id), operator="mallory")
    paused = [e for e in await demo.audit() if e.action == "pause" and e.target == f"agent:{agent.id}"]
    assert not [e for e in paused if e.outcome == "ok"]  # the node did not act for the viewer


async def test_a_wrong_token_is_auth_failed(served_demo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = with_token(served_demo, monkeypatch, "not-a-known-token-at-all")
    with pytest.raises(AuthFailed, match=r"rejected the token from \$FLEETDECK_TOKEN_TEST"):
        await backend.open()
    with pytest.raises(AuthFailed):
        await backend.snapshot()  # every call tries to open, and fails the same way
    await backend.close()


async def test_no_token_on_a_node_that_needs_one(served_demo: str) -> None:
    backend = backend_for(served_demo)
    with pytest.raises(AuthFailed, match="wants a token, and none is configured"):
        await backend.open()
    await backend.close()


# --- acting ----------------------------------------------------------------------------------------------


async def test_every_action_works_and_is_audited_with_the_operator(
    demo: DemoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no tokens: the owner's local operator token is sent, and the node audits under the serving user
    with serve_asgi(create_app(demo)) as url:
        async with backend_for(url) as backend:
            before = await backend.audit()
            agent = (await backend.snapshot()).agents[0]
            target = Target(kind="agent", id=agent.id)
            task = await backend.dispatch(
                DispatchRequest(agent_id=agent.id, payload={"job": 1}), operator="carol", reason="r1"
            )
            await backend.pause(target, operator="carol", reason="r2")
            await backend.resume(target, operator="carol")
            checkpoint = await backend.checkpoint("before stop", operator="carol")
            await backend.stop(target, operator="carol")
            assert isinstance(await backend.rollback_preview(checkpoint.id), list)
            safety = await backend.rollback(checkpoint.id, operator="carol", reason="undo the stop")
            after = await backend.audit(since_seq=before[-1].seq if before else 0)
            remote_tasks = (await backend.snapshot()).tasks
    owner = os_user()  # whatever name the console passes: the credential names who acts
    assert task.payload == {"job": 1} and task.submitted_by == owner
    assert task.id in {t.id for t in remote_tasks}
    assert checkpoint.label == "before stop" and safety.id != checkpoint.id
    done = [(e.action, e.operator, e.outcome) for e in after]
    for action in ("dispatch", "pause", "resume", "checkpoint", "stop", "rollback"):
        assert (action, owner, "ok") in done, (action, done)
    assert {e.reason for e in after} >= {"r1", "r2", "undo the stop"}
    assert after == [e for e in await demo.audit() if e.seq in {a.seq for a in after}]


async def test_a_tokens_non_ascii_name_reaches_the_audit_trail_exactly(
    demo: DemoBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = TokenBook([TokenEntry(name="José Núñez 100%", role="operator", token=OPERATOR_TOKEN)])
    with serve_asgi(create_app(demo, tokens=book)) as url:
        async with with_token(url, monkeypatch, OPERATOR_TOKEN) as backend:
            await backend.checkpoint("accents", operator="mallory")
            entries = await backend.audit()
    assert entries[-1].action == "checkpoint" and entries[-1].operator == "José Núñez 100%"


async def test_action_errors_keep_their_kind(served_demo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with with_token(served_demo, monkeypatch, OPERATOR_TOKEN) as backend:
        with pytest.raises(NotFound):
            await backend.rollback("no-such-checkpoint", operator="alice")
        with pytest.raises(NotFound):
            await backend.rollback_preview("no/such checkpoint")


class LoseFirstAnswer:
    """Pass requests to the real node, but let it act on the first POST to ``path`` and then drop the
    connection instead of answering: the client cannot know whether its action happened."""

    def __init__(self, app: Any, path: str) -> None:
        self.app, self.path = app, path
        self.keys: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.keys.append(headers.get(IDEMPOTENCY_KEY_HEADER.lower(), ""))
        if len(self.keys) > 1:
            await self.app(scope, receive, send)
            return

        async def swallow(message: dict[str, Any]) -> None:
            pass

        await self.app(scope, receive, swallow)  # the node acts; its answer goes nowhere
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"99")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionAbortedError("the answer is lost on purpose")


async def test_a_dispatch_whose_answer_was_lost_is_retried_and_done_once(demo: DemoBackend) -> None:
    path = f"{PREFIX}/actions/dispatch"
    app = LoseFirstAnswer(create_app(demo), path)
    with serve_asgi(app) as url:
        async with backend_for(url) as backend:
            agent = (await backend.snapshot()).agents[0]
            request = DispatchRequest(agent_id=agent.id, payload={"once": True})
            task = await backend.dispatch(request, operator="carol")
            tasks = [t for t in (await backend.snapshot()).tasks if t.payload == {"once": True}]
    assert len(app.keys) == 2 and app.keys[0] == app.keys[1] and app.keys[0]
    assert [t.id for t in tasks] == [task.id]  # one task, although the node was asked twice
    audited = [e for e in await demo.audit() if e.action == "dispatch"]
    assert [e.params.get("payload") for e in audited].count({"once": True}) == 1


async def test_the_console_link_turns_a_viewers_actions_off_with_the_reason(
    served_demo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.core.node_link import NodeLink

    backend = with_token(served_demo, monkeypatch, VIEWER_TOKEN)
    link = NodeLink("gpu-01", backend, clock=lambda: T0)
    assert not link.read_only  # nothing known before the node answers
    assert await link.poll(timeout=10.0), link.error
    assert link.read_only
    assert "a viewer" in (link.read_only_reason or "")
    assert link.environment == "production"  # the node says so, though the config did not
    await backend.close()


async def test_a_read_only_node_turns_actions_off_with_the_reason() -> None:
    demo = DemoBackend(seed=7, clock=lambda: T0, genesis=T0 - 3600, read_only=True)
    with serve_asgi(create_app(demo)) as url:
        async with backend_for(url) as backend:
            assert backend.info.read_only
            assert not any(backend.supports(action) for action in ACTIONS)
            assert backend.read_only_reason == "node gpu-01 is served read-only"
            with pytest.raises(Forbidden):
                await backend.checkpoint("x", operator="carol")


async def test_what_the_served_backend_cannot_do_is_said_by_name() -> None:
    import msgspec

    from .test_http_backend_support import FAKE_INFO, FakeNode, json_reply

    limited = msgspec.structs.replace(FAKE_INFO, capabilities=frozenset({"logs", "pause", "resume"}))
    with serve_asgi(FakeNode({f"{PREFIX}/info": json_reply(limited)})) as url:
        async with backend_for(url) as backend:
            assert backend.capabilities == {"logs", "pause", "resume"}
            assert backend.capability_note("pause") is None
            assert (
                backend.capability_note("dispatch")
                == "the demo backend behind node gpu-01 cannot dispatch work"
            )
