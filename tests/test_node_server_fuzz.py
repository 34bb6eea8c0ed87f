"""Fuzz the node API from its own ``/openapi.json`` with schemathesis: valid and invalid requests alike
must never get a 5xx, and every answer must match the document (status, content type, schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backends.demo.backend import DemoBackend
from backends.model import LogRecord
from backends.node_server.app import begin_shutdown, create_app
from backends.node_server.idempotency import IdempotencyStore
from console.core.clock import FrozenClock
from tests.conftest import T0
from tests.serving import serve_asgi
from tests.test_node_server_api import OPERATOR_TOKEN, token_book

MAX_EXAMPLES = 25  # per operation and mode: ~20 operations in well under a minute on two cores


class _FiniteDemo(DemoBackend):
    """``follow=1`` never ends by design; the fuzzer needs every answer to end, so this node never follows."""

    def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        return super().logs(since_seq, follow=False)


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    backend = _FiniteDemo(seed=7, agents=12, clock=FrozenClock(T0 + 60))
    # Cases are independent, but the fuzzer draws few distinct Idempotency-Keys: two cases sharing one with
    # different bodies would get the 422 meant for a client reusing a key (tested on its own). A store
    # that keeps no finished answers makes every case a first request.
    app = create_app(backend, tokens=token_book(), idempotency=IdempotencyStore(max_entries=0))
    with serve_asgi(app, on_shutdown=lambda: begin_shutdown(app)) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(node_url: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": 20260101,
            "generation": {"max-examples": MAX_EXAMPLES},
            # schemathesis applies the token itself, so it knows which of its cases leave it out on purpose
            "auth": {"openapi": {"bearer": {"bearer": OPERATOR_TOKEN}}},
        }
    )
    return schemathesis.openapi.from_url(f"{node_url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_every_request_as_documented(case: schemathesis.Case) -> None:
    response = case.call(timeout=30)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    # Every check but "schema-valid data is accepted": a backend may refuse well-formed work on its own
    # rules (the demo's agent names, a rollback to a checkpoint that is gone: 422/409 problems), which no
    # schema can say. Refusals are still checked: documented status, problem+json, the Problem schema.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


def test_the_document_describes_every_route(node_url: str) -> None:
    document = httpx.get(f"{node_url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in (
        "/healthz",
        "/metrics",
        "/v1/snapshot",
        "/v1/logs",
        "/v1/agents/{agent_id}",
        "/v1/actions/dispatch",
    ):
        assert path in paths
    dispatch = paths["/v1/actions/dispatch"]["post"]
    assert {p["name"] for p in dispatch["parameters"]} >= {"Idempotency-Key"}
    assert "application/problem+json" in dispatch["responses"]["422"]["content"]
    assert dispatch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DispatchBody"
    }
    assert (
        "Problem" in document["components"]["schemas"] and "NodeSnapshot" in document["components"]["schemas"]
    )
