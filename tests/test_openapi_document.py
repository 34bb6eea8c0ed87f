"""``GET /openapi.json`` as other tools take it: openapi-spec-validator accepts it, and openapi-python-client
(a real subprocess) makes a client with every operation in it, which then talks to the node it came from.

Both kinds of served node: one without a tokens file (it answers only its owner's local operator token)
and one with one. What the document says about security is checked against what the server enforces.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from backends.node_api import ACTION_PATHS

from .serving import ServedNode

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
GENERATOR_TIMEOUT_S = 300  # a guard against a hung generator, never an assertion about speed


@dataclass
class Served:
    node: ServedNode
    token: str  # what the operator sends: the tokens file's operator token, or the local operator token
    document: dict[str, Any]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETDECK_", "XDG_"))}
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_STATE_HOME"] = str(home / "state")
    return env


def _document(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/openapi.json", timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = answer.json()
    return document


@pytest.fixture(scope="module")
def tokenless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = _env(tmp_path_factory.mktemp("tokenless"))
    with ServedNode("--demo", "--listen", "127.0.0.1:0", "--no-access-log", env=env) as node:
        token = node.auth()["Authorization"].removeprefix("Bearer ")
        yield Served(node, token, _document(node.url))


@pytest.fixture(scope="module")
def with_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("with-tokens")
    env = _env(home)
    tokens = home / "tokens.toml"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "node",
            "token",
            "alice",
            "--role",
            "operator",
            "--tokens",
            str(tokens),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    args = (
        "--demo",
        "--demo-node",
        "2",
        "--tokens",
        str(tokens),
        "--listen",
        "127.0.0.1:0",
        "--no-access-log",
    )
    with ServedNode(*args, env=env) as node:
        yield Served(node, made.stdout.strip(), _document(node.url))


@pytest.fixture(params=["tokenless", "with_tokens"])
def served(request: pytest.FixtureRequest) -> Served:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def schemas_in(value: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object in the document that has a ``type`` (each a schema or a piece of one)."""
    if isinstance(value, dict):
        if isinstance(value.get("type"), str | list):
            yield where, value
        for key, inner in value.items():
            yield from schemas_in(inner, f"{where}/{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from schemas_in(inner, f"{where}/{index}")


# --- the document itself -----------------------------------------------------------------------------------


def test_the_served_document_is_valid_openapi_3_1(served: Served) -> None:
    assert served.document["openapi"].startswith("3.1.")
    validate(served.document)  # raises OpenAPIValidationError naming what is wrong


def test_every_array_schema_says_what_its_items_are(served: Served) -> None:
    arrays = [
        (where, schema)
        for where, schema in schemas_in(served.document)
        if "array" in (schema["type"] if isinstance(schema["type"], list) else [schema["type"]])
    ]
    assert len(arrays) > 10  # the walk finds them (tuples of agents, tasks, gates, commands...)
    assert [where for where, schema in arrays if "items" not in schema] == []


def test_every_operation_has_an_id_a_generator_can_name_it_by(served: Served) -> None:
    ids = [operation.get("operationId") for _, _, operation in operations(served.document)]
    assert None not in ids
    assert len(set(ids)) == len(ids)
    assert [i for i in ids if not re.fullmatch(r"[a-z][a-z0-9_]*", i)] == []


def test_the_title_is_the_same_for_every_node_which_is_named_elsewhere(
    tokenless: Served, with_tokens: Served
) -> None:
    assert tokenless.node.name != with_tokens.node.name  # two different nodes
    for served in (tokenless, with_tokens):
        info = served.document["info"]
        assert info["title"] == "fleetdeck node API"
        assert served.node.name in info["description"]
        assert info["x-fleetdeck-node"]["name"] == served.node.name
    assert tokenless.document["paths"] == with_tokens.document["paths"]


def _without_a_token(url: str, path: str, method: str) -> httpx.Response:
    concrete = re.sub(r"\{[^}]+\}", "x", path)
    if method == "get" and path.endswith("/logs"):
        with httpx.stream("GET", f"{url}{concrete}", timeout=30) as answer:
            answer.read() if answer.status_code != 200 else None
            return answer
    return httpx.request(method.upper(), f"{url}{concrete}", json={}, timeout=30)


def test_the_security_it_declares_is_the_security_the_server_enforces(served: Served) -> None:
    document, url = served.document, served.node.url
    (scheme,) = document["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, operation in operations(document):
        declared = operation.get("security", document.get("security", []))
        answer = _without_a_token(url, path, method)
        if declared:  # needs the bearer token: without one, 401 with a challenge
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "401" in operation["responses"]
        else:  # public: answered without one
            assert answer.status_code == 200, (method, path, answer.status_code)


# --- a generated client ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tokenless: Served, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """openapi-python-client run on the served document: (the folder holding the package, its output)."""
    root = tmp_path_factory.mktemp("generated")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(tokenless.document))
    config = root / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no formatter run: the code is only imported
    package = root / "fleetdeck_node_client"
    command = [
        "openapi-python-client", "generate", "--path", str(spec), "--output-path", str(package),
        "--meta", "none", "--config", str(config), "--fail-on-warning",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=GENERATOR_TIMEOUT_S, cwd=root)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return root, output


def test_openapi_python_client_generates_every_operation(
    tokenless: Served, generated: tuple[Path, str]
) -> None:
    root, output = generated
    assert "Warning" not in output and "will not be generated" not in output, output
    modules = {p.stem for p in (root / "fleetdeck_node_client" / "api").rglob("*.py")} - {"__init__"}
    wanted = {operation["operationId"] for _, _, operation in operations(tokenless.document)}
    assert len(wanted) == len(list(operations(tokenless.document))) >= 20
    assert wanted - modules == set()


def test_the_generated_client_talks_to_the_node(
    tokenless: Served, generated: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = generated
    monkeypatch.syspath_prepend(str(root))
    client_module = importlib.import_module("fleetdeck_node_client")
    api = {p.stem: p.parent.name for p in (root / "fleetdeck_node_client" / "api").rglob("*.py")}

    def endpoint(operation_id: str) -> Any:
        return importlib.import_module(f"fleetdeck_node_client.api.{api[operation_id]}.{operation_id}")

    models = importlib.import_module("fleetdeck_node_client.models")
    operation_ids = {(m, p): op["operationId"] for p, m, op in operations(tokenless.document)}
    client = client_module.AuthenticatedClient(base_url=tokenless.node.url, token=tokenless.token)
    with client:
        snapshot = endpoint(operation_ids["get", "/v1/snapshot"]).sync_detailed(client=client)
        assert snapshot.status_code == 200 and snapshot.parsed.node.name == tokenless.node.name
        # the operation the generator used to drop: a command to start as a new agent...
        body = models.DispatchBody(
            request=models.DispatchCommand(command=["python", "-c", "print(1)"], name="generated-client")
        )
        dispatch = endpoint(operation_ids["post", ACTION_PATHS["dispatch"]])
        answer = dispatch.sync_detailed(client=client, body=body, idempotency_key="generated-client-1")
        assert answer.status_code == 201, answer.content
        assert answer.parsed.status in {"queued", "running"} and answer.parsed.id
        # ...and work for an agent that exists
        agent = snapshot.parsed.agents[0].id
        body = models.DispatchBody(request=models.DispatchToAgent(agent_id=agent), reason="generated client")
        answer = dispatch.sync_detailed(client=client, body=body, idempotency_key="generated-client-2")
        assert answer.status_code == 201, answer.content
        assert agent in answer.parsed.target
        # a refusal is the Problem model, as documented
        refused = endpoint(operation_ids["get", "/v1/agents/{agent_id}"]).sync_detailed(
            "no-such-agent", client=client
        )
        assert refused.status_code == 404 and refused.parsed.status == 404
        # KPI history, narrowed by a repeated query parameter, and a gate sign-off (revision 3)
        kpis = endpoint(operation_ids["get", "/v1/kpis"]).sync_detailed(
            client=client, since="0", name=["latency_p95_ms"]
        )
        assert kpis.status_code == 200, kpis.content
        assert kpis.parsed and {series.name for series in kpis.parsed} == {"latency_p95_ms"}
        assert all(len(point) == 2 for series in kpis.parsed for point in series.points)
        phase = next(p for p in snapshot.parsed.phases if p.status != "done")  # a done phase's gate is closed
        sign = endpoint(operation_ids["post", "/v1/phases/{phase_id}/gate"])
        signed = sign.sync_detailed(
            phase.id,
            client=client,
            body=models.SignGateBody(
                decision=models.SignGateBodyDecision("no-go"), reason="generated client"
            ),
        )
        assert signed.status_code == 200, signed.content
        assert signed.parsed.signed.decision == "no-go" and signed.parsed.signed.reason == "generated client"
