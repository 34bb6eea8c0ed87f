"""The wire model: exact JSON round trips for every type, and errors that name the bad field."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from backends.demo import DemoBackend, demo_fleet
from backends.model import (
    Agent,
    AuditEntry,
    Checkpoint,
    Criterion,
    DispatchRequest,
    Gate,
    GateSignoff,
    Gpu,
    GpuProcess,
    GpuStatus,
    Kpi,
    KpiSeries,
    LoadAvg,
    LogRecord,
    Milestone,
    ModelError,
    NodeInfo,
    NodeSnapshot,
    Phase,
    SystemMetrics,
    Target,
    Task,
    from_builtins,
    from_json,
    to_builtins,
    to_json,
)

from .conftest import T0

# --- one instance of every type with every field set to something other than its default ---------------

LOAD = LoadAvg(m1=1.25, m5=2.5, m15=3.75)
NODE_INFO = NodeInfo(
    id="gpu-01",
    name="GPU box 1",
    backend="demo",
    version="1.2.3",
    hostname="gpu-01.example",
    environment="production",
    labels={"rack": "r12", "zone": "eu-west-1a"},
    read_only=True,
    capabilities=frozenset({"pause", "resume", "logs"}),
    health_checks=frozenset({"heartbeat"}),
)
SYSTEM = SystemMetrics(
    cpu_percent=37.5,
    cpu_count=128,
    load_avg=LOAD,
    mem_total=2 * 1024**4,
    mem_used=900 * 1024**3,
    mem_available=1024**4,
    swap_total=16 * 1024**3,
    swap_used=512 * 1024**2,
    disk_total=7 * 1024**4,
    disk_used=3 * 1024**4,
    disk_available=2 * 1024**4,
    uptime_s=3_210_000.5,
)
GPU_PROCESS = GpuProcess(pid=4242, used_memory=30 * 1024**3, agent_id="model-manager-01")
GPU = Gpu(
    index=3,
    uuid="GPU-7d3c1e2a",
    name="H100 80GB HBM3",
    util_percent=88.5,
    mem_total=80 * 1024**3,
    mem_used=62 * 1024**3,
    temperature_c=66.0,
    power_w=579.25,
    power_limit_w=700.0,
    fan_percent=66.0,
    processes=(GPU_PROCESS, GpuProcess(pid=4243, used_memory=None, agent_id=None)),
)
GPU_STATUS = GpuStatus(status="error", reason="NVML: driver/library version mismatch")
KPI = Kpi(name="latency_p95_ms", value=131.5, unit="ms", at=T0 - 1.0, kind="gauge", rate_per_s=None)
COUNTER = Kpi(
    name="tokens_out_total", value=12_400.0, unit="tokens", at=T0 - 1.0, kind="counter", rate_per_s=31.0
)
AGENT = Agent(
    id="coder-01",
    name="Coder 1",
    kind="actor",
    state="paused",
    health="degraded",
    health_reason="p95 latency 127 ms > 120 ms",
    last_heartbeat=T0 - 4.5,
    pid=2036,
    cpu_percent=195.5,  # more than one core
    rss_bytes=5 * 1024**3,
    gpu_mem_bytes=1024**3,
    phase_id="p3-scale-out",
    current_task="task-17",
    progress=0.42,
    message="refactoring scheduler/client.py",
    restarts=2,
    started_at=T0 - 86_400.0,
    state_since=T0 - 60.0,
    labels={"role": "coder", "team": "platform"},
    kpis=(KPI, COUNTER),
)
# alive and blocked on a human: what it waits for is its message, since when its state_since
WAITING_AGENT = msgspec.structs.replace(
    AGENT, state="waiting", message="permission to run Bash(rm -rf build)", state_since=T0 - 30.0
)
CRITERION = Criterion(
    name="P95 latency",
    target="< 120 ms",
    actual="135 ms",
    passed=False,
    kpi="latency_p95_ms",
    since=T0 - 600.0,
)
MILESTONE = Milestone(id="w5", name="Multi-node scheduler", status="failed", criteria=(CRITERION,))
SIGNOFF = GateSignoff(decision="go", operator="alice", at=T0 - 120.0, reason="load test reviewed")
GATE = Gate(
    decision="no-go",
    reasons=("P95 latency over target", "GPU headroom 10%"),
    since=T0 - 600.0,
    signed=SIGNOFF,
)
SERIES = KpiSeries(
    agent_id="coder-01",
    name="tokens_out_total",
    unit="tokens",
    kind="counter",
    points=((T0 - 2.0, 12_369.0), (T0 - 1.0, 12_400.0)),
)
PHASE = Phase(
    id="p3-scale-out",
    name="Scale-out",
    order=3,
    status="blocked",
    progress=0.6,
    started_at=T0 - 7 * 86_400,
    finished_at=T0 - 3600.0,
    due_at=T0 + 2 * 86_400,
    milestones=(MILESTONE,),
    gate=GATE,
    status_reason="milestone w1 failed",
)
TASK = Task(
    id="task-17",
    kind="refactor",
    target="agent:coder-01",
    payload={"files": ["a.py", "b.py"], "priority": 2, "nested": {"dry_run": True}},
    status="rolled_back",
    created_at=T0 - 600.0,
    updated_at=T0 - 60.0,
    submitted_by="alice",
    attempts=3,
    result={"changed": 4, "ratio": 0.5},
    error="rolled back by bob",
)
CHECKPOINT = Checkpoint(
    id="ckpt-0007",
    label="before scale-out",
    created_at=T0 - 1200.0,
    created_by="alice",
    phase_id="p3-scale-out",
    automatic=True,
    covers=("coder-01", "phase:p3-scale-out"),
)
LOG_RECORD = LogRecord(
    seq=57539,
    ts=T0 - 0.125,
    level="critical",
    source="coder-01",
    message="CUDA out of memory — tried to allocate 2.00 GiB",
    fields={"gpu": 3, "bytes": 2 * 1024**3, "retry": None},
)
AUDIT = AuditEntry(
    seq=12,
    ts=T0 - 30.0,
    operator="alice",
    action="pause",
    target="agent:coder-01",
    params={"force": True},
    reason="runaway memory",
    outcome="denied",
    detail="node is read-only",
    request_id="req-9f2",
)
TARGET = Target(kind="phase", id="p3-scale-out")
DISPATCH_TO_AGENT = DispatchRequest(agent_id="coder-01", payload={"prompt": "fix #12"}, kind="review")
DISPATCH_COMMAND = DispatchRequest(command=("python", "-m", "worker", "--fast"), name="worker-9", kind="job")
SNAPSHOT = NodeSnapshot(
    node=NODE_INFO,
    observed_at=T0,
    system=SYSTEM,
    gpus=(GPU,),
    gpu_status=GPU_STATUS,
    agents=(AGENT, Agent(id="bare-01", name="bare")),
    phases=(PHASE,),
    tasks=(TASK,),
    checkpoints=(CHECKPOINT,),
)

EVERY_FULL_INSTANCE: list[Any] = [
    NODE_INFO, LOAD, SYSTEM, GPU_PROCESS, GPU, GPU_STATUS, COUNTER, SERIES, AGENT, CRITERION, MILESTONE,
    SIGNOFF, GATE, PHASE, TASK, CHECKPOINT, LOG_RECORD, AUDIT, TARGET, SNAPSHOT,
]  # fmt: skip
ALL_FIELDS_EXEMPT = {
    # DispatchRequest takes either agent_id+payload or command+name, never both: two instances cover it.
    DispatchRequest,
}


def _ids(values: list[Any]) -> list[str]:
    return [type(v).__name__ for v in values]


def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


@pytest.mark.parametrize("value", EVERY_FULL_INSTANCE, ids=_ids(EVERY_FULL_INSTANCE))
def test_samples_set_every_field(value: Any) -> None:
    """A guard for the round-trip test: a field added to the model must be added to its sample too."""
    unset = [f.name for f in msgspec.structs.fields(type(value)) if getattr(value, f.name) == _default(f)]
    assert not unset, f"{type(value).__name__} sample leaves {unset} at the default"


def test_every_wire_type_has_a_sample() -> None:
    import backends.model as model

    types = {
        obj
        for obj in vars(model).values()
        if isinstance(obj, type) and issubclass(obj, model.Model) and obj is not model.Model
    }
    covered = {type(v) for v in EVERY_FULL_INSTANCE} | ALL_FIELDS_EXEMPT
    assert types == covered


ROUND_TRIP = [*EVERY_FULL_INSTANCE, DISPATCH_TO_AGENT, DISPATCH_COMMAND, WAITING_AGENT]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=_ids(ROUND_TRIP))
def test_json_round_trip_is_exact(value: Any) -> None:
    data = to_json(value)
    back = from_json(data, type(value))
    assert back == value
    assert to_json(back) == data  # byte for byte, key order included
    # and through plain builtins, as the TOML plan and --json output use them
    assert from_builtins(to_builtins(value), type(value)) == value
    assert json.loads(data) == json.loads(json.dumps(to_builtins(value)))


def test_json_round_trip_keeps_float_precision() -> None:
    record = LogRecord(seq=1, ts=1767225600.123456, level="info", source="node", message="x")
    assert from_json(to_json(record), LogRecord).ts == 1767225600.123456


def test_json_key_order_is_deterministic() -> None:
    a = NodeInfo(
        id="n",
        name="n",
        backend="demo",
        labels={"b": "2", "a": "1"},
        capabilities=frozenset({"pause", "audit", "logs"}),
    )
    b = NodeInfo(
        id="n",
        name="n",
        backend="demo",
        labels={"a": "1", "b": "2"},
        capabilities=frozenset({"logs", "pause", "audit"}),
    )
    assert to_json(a) == to_json(b)
    assert json.loads(to_json(a))["capabilities"] == ["audit", "logs", "pause"]


async def test_demo_snapshot_round_trips() -> None:
    for backend in demo_fleet(seed=7, nodes=3, agents=80, clock=lambda: T0):
        snapshot = await backend.snapshot()
        assert snapshot.agents and snapshot.phases
        data = to_json(snapshot)
        assert from_json(data, NodeSnapshot) == snapshot
        assert to_json(from_json(data, NodeSnapshot)) == data


async def test_demo_logs_round_trip() -> None:
    backend = DemoBackend(seed=7, clock=lambda: T0)
    records = [r async for r in backend.logs(since_seq=0, follow=False)]
    assert records
    data = to_json(records)
    assert from_json(data, list[LogRecord]) == records


def test_unknown_fields_from_a_newer_peer_are_ignored() -> None:
    data = json.loads(to_json(AGENT))
    data["mood"] = "cheerful"
    assert from_json(json.dumps(data), Agent) == AGENT


def test_models_are_immutable() -> None:
    with pytest.raises(AttributeError):
        AGENT.state = "running"  # type: ignore[misc]


# --- validation: ModelError naming the field ------------------------------------------------------------


def _snapshot_dict() -> dict[str, Any]:
    return json.loads(to_json(SNAPSHOT))


def _bad(mutate) -> str:
    data = _snapshot_dict()
    mutate(data)
    with pytest.raises(ModelError) as caught:
        from_json(json.dumps(data), NodeSnapshot)
    assert not isinstance(caught.value, msgspec.ValidationError)
    return str(caught.value)


def test_out_of_range_percent_names_the_path() -> None:
    message = _bad(lambda d: d["gpus"][0].update(util_percent=150.0))
    assert "$.gpus[0].util_percent" in message
    assert message.startswith("invalid NodeSnapshot")


def test_wrong_type_names_the_path() -> None:
    message = _bad(lambda d: d["gpus"][0].update(power_w="lots"))
    assert "$.gpus[0].power_w" in message
    assert "float" in message and "str" in message


def test_bad_enum_names_the_value_and_path() -> None:
    message = _bad(lambda d: d["agents"][1].update(state="zombie"))
    assert "zombie" in message
    assert "$.agents[1].state" in message


def test_bad_nested_enum() -> None:
    message = _bad(lambda d: d["phases"][0]["gate"].update(decision="maybe"))
    assert "$.phases[0].gate.decision" in message


def test_fraction_above_one() -> None:
    message = _bad(lambda d: d["agents"][0].update(progress=1.5))
    assert "$.agents[0].progress" in message


def test_negative_bytes() -> None:
    message = _bad(lambda d: d["system"].update(mem_used=-1))
    assert "$.system.mem_used" in message


def test_missing_required_field() -> None:
    message = _bad(lambda d: d.pop("observed_at"))
    assert "observed_at" in message
    assert "missing" in message.lower()


def test_missing_nested_required_field() -> None:
    message = _bad(lambda d: d["agents"][0].pop("id"))
    assert "`id`" in message
    assert "$.agents[0]" in message


def test_empty_identifier() -> None:
    message = _bad(lambda d: d["node"].update(id=""))
    assert "$.node.id" in message


@pytest.mark.parametrize("data", ["{", "", "not json", b"\xff\xfe", "[1, 2"])
def test_malformed_json(data: str | bytes) -> None:
    with pytest.raises(ModelError, match="invalid NodeSnapshot"):
        from_json(data, NodeSnapshot)


def test_wrong_top_level_type() -> None:
    with pytest.raises(ModelError, match="invalid LogRecord"):
        from_json("[]", LogRecord)


def test_from_builtins_names_the_field() -> None:
    with pytest.raises(ModelError, match=r"\$\.level"):
        from_builtins({"seq": 1, "ts": T0, "level": "loud", "source": "node", "message": "x"}, LogRecord)


def test_model_error_is_a_value_error() -> None:
    assert issubclass(ModelError, ValueError)


# --- Target -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "ident"),
    [
        ("agent:coder-01", "agent", "coder-01"),
        ("phase:p3-scale-out", "phase", "p3-scale-out"),
        ("task:task-17", "task", "task-17"),
        ("coder-01", "agent", "coder-01"),
        ("task:a:b", "task", "a:b"),  # only the first colon separates the kind
    ],
)
def test_target_parse(text: str, kind: str, ident: str) -> None:
    target = Target.parse(text)
    assert (target.kind, target.id) == (kind, ident)
    assert Target.parse(str(target)) == target


def test_target_str() -> None:
    assert str(Target(kind="phase", id="p1")) == "phase:p1"


@pytest.mark.parametrize(("text", "words"), [("node:gpu-01", "unknown target kind"), ("agent:", "no id")])
def test_target_parse_rejects(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Target.parse(text)


def test_target_decode_validates_kind() -> None:
    with pytest.raises(ModelError, match=r"\$\.kind"):
        from_json('{"kind": "node", "id": "x"}', Target)


# --- DispatchRequest ------------------------------------------------------------------------------------


def test_dispatch_needs_exactly_one_of_agent_or_command() -> None:
    with pytest.raises(ValueError, match="either an agent_id"):
        DispatchRequest()
    with pytest.raises(ValueError, match="either an agent_id"):
        DispatchRequest(agent_id="coder-01", command=("ls",))


def test_dispatch_command_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        DispatchRequest(command=())


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ("{}", "either an agent_id"),
        ('{"agent_id": "coder-01", "command": ["ls"]}', "either an agent_id"),
        ('{"command": []}', "must not be empty"),
        ('{"agent_id": 7}', r"\$\.agent_id"),
        ('{"command": "ls -l"}', r"\$\.command"),
    ],
)
def test_dispatch_decode_errors(payload: str, words: str) -> None:
    with pytest.raises(ModelError, match=words):
        from_json(payload, DispatchRequest)


def test_dispatch_defaults() -> None:
    request = from_json('{"agent_id": "coder-01"}', DispatchRequest)
    assert request.payload == {} and request.kind == "task" and request.command is None
