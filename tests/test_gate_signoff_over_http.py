"""Gate sign-offs over HTTP: ``POST /v1/phases/{phase_id}/gate`` on a real local node and a demo node, served
by a real uvicorn and called through httpx and the real http backend: operator role, audited under the
credential's name, an Idempotency-Key replayed and not signed twice, refusals naming what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backends.demo.backend import DemoBackend
from backends.errors import Forbidden, NotFound
from backends.local.backend import LocalBackend
from backends.local.plan_apply import apply_plan_file
from backends.local.store import Store
from backends.model import AuditEntry, Gate, NodeSnapshot, from_json
from backends.node_api import (
    IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENCY_REPLAYED_HEADER,
    Problem,
    action_path,
)
from backends.node_server.app import create_app
from tests.conftest import T0
from tests.serving import as_owner, owner_auth, serve_asgi
from tests.test_http_backend_support import backend_for
from tests.test_node_server_api import OPERATOR_TOKEN, VIEWER_TOKEN, bearer, token_book

PLAN = """
name = "Rollout"

[[phases]]
id = "p1"
name = "Pilot"

  [[phases.milestones]]
  id = "m1"
  name = "Steady"

    [[phases.milestones.criteria]]
    name = "P95 latency"
    kpi = "latency_p95_ms"
    target = "< 120 ms"

  [phases.gate]
  criteria = ["P95 latency"]
"""


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    state_dir = tmp_path / "node"
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    with Store(state_dir) as store:
        apply_plan_file(store, plan, "owner")
    return state_dir


@pytest.fixture
def secured_local(node_dir: Path) -> Iterator[str]:
    with serve_asgi(
        create_app(LocalBackend(state_dir=node_dir), tokens=token_book(), snapshot_ttl_s=0.0)
    ) as url:
        yield url


def gate_url(url: str, phase_id: str) -> str:
    return f"{url}{action_path('sign_gate', phase_id=phase_id)}"


def audit_of(url: str) -> list[AuditEntry]:
    return from_json(httpx.get(f"{url}/v1/audit", headers=bearer(VIEWER_TOKEN)).content, list[AuditEntry])


def sign_offs(url: str) -> list[AuditEntry]:
    return [e for e in audit_of(url) if e.action == "gate.sign"]


def test_an_operator_signs_a_gate_audited_under_the_tokens_name(secured_local: str) -> None:
    headers = {**bearer(OPERATOR_TOKEN), "X-Fleetdeck-Operator": "mallory"}
    answer = httpx.post(
        gate_url(secured_local, "p1"), json={"decision": "no-go", "reason": "p95 high"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    gate = from_json(answer.content, Gate)
    assert gate.signed is not None
    assert (gate.signed.decision, gate.signed.operator, gate.signed.reason) == ("no-go", "alice", "p95 high")
    assert gate.decision != "no-go" or gate.reasons  # the figures decide; a sign-off never does
    (entry,) = sign_offs(secured_local)
    assert (entry.operator, entry.target, entry.outcome, entry.params, entry.reason) == (
        "alice",
        "phase:p1",
        "ok",
        {"decision": "no-go"},
        "p95 high",
    )
    snapshot = from_json(
        httpx.get(f"{secured_local}/v1/snapshot", headers=bearer(VIEWER_TOKEN)).content, NodeSnapshot
    )
    assert snapshot.phases[0].gate.signed == gate.signed


def test_a_viewer_may_not_sign_and_nothing_is_recorded(secured_local: str) -> None:
    denied = httpx.post(gate_url(secured_local, "p1"), json={"decision": "go"}, headers=bearer(VIEWER_TOKEN))
    assert denied.status_code == 403
    detail = from_json(denied.content, Problem).detail
    assert "grace" in detail and "viewer" in detail and "operator" in detail
    assert sign_offs(secured_local) == []
    assert httpx.post(gate_url(secured_local, "p1"), json={"decision": "go"}).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"decision": "maybe"}, 422, "$.decision", "Invalid enum value 'maybe'"),
        ({}, 422, "$.decision", "missing required field `decision`"),
        ({"decision": "go", "by": "x"}, 422, "$.by", "unknown field `by`"),
        ({"decision": "go", "reason": "r" * 1001}, 422, "$.reason", "length <= 1000"),
    ],
    ids=["unknown-decision", "no-decision", "unknown-field", "long-reason"],
)
def test_a_bad_body_is_refused_naming_the_field(
    secured_local: str, body: dict[str, str], status: int, field: str, words: str
) -> None:
    answer = httpx.post(gate_url(secured_local, "p1"), json=body, headers=bearer(OPERATOR_TOKEN))
    assert answer.status_code == status, answer.text
    problem = from_json(answer.content, Problem)
    assert problem.field == field and words in problem.detail
    assert sign_offs(secured_local) == []


def test_an_unknown_phase_is_404_and_the_failed_attempt_is_audited(secured_local: str) -> None:
    answer = httpx.post(
        gate_url(secured_local, "p9"), json={"decision": "go"}, headers=bearer(OPERATOR_TOKEN)
    )
    assert answer.status_code == 404, answer.text
    assert "p9" in from_json(answer.content, Problem).detail
    assert [(e.target, e.outcome) for e in sign_offs(secured_local)] == [("phase:p9", "failed")]


def test_a_retry_with_the_same_key_is_replayed_and_signs_once(secured_local: str) -> None:
    headers = {**bearer(OPERATOR_TOKEN), IDEMPOTENCY_KEY_HEADER: "sign-p1-once"}
    body = {"decision": "go", "reason": "accepted"}
    first = httpx.post(gate_url(secured_local, "p1"), json=body, headers=headers)
    again = httpx.post(gate_url(secured_local, "p1"), json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers[IDEMPOTENCY_REPLAYED_HEADER] == "true" and again.content == first.content
    assert len(sign_offs(secured_local)) == 1
    reused = httpx.post(gate_url(secured_local, "p1"), json={"decision": "no-go"}, headers=headers)
    assert reused.status_code == 422 and len(sign_offs(secured_local)) == 1


async def test_the_http_backend_signs_and_reads_the_gate_back(
    secured_local: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETDECK_TOKEN_TEST", OPERATOR_TOKEN)
    async with backend_for(secured_local, token_env="FLEETDECK_TOKEN_TEST") as remote:
        assert remote.supports("sign_gate")
        gate = await remote.sign_gate("p1", "go", operator="ignored-name", reason="pilot accepted")
        assert gate.signed is not None and (gate.signed.decision, gate.signed.operator) == ("go", "alice")
        assert (await remote.snapshot()).phases[0].gate.signed == gate.signed
        with pytest.raises(NotFound, match="p9"):
            await remote.sign_gate("p9", "go", operator="x")
    assert [e.outcome for e in sign_offs(secured_local)] == ["ok", "failed"]
    monkeypatch.setenv("FLEETDECK_TOKEN_TEST", VIEWER_TOKEN)
    async with backend_for(secured_local, token_env="FLEETDECK_TOKEN_TEST") as viewer:
        assert not viewer.supports("sign_gate")
        with pytest.raises(Forbidden, match="grace"):
            await viewer.sign_gate("p1", "no-go", operator="x")


async def test_a_read_only_node_refuses_and_audits_the_denial(node_dir: Path) -> None:
    with serve_asgi(create_app(LocalBackend(state_dir=node_dir, read_only=True))) as url:
        answer = httpx.post(gate_url(url, "p1"), json={"decision": "go"}, headers=owner_auth())
        assert answer.status_code == 403, answer.text
        assert "read-only" in from_json(answer.content, Problem).detail
        audit = from_json(as_owner.get(f"{url}/v1/audit").content, list[AuditEntry])
    assert [(e.action, e.outcome) for e in audit if e.action == "gate.sign"] == [("gate.sign", "denied")]


async def test_a_demo_node_signs_over_http_too() -> None:
    demo = DemoBackend(seed=7, clock=lambda: T0, genesis=T0 - 3600)
    phase = next(p for p in (await demo.snapshot()).phases if p.status != "done")  # a done gate is closed
    with serve_asgi(create_app(demo)) as url:
        async with backend_for(url) as remote:
            gate = await remote.sign_gate(phase.id, "no-go", operator="x", reason="demo")
    assert gate.signed is not None and (gate.signed.decision, gate.signed.reason) == ("no-go", "demo")
    assert next(p for p in (await demo.snapshot()).phases if p.id == phase.id).gate.signed == gate.signed
