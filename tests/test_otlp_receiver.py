"""The OTLP/HTTP receiver end to end, fed by clients nobody here wrote: the OpenTelemetry SDK and its own
exporters (protobuf, JSON, gzip) against a real ``fleetdeck node serve --otlp`` and ``fleetdeck otlp``;
what they send is read back through ``fleetdeck agents``/``logs``/``status``, ``/metrics`` and the console.

One served node is shared by the module (each test names its own agents); receivers with tighter limits
are started by the tests that need them.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_INFO, LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from prometheus_client.parser import text_string_to_metric_families

from console.app import FleetDeckApp
from console.core.config import Config, NodeConfig
from console.core.fleet_setup import configured_links, local_link
from console.screens.agent import AgentScreen
from console.snapshot import screen_text
from widgets.attention import AttentionList

from .agents.local_node import script, wait_for
from .serving import ServedNode, free_port

DATA = Path(__file__).parent / "data" / "claude_hooks"
ASKED = "permission to run Bash(rm -rf build)"


def isolated_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETDECK_", "XDG_", "OTEL_"))}
    env.pop("NO_COLOR", None)
    env["XDG_CONFIG_HOME"] = str(root / "config")
    env["XDG_STATE_HOME"] = str(root / "state")
    env["FLEETDECK_STATE_DIR"] = str(root / "node")
    env["HOME"] = str(root / "home")
    return env


class Node:
    """The module's served node: ``node serve --otlp`` on the local store, and how to reach both sides."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = isolated_env(root)
        self.otlp_port = free_port()
        self.otlp_url = f"http://127.0.0.1:{self.otlp_port}"
        self.served = ServedNode(
            "--listen", "127.0.0.1:0", "--otlp", f"127.0.0.1:{self.otlp_port}", env=self.env, cwd=root
        )

    @property
    def token(self) -> str:
        return (self.root / "state" / "fleetdeck" / "local-operator.token").read_text().strip()

    def cli(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "console", *args],
            env=self.env,
            cwd=self.root,
            input=stdin,
            capture_output=True,
            timeout=60,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    def agents(self) -> dict[str, dict[str, Any]]:
        done = self.cli("agents", "--json")
        assert done.returncode == 0, done.stderr
        return {agent["id"]: agent for agent in json.loads(done.stdout)}

    def logs(self, source: str) -> list[dict[str, Any]]:
        done = self.cli("logs", "--json", "--agent", source)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def exporter_env(self, **extra: str) -> dict[str, str]:
        return {
            **self.env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {self.token}",
            **extra,
        }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    served = Node(tmp_path_factory.mktemp("otlp-node"))
    served.served.start()
    wait_for(lambda: _healthy(served.otlp_url), "the OTLP receiver to answer")
    yield served
    served.served.stop()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_sdk_agent(env: Mapping[str, str], *args: str) -> None:
    """tests/agents/otel_agent.py (or another SDK-only agent): it flushes every exporter before it exits."""
    done = subprocess.run(
        [sys.executable, script(args[0]), *args[1:]],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0 and "exported" in done.stdout, done.stderr[-2000:]
    assert "Failed to export" not in done.stderr, done.stderr[-2000:]


def kpis(agent: Mapping[str, Any]) -> dict[str, float]:
    return {k["name"]: k["value"] for k in agent.get("kpis", [])}


def one_agent(agents: Mapping[str, dict[str, Any]], service: str) -> dict[str, Any]:
    """The one agent a service became (its id carries the SDK's random service.instance.id)."""
    found = [a for a in agents.values() if a["labels"].get("service") == service]
    assert len(found) == 1, sorted(agents)
    return found[0]


# --- an SDK agent, as its users would point it at fleetdeck ------------------------------------------------


@pytest.mark.parametrize(
    ("service", "protocol", "compression"),
    [("shop-proto", "protobuf", "gzip"), ("shop-json", "json", "none")],
    ids=["protobuf-gzip", "json"],
)
def test_an_sdk_agent_shows_up_with_its_name_model_tokens_latency_and_logs(
    node: Node, service: str, protocol: str, compression: str
) -> None:
    env = node.exporter_env(OTEL_EXPORTER_OTLP_COMPRESSION=compression)
    run_sdk_agent(env, "otel_agent.py", service, protocol, "5", "1")
    agent = one_agent(node.agents(), service)
    assert agent["id"].startswith(f"{service}-") and agent["kind"] == "otel"
    assert agent["state"] == "running"
    assert {k: agent["labels"].get(k) for k in ("source", "model", "provider")} == {
        "source": "otel",
        "model": "gpt-4o",
        "provider": "openai",
    }
    figures = kpis(agent)
    assert {
        k: figures[k] for k in ("tokens_in_total", "tokens_out_total", "requests_total", "errors_total")
    } == {
        "tokens_in_total": 500.0,
        "tokens_out_total": 200.0,
        "requests_total": 5.0,
        "errors_total": 1.0,
    }
    assert figures["error_ratio"] == pytest.approx(0.2)
    assert figures["tool_calls_total"] == 5.0 and figures["orders_placed_total"] == 5.0
    # each chat span lasts about 20 ms (a sleep): the percentiles come from the spans' own durations
    assert 15.0 <= figures["request_latency_p50_ms"] <= figures["request_latency_p95_ms"] < 2000.0
    lines = node.logs(agent["id"])
    placed = [line for line in lines if line["message"].startswith("placed order")]
    assert len(placed) == 5
    # each logged inside its run's span: the ids are kept, as the hex the OTel tools show
    assert all(len(p["fields"]["trace_id"]) == 32 and len(p["fields"]["span_id"]) == 16 for p in placed)
    assert len({p["fields"]["trace_id"] for p in placed}) == 5
    declined = [line for line in lines if line["message"] == "payment declined"]
    assert [line["level"] for line in declined] == ["error"]
    assert "trace_id" not in declined[0]["fields"]  # logged outside any span


async def test_the_console_and_metrics_show_an_otel_agent_over_http(node: Node) -> None:
    run_sdk_agent(node.exporter_env(), "otel_agent.py", "shop-console", "protobuf", "3", "0")
    agent_id = one_agent(node.agents(), "shop-console")["id"]

    scrape = httpx.get(
        f"{node.served.url}/metrics", headers={"Authorization": f"Bearer {node.token}"}, timeout=10
    )
    assert scrape.status_code == 200
    samples = {
        (s.labels.get("agent"), s.labels.get("kpi")): s.value
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
        if s.name == "fleetdeck_agent_kpi"
    }
    assert samples[(agent_id, "tokens_in_total")] == 300.0
    assert samples[(agent_id, "requests_total")] == 3.0

    token_file = str(node.root / "state" / "fleetdeck" / "local-operator.token")
    served = NodeConfig(name="served", backend="http", url=node.served.url, token_file=token_file)
    config = Config(nodes=(served,), refresh_s=0.5)
    app = FleetDeckApp(configured_links(config, clock=time.time), config=config, clock=time.time)
    async with app.run_test(size=(200, 50)) as pilot:
        deadline = time.monotonic() + 30
        while agent_id not in screen_text(app):
            assert time.monotonic() < deadline, f"the agent in the console: {screen_text(app)}"
            await pilot.pause(0.1)
        link = app.links["served"]
        app.open_agent(link, agent_id)
        await pilot.pause(0.3)
        assert isinstance(app.screen, AgentScreen)
        text = screen_text(app)
        assert "OpenTelemetry" in text and "shop-console" in text


# --- refusals: who may send, what a body must be ---------------------------------------------------------


def _logs_request(service: str, messages: list[str]) -> ExportLogsServiceRequest:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    records = [
        LogRecord(
            time_unix_nano=time.time_ns(), severity_number=SEVERITY_NUMBER_INFO, body=AnyValue(string_value=m)
        )
        for m in messages
    ]
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


def _post(
    url: str, body: bytes, token: str | None, content_type: str = "application/x-protobuf", **headers: str
):
    sent = {"Content-Type": content_type, **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.post(url, content=body, headers=sent, timeout=30)


def test_a_wrong_token_is_401_and_nothing_is_stored(node: Node) -> None:
    body = _logs_request("intruder", ["let me in"]).SerializeToString()
    for token in (None, "not-the-token"):
        refused = _post(f"{node.otlp_url}/v1/logs", body, token)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert not [a for a in node.agents().values() if a["labels"].get("service") == "intruder"]
    accepted = _post(f"{node.otlp_url}/v1/logs", body, node.token)
    assert accepted.status_code == 200
    assert ExportLogsServiceResponse.FromString(accepted.content).partial_success.rejected_log_records == 0
    assert [line["message"] for line in node.logs("intruder")] == ["let me in"]


def test_a_malformed_body_is_a_400_with_a_status_and_changes_nothing(node: Node) -> None:
    before = node.agents()
    url = f"{node.otlp_url}/v1/traces"
    garbage = _post(url, b"\x0a\xff\xff\xff\xff garbage", node.token)
    assert garbage.status_code == 400
    status = status_pb2.Status.FromString(garbage.content)  # in the request's own encoding, as OTLP says
    assert status.code == 3 and "not a protobuf ExportTraceServiceRequest" in status.message

    wrong_json = _post(url, b'{"resourceSpans": 5}', node.token, "application/json")
    assert wrong_json.status_code == 400
    assert (
        json.loads(wrong_json.text)["code"] == 3 and "resourceSpans" in json.loads(wrong_json.text)["message"]
    )

    not_otlp = _post(url, b"hello", node.token, "text/plain")
    assert not_otlp.status_code == 415 and "application/x-protobuf" in json.loads(not_otlp.text)["message"]

    bomb = gzip.compress(b"\0" * (100 * 1024 * 1024))  # 100 KiB on the wire, 100 MiB unpacked
    exploded = _post(url, bomb, node.token, **{"Content-Encoding": "gzip"})
    assert exploded.status_code == 413
    assert "bytes" in status_pb2.Status.FromString(exploded.content).message

    assert node.agents().keys() == before.keys()
    assert _healthy(node.otlp_url)


def test_a_locked_store_is_a_503_with_retry_after_and_the_retry_is_stored_once(node: Node) -> None:
    body = _logs_request("patient", ["first", "second"]).SerializeToString()
    holder = sqlite3.connect(node.root / "node" / "fleetdeck.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # an sqlite3 shell holding the write lock, say
    try:
        busy = _post(f"{node.otlp_url}/v1/logs", body, node.token)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert busy.status_code == 503, busy.text
    assert int(busy.headers["retry-after"]) > 0
    assert "nothing of it was kept" in status_pb2.Status.FromString(busy.content).message
    assert "patient" not in node.agents()
    again = _post(f"{node.otlp_url}/v1/logs", body, node.token)
    assert again.status_code == 200
    assert [line["message"] for line in node.logs("patient")] == ["first", "second"]


def _mappers(pid: int) -> list[psutil.Process]:
    """The receiver's mapper processes: its spawned children (not multiprocessing's resource tracker)."""
    children = psutil.Process(pid).children(recursive=True)
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def test_a_killed_mapper_is_a_503_and_a_new_one_takes_the_retry(node: Node) -> None:
    """Decoding and mapping run in a process of their own: killed, it loses nothing (the request it
    would have mapped is answered 503 with Retry-After, and nothing of it stored) and the receiver starts
    another for the retry."""
    assert node.served.process is not None
    (mapper,) = _mappers(node.served.process.pid)
    mapper.kill()
    mapper.wait(10)
    body = _logs_request("survivor", ["kept once"]).SerializeToString()
    lost = _post(f"{node.otlp_url}/v1/logs", body, node.token)
    assert lost.status_code == 503, lost.text
    assert int(lost.headers["retry-after"]) > 0
    assert "mapper process ended" in status_pb2.Status.FromString(lost.content).message
    assert "survivor" not in node.agents()
    again = _post(f"{node.otlp_url}/v1/logs", body, node.token)
    assert again.status_code == 200, again.text
    assert [line["message"] for line in node.logs("survivor")] == ["kept once"]
    (successor,) = _mappers(node.served.process.pid)
    assert successor.pid != mapper.pid


# --- receivers with tight limits: fleetdeck otlp on its own ----------------------------------------------


class Receiver:
    """``fleetdeck otlp ARGS`` on a free port, stopped on exit."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.env = isolated_env(root)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console", "otlp", "--listen", f"127.0.0.1:{port}", *args],
            env=self.env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == f"fleetdeck otlp: receiving on {self.url}", line
        self.output: list[str] = []
        self._drain = threading.Thread(target=lambda: self.output.extend(self.process.stdout or ()))
        self._drain.start()  # keep the pipe drained

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.terminate()
        self.process.wait(timeout=15)
        self._drain.join(15)
        # stopped, it takes its mapper processes with it, and says nothing an operator would take for a crash
        _gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, alive
        if exc[0] is None:
            assert "Traceback" not in "".join(self.output), "".join(self.output)[-3000:]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def agents(self) -> dict[str, dict[str, Any]]:
        done = self.cli("agents", "--json")
        assert done.returncode == 0, done.stderr
        return {agent["id"]: agent for agent in json.loads(done.stdout)}


def _token(root: Path, name: str, role: str) -> str:
    env = isolated_env(root)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "node",
            "token",
            name,
            "--role",
            role,
            "--tokens",
            str(root / "t.toml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[0]


def _spans_request(services: list[str], spans_each: int) -> ExportTraceServiceRequest:
    now = time.time_ns()
    groups = []
    for service in services:
        resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
        spans = [
            Span(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                name="chat gpt-4o",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 20_000_000,
                attributes=[KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))],
            )
            for _ in range(spans_each)
        ]
        groups.append(ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)]))
    return ExportTraceServiceRequest(resource_spans=groups)


def test_a_receiver_killed_outright_leaves_no_mapper_behind(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    mappers = _mappers(receiver.process.pid)
    assert len(mappers) == 1
    receiver.process.kill()
    receiver.process.wait(15)
    _gone, alive = psutil.wait_procs(mappers, timeout=15)
    assert not alive, "a mapper outlived its receiver"


def test_too_many_agent_names_are_refused_told_and_alerted(tmp_path: Path) -> None:
    reporter = _token(tmp_path, "shipper", "reporter")
    viewer = _token(tmp_path, "watcher", "viewer")
    args = ("--tokens", str(tmp_path / "t.toml"), "--max-agents", "3", "--otlp-mappers", "0")
    with Receiver(tmp_path, *args) as receiver:
        assert _mappers(receiver.process.pid) == []  # mapped on the receiver's own thread
        body = _spans_request([f"svc-{n}" for n in range(5)], spans_each=4).SerializeToString()
        url = f"{receiver.url}/v1/traces"
        forbidden = _post(url, body, viewer)
        assert forbidden.status_code == 403 and "reporter or operator" in forbidden.text
        taken = _post(url, body, reporter)
        assert taken.status_code == 200
        partial = ExportTraceServiceResponse.FromString(taken.content).partial_success
        assert partial.rejected_spans == 8  # two agents of four spans each
        assert "at most 3 OTLP agents" in partial.error_message and "--max-agents" in partial.error_message
        agents = receiver.agents()
        assert sorted(a for a in agents if agents[a]["kind"] == "otel") == ["svc-0", "svc-1", "svc-2"]

        def refused_alert() -> list[dict[str, Any]]:
            report = json.loads(receiver.cli("status", "--json").stdout)
            alerts = [a for n in report["nodes"] for a in n["alerts"]]
            return [a for a in alerts if "otlp_refused_agents" in json.dumps(a)]

        alerts = wait_for(refused_alert, "an alert on otlp_refused_agents", timeout=30)
        assert (alerts[0]["severity"], alerts[0]["subject"]) == ("warning", "agent:otlp"), alerts


def test_a_burst_past_what_waits_is_told_to_retry_and_nothing_is_lost(tmp_path: Path) -> None:
    """Eight SDK agents flushing at once into a receiver that lets 1 KiB wait: most are told 429 with
    Retry-After, their exporters retry, and every span, point and record is stored exactly once."""
    with Receiver(tmp_path, "--max-otlp-pending", "1024") as receiver:
        token = (tmp_path / "state" / "fleetdeck" / "local-operator.token").read_text().strip()
        env = {
            **receiver.env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {token}",
        }
        command = [sys.executable, script("otel_agent.py")]
        runs = [
            subprocess.Popen(
                [*command, f"burst-{n}", "protobuf", "20", "2"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(8)
        ]
        for run in runs:
            out, err = run.communicate(timeout=120)
            assert run.returncode == 0 and "exported" in out, err[-2000:]
            assert "Failed to export" not in err, err[-2000:]
        agents = receiver.agents()
        for n in range(8):
            figures = kpis(one_agent(agents, f"burst-{n}"))
            assert (figures["requests_total"], figures["errors_total"]) == (20.0, 2.0), n
            assert (figures["tokens_in_total"], figures["orders_placed_total"]) == (2000.0, 20.0), n
        logs = receiver.cli("logs", "--json")
        messages = [json.loads(line) for line in logs.stdout.splitlines() if line.strip()]
        for n in range(8):
            source = one_agent(agents, f"burst-{n}")["id"]
            placed = sorted(
                m["message"] for m in messages if m["source"] == source and "placed" in m["message"]
            )
            assert placed == sorted(f"placed order {k}" for k in range(20)), n

        def busy_replies() -> float:
            return kpis(receiver.agents()["otlp"]).get("otlp_busy_replies_total", 0.0)

        assert wait_for(busy_replies, "the receiver to count its 429 replies", timeout=20) > 0


# --- a Claude Code session: its hooks and its telemetry, one agent ---------------------------------------


def _hook(node: Node, name: str, **changes: Any) -> None:
    event = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    event.update(changes)
    done = node.cli("hook", "claude", stdin=json.dumps(event).encode())
    assert done.returncode == 0 and done.stdout == "", done.stderr


async def test_a_claude_session_waits_for_permission_in_the_inbox_and_runs_again(node: Node) -> None:
    session = "5e551011-2222-4333-8444-555566667777"
    agent_id = "claude-5e551011"
    common = {"session_id": session, "cwd": str(node.root)}
    _hook(node, "session_start", **common)
    run_sdk_agent(node.exporter_env(), "claude_code_telemetry.py", session, "protobuf")
    _hook(node, "pre_tool_use", tool_input={"command": "rm -rf build"}, **common)
    _hook(node, "notification_permission", **common)

    agent = node.agents()[agent_id]  # one agent: the hooks registered it, the telemetry joined it
    assert (agent["state"], agent["message"]) == ("waiting", ASKED)
    figures = kpis(agent)
    assert figures["tokens_in_total"] == 1200.0 and figures["tokens_out_total"] == 350.0
    assert figures["cost_usd_total"] == pytest.approx(0.0423)

    link = local_link(time.time, state_dir=str(node.root / "node"))
    app = FleetDeckApp([link], config=Config(refresh_s=0.3), clock=time.time)
    async with app.run_test(size=(160, 48)) as pilot:

        def needs_you() -> list[str] | None:
            for inbox in app.screen.query(AttentionList):
                for r in range(inbox.row_count):
                    cells = [cell.plain for cell in inbox.get_row_at(r)]
                    if f"agent:{agent_id}" in cells:
                        return cells
            return None

        deadline = time.monotonic() + 30
        while (row := needs_you()) is None:
            assert time.monotonic() < deadline, "the session in the Attention inbox"
            await pilot.pause(0.1)
        assert row[0] == "⏸ YOU" and f"needs you: {ASKED}" in row[-1]
        _hook(node, "post_tool_use", **common)
        while needs_you() is not None:
            assert time.monotonic() < deadline, "the waiting alert gone once the session runs again"
            await pilot.pause(0.1)
    assert node.agents()[agent_id]["state"] == "running"
