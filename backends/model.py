"""The wire model: the one set of types every backend returns, the HTTP API sends and the widgets render.

Every type is an immutable ``msgspec.Struct``. msgspec validates on the way in (``decode`` / ``convert``)
and names the failing field in its error (``Expected `float`, got `str` - at `$.gpus[0].power_w```),
encodes to JSON exactly what it decoded, and does both far faster than the UI needs at 5,000 agents.

Units are fixed: bytes, percent 0-100, degrees Celsius, watts, seconds, timestamps as UTC epoch seconds.
An unknown value is ``None`` (rendered "n/a"), never a made-up 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, get_args

import msgspec
from msgspec import Meta, Struct, field

# --- constrained scalars -------------------------------------------------------------------------------

Percent = Annotated[float, Meta(ge=0, le=100)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
Bytes = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(ge=0)]
Timestamp = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
Identifier = Annotated[str, Meta(min_length=1, max_length=200)]

# --- enumerations (plain strings on the wire) ----------------------------------------------------------

# From least to most careful: a node is treated as the stricter of what the config and the node say.
Environment = Literal["dev", "staging", "production"]
GpuStatusKind = Literal["ok", "no_driver", "error"]
AgentKind = Literal["process", "reporting", "actor", "otel"]
# "waiting": alive but blocked on a human (input or an approval); what it waits for is its ``message``
AgentState = Literal[
    "starting", "running", "idle", "waiting", "paused", "stopping", "stopped", "failed", "unknown"
]
Health = Literal["healthy", "degraded", "unhealthy", "unknown"]
# "stopped": ended on request before it finished (a Ray job stopped): over, but neither done nor failed
PhaseStatus = Literal["pending", "active", "paused", "blocked", "done", "failed", "stopped"]
MilestoneStatus = Literal["pending", "active", "passed", "failed"]
GateDecision = Literal["go", "no-go", "pending"]
TaskStatus = Literal["queued", "running", "paused", "succeeded", "failed", "cancelled", "rolled_back"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]
AuditOutcome = Literal["ok", "denied", "failed"]
TargetKind = Literal["agent", "phase", "task"]

LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
LOG_LEVEL_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LOG_LEVELS)}
ENVIRONMENT_RANK: dict[str, int] = {env: rank for rank, env in enumerate(get_args(Environment))}

# Capabilities a backend may declare; the console enables an action only when its capability is present.
# The actions change a node, so a read-only node or a viewer's token loses them; reading never does.
ActionCapability = Literal["dispatch", "pause", "resume", "stop", "checkpoint", "rollback", "sign_gate"]
Capability = Literal[ActionCapability, "audit", "logs", "kpi_history"]
ALL_CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))
ACTION_CAPABILITIES: frozenset[str] = frozenset(get_args(ActionCapability))
# Conditions a node may already judge into its agents' health. The console judges only what a node leaves
# out, from its own view (its log buffer, its clock): one condition judged twice is two alerts, two counts.
HealthCheck = Literal["heartbeat", "error_rate"]
# A gauge is a figure as it stands (a p95 latency); a counter only grows (tokens out), except that it starts
# again from 0 when its agent restarts, so its rate is derived and a drop is read as a reset.
KpiKind = Literal["gauge", "counter"]
# The units a KPI may be in: a fixed set, so every figure can be formatted for people and compared with a
# threshold in the same unit. "ratio" is 0-1 (shown as a percentage); "per_hour" etc. are rates.
KpiUnit = Literal[
    "count", "ms", "s", "ratio", "percent", "bytes", "tokens", "usd", "per_s", "per_min", "per_hour"
]
KPI_UNITS: tuple[str, ...] = get_args(KpiUnit)
# A KPI's name is a metric name (Prometheus' rules, lower case): `latency_p95_ms`, `tokens_out_total`.
# KpiName holds where a name is written (a source recording a figure, a config rule, a plan); on the wire
# (WireKpiName) only its length is checked: msgspec runs a pattern per value, which tripled the cost of
# decoding a snapshot's 25,000 figures (28 ms against 9 ms), and every name is shown through safe_text.
KPI_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
KpiName = Annotated[str, Meta(min_length=1, max_length=64, pattern=KPI_NAME_PATTERN)]
WireKpiName = Annotated[str, Meta(min_length=1, max_length=64)]
_KPI_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def valid_kpi_name(name: str) -> bool:
    """Whether ``name`` is a KpiName: what a source checks before it records a figure under it."""
    return _KPI_NAME.fullmatch(name) is not None


SignedDecision = Literal["go", "no-go"]


class Model(Struct, frozen=True, kw_only=True, forbid_unknown_fields=False, gc=False):
    """Base of every wire type: immutable and tolerant of fields added by newer peers.

    msgspec does not inherit ``kw_only`` and type checkers do not see ``frozen`` inherited, so each
    subclass repeats both.

    ``gc=False``: values of the wire model are immutable and never part of a reference cycle, so the cycle
    collector need not track them. A console watching a hundred nodes holds hundreds of thousands of them
    (snapshots, log buffers), and walking them all made each full collection stop the screen for 200 ms.
    """


# --- node and host -------------------------------------------------------------------------------------


class NodeInfo(Model, frozen=True, kw_only=True):
    id: Identifier
    name: str
    backend: str
    version: str | None = None
    hostname: str | None = None
    environment: Environment = "dev"
    labels: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    capabilities: frozenset[Capability] = frozenset()
    # What this node's agent health accounts for: an agent it judged failing one of these says so in its
    # health and health_reason, and one it calls healthy passed them.
    health_checks: frozenset[HealthCheck] = frozenset()


class LoadAvg(Model, frozen=True, kw_only=True):
    m1: float
    m5: float
    m15: float


class SystemMetrics(Model, frozen=True, kw_only=True):
    cpu_percent: Percent | None = None
    cpu_count: Count | None = None
    load_avg: LoadAvg | None = None
    mem_total: Bytes | None = None
    mem_used: Bytes | None = None
    mem_available: Bytes | None = None
    swap_total: Bytes | None = None
    swap_used: Bytes | None = None
    disk_total: Bytes | None = None
    disk_used: Bytes | None = None
    # what an unprivileged user may still write (statvfs f_bavail): with reserved blocks, total - used is
    # more than this, and df's Use% is used / (used + available), not used / total
    disk_available: Bytes | None = None
    uptime_s: Seconds | None = None

    @property
    def disk_use_percent(self) -> int | None:
        """Disk use as df's Use% says it: used / (used + available), rounded up to a whole percent (so any
        use at all reads at least 1%). A node that does not send ``disk_available`` (one from before it
        existed) gets used / total, rounded up the same way. None where it cannot be known."""
        used = self.disk_used
        if used is None:
            return None
        whole = used + self.disk_available if self.disk_available is not None else self.disk_total
        if not whole:
            return None
        return min(100, -(-used * 100 // whole))  # integer ceiling, as df computes it


# --- GPUs ----------------------------------------------------------------------------------------------


class GpuProcess(Model, frozen=True, kw_only=True):
    pid: Annotated[int, Meta(ge=0)]
    used_memory: Bytes | None = None
    agent_id: str | None = None


class Gpu(Model, frozen=True, kw_only=True):
    index: Count
    uuid: str | None = None
    name: str | None = None
    util_percent: Percent | None = None
    mem_total: Bytes | None = None
    mem_used: Bytes | None = None
    temperature_c: float | None = None
    power_w: Annotated[float, Meta(ge=0)] | None = None
    power_limit_w: Annotated[float, Meta(ge=0)] | None = None
    fan_percent: Percent | None = None
    processes: tuple[GpuProcess, ...] = ()


class GpuStatus(Model, frozen=True, kw_only=True):
    status: GpuStatusKind = "ok"
    reason: str | None = None


# --- KPIs ----------------------------------------------------------------------------------------------


class Kpi(Model, frozen=True, kw_only=True):
    """One figure an agent reports about what it achieves: ``latency_p95_ms`` 97 ms at 12:00:03."""

    name: WireKpiName
    value: float
    unit: KpiUnit = "count"
    at: Timestamp  # when it was measured
    kind: KpiKind = "gauge"
    # a counter's increase per second over its recent points, a reset counted as a new start; None for a
    # gauge, or for a counter with one point so far
    rate_per_s: float | None = None

    def __post_init__(self) -> None:
        _require_finite(self.value, "value")
        if self.rate_per_s is not None:
            _require_finite(self.rate_per_s, "rate_per_s")


class KpiSeries(Model, frozen=True, kw_only=True):
    """One agent's history of one KPI, oldest point first: what a trend or a report card is drawn from."""

    agent_id: Identifier
    name: WireKpiName
    unit: KpiUnit = "count"
    kind: KpiKind = "gauge"
    points: tuple[tuple[Timestamp, float], ...] = ()  # (when measured, value)

    def __post_init__(self) -> None:
        for _, value in self.points:
            _require_finite(value, "points")


def _require_finite(value: float, name: str) -> None:
    # msgspec refuses NaN in JSON but not from Python (a TOML inf, a CLI "nan"): a NaN compares false with
    # every threshold, so it would pass every check while meaning nothing. ValueError names the field.
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


# --- agents --------------------------------------------------------------------------------------------


class Agent(Model, frozen=True, kw_only=True):
    id: Identifier
    name: str
    kind: AgentKind = "process"
    state: AgentState = "unknown"
    health: Health = "unknown"
    health_reason: str | None = None
    last_heartbeat: Timestamp | None = None
    pid: Annotated[int, Meta(ge=0)] | None = None
    cpu_percent: Annotated[float, Meta(ge=0)] | None = None  # may exceed 100 on multi-core agents
    rss_bytes: Bytes | None = None
    gpu_mem_bytes: Bytes | None = None
    phase_id: str | None = None
    current_task: str | None = None
    progress: Fraction | None = None
    message: str | None = None
    restarts: Count = 0
    started_at: Timestamp | None = None
    # when ``state`` last changed (None: the backend does not know); a waiting agent waits since then
    state_since: Timestamp | None = None
    labels: dict[str, str] = field(default_factory=dict)
    kpis: tuple[Kpi, ...] = ()  # its latest figure of each KPI it reports, by name

    def kpi(self, name: str) -> Kpi | None:
        """Its latest figure of the KPI ``name``; None when it reports none by that name."""
        for kpi in self.kpis:
            if kpi.name == name:
                return kpi
        return None

    @property
    def dead(self) -> bool:
        """Dead for good, so kept only as history: a Ray actor that Ray reports DEAD (``kind`` "actor" in
        state stopped or failed). Ray never brings a dead actor back (a new one with its name is a new
        actor), so it is not counted in a node's health (:func:`health_count`) and raises no alert. A failed
        or crash-looping process or reporting agent is not dead in this sense: it can be started again, and
        stays a live problem."""
        return self.kind == "actor" and self.state in ("stopped", "failed")


class HealthCount(NamedTuple):
    healthy: int  # alive and healthy
    alive: int  # every agent but the dead
    dead: int


def health_count(agents: Iterable[Agent]) -> HealthCount:
    """How many agents are healthy, of how many alive, and how many are dead: the one rule every count of a
    node's or fleet's health follows ("3/3 alive healthy · 5 dead"). The dead are history
    (:attr:`Agent.dead`): counted apart, never against health. Every other agent counts, whatever its state,
    so a failed or stopped local agent keeps a node below full health until it is dealt with."""
    healthy = alive = dead = 0
    for agent in agents:
        if agent.dead:
            dead += 1
        else:
            alive += 1
            healthy += agent.health == "healthy"
    return HealthCount(healthy, alive, dead)


# --- the plan ------------------------------------------------------------------------------------------


class Criterion(Model, frozen=True, kw_only=True):
    """One success criterion. ``actual`` None is "not measured": such a criterion is never passed, and a
    milestone holding one is never passed either. ``passed`` None with an actual is "not judged yet"."""

    name: str
    target: str
    actual: str | None = None
    passed: bool | None = None
    # the KPI whose live figures decide it (the node fills in actual and passed from them); None for a
    # criterion a person or an agent reports
    kpi: WireKpiName | None = None
    since: Timestamp | None = None  # when its verdict last changed to what it is, where the node knows

    @property
    def measured(self) -> bool:
        return self.actual is not None

    @property
    def verdict(self) -> bool | None:
        """``passed``, except that nothing unmeasured counts as judged, whatever a peer sent."""
        return self.passed if self.measured else None


class Milestone(Model, frozen=True, kw_only=True):
    id: Identifier
    name: str
    status: MilestoneStatus = "pending"
    criteria: tuple[Criterion, ...] = ()


class GateSignoff(Model, frozen=True, kw_only=True):
    """An operator's word on a gate (``fleetdeck gate sign``), shown beside the decision the node computed:
    it records a judgement and is audited, but never overrides the figures."""

    decision: SignedDecision
    operator: str
    at: Timestamp
    reason: str | None = None


class Gate(Model, frozen=True, kw_only=True):
    """A phase's go/no-go gate. The default (pending, no reasons) is what a phase without a gate carries (a
    Ray job has none): a gate a node judges always says why, so the console shows no gate for it.

    ``decision`` is computed by the node from the criteria and no-go triggers the gate names; ``reasons``
    name what decides it ("P95 latency: 162 ms (target < 120 ms)", "No-Go: any agent crash-looping —
    TRIGGERED (coder-03 restarted 6 times)")."""

    decision: GateDecision = "pending"
    reasons: tuple[str, ...] = ()
    since: Timestamp | None = None  # when the computed decision last changed to what it is
    signed: GateSignoff | None = None  # the latest sign-off, if any


class Phase(Model, frozen=True, kw_only=True):
    id: Identifier
    name: str
    order: int
    status: PhaseStatus = "pending"
    progress: Fraction | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    due_at: Timestamp | None = None
    milestones: tuple[Milestone, ...] = ()
    gate: Gate = field(default_factory=Gate)
    # why the phase stands as it does, in the node's words, where its status alone does not say: the cause a
    # failed Ray job ended with ("RuntimeError: boom ..."), how a stopped one was stopped
    status_reason: str | None = None


# --- work ----------------------------------------------------------------------------------------------


class Task(Model, frozen=True, kw_only=True):
    id: Identifier
    kind: str
    target: str
    payload: dict[str, Any] = field(default_factory=dict)
    status: TaskStatus = "queued"
    created_at: Timestamp
    updated_at: Timestamp
    submitted_by: str
    attempts: Count = 0
    result: Any = None
    error: str | None = None


class Checkpoint(Model, frozen=True, kw_only=True):
    id: Identifier
    label: str
    created_at: Timestamp
    created_by: str
    phase_id: str | None = None
    automatic: bool = False
    covers: tuple[str, ...] = ()  # what it captures: agent ids, phase ids, workspaces


class LogRecord(Model, frozen=True, kw_only=True):
    seq: Annotated[int, Meta(ge=0)]  # strictly increasing per node: the resume cursor
    ts: Timestamp
    level: LogLevel
    source: str  # an agent id, or "node"
    message: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def time_fetched(self) -> bool:
        """Whether ``ts`` is when the backend fetched the line, not when it was written: the source gave
        the line no time of its own (a Ray job's plain output). Shown as "at or before" (``≤``)."""
        return self.fields.get(TIME_FIELD) == TIME_FETCHED


#: ``fields[TIME_FIELD] == TIME_FETCHED``: the record's ts is its fetch time (:attr:`LogRecord.time_fetched`)
TIME_FIELD = "time"
TIME_FETCHED = "fetched"


class AuditEntry(Model, frozen=True, kw_only=True):
    seq: Annotated[int, Meta(ge=0)]
    ts: Timestamp
    operator: str
    action: str
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    outcome: AuditOutcome
    detail: str | None = None
    request_id: str | None = None


# --- requests ------------------------------------------------------------------------------------------


class Target(Model, frozen=True, kw_only=True):
    """What an action is aimed at: an agent, a phase or a task."""

    kind: TargetKind
    id: Identifier

    @classmethod
    def parse(cls, text: str) -> Target:
        """Read ``agent:ID``, ``phase:ID``, ``task:ID`` or a bare agent id."""
        kind, sep, ident = text.partition(":")
        if not sep:
            return cls(kind="agent", id=text)
        if kind not in ("agent", "phase", "task"):
            raise ValueError(f"unknown target kind {kind!r} in {text!r}: use agent:ID, phase:ID or task:ID")
        if not ident:
            raise ValueError(f"target {text!r} has no id after the colon")
        return cls(kind=kind, id=ident)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


class DispatchRequest(Model, frozen=True, kw_only=True):
    """Work to hand out: a payload for an existing agent, or a command to start as a new agent."""

    agent_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    name: str | None = None
    kind: str = "task"

    def __post_init__(self) -> None:
        if (self.agent_id is None) == (self.command is None):
            raise ValueError("a dispatch names either an agent_id (with a payload) or a command, not both")
        if self.command is not None and not self.command:
            raise ValueError("a dispatched command must not be empty")


# --- the snapshot --------------------------------------------------------------------------------------


class NodeSnapshot(Model, frozen=True, kw_only=True):
    node: NodeInfo
    observed_at: Timestamp
    system: SystemMetrics = field(default_factory=SystemMetrics)
    gpus: tuple[Gpu, ...] = ()
    gpu_status: GpuStatus = field(default_factory=GpuStatus)
    agents: tuple[Agent, ...] = ()
    phases: tuple[Phase, ...] = ()
    tasks: tuple[Task, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()


# --- JSON helpers --------------------------------------------------------------------------------------

T = TypeVar("T")

_encoder = msgspec.json.Encoder(order="deterministic")


class ModelError(ValueError):
    """A record that does not match the wire model; the message names the field and the problem."""


def to_json(value: Any) -> bytes:
    """Encode any wire value (or list of them) as JSON with a stable key order."""
    return _encoder.encode(value)


def from_json(data: bytes | str, type_: type[T]) -> T:
    """Decode and validate JSON into ``type_``; raise :class:`ModelError` naming the bad field."""
    try:
        return msgspec.json.decode(data, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ModelError(f"invalid {_type_name(type_)}: {exc}") from None
    except ValueError as exc:  # raised by a __post_init__ check
        raise ModelError(f"invalid {_type_name(type_)}: {exc}") from None


def to_builtins(value: Any) -> Any:
    """Turn a wire value into plain dicts/lists (for TOML, templates, or --json output)."""
    return msgspec.to_builtins(value, order="deterministic")


def from_builtins(data: Any, type_: type[T]) -> T:
    """Validate plain Python data (e.g. parsed TOML) into ``type_``; raise :class:`ModelError`."""
    try:
        return msgspec.convert(data, type=type_)
    except msgspec.ValidationError as exc:
        raise ModelError(f"invalid {_type_name(type_)}: {exc}") from None
    except ValueError as exc:
        raise ModelError(f"invalid {_type_name(type_)}: {exc}") from None


def _type_name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or str(type_)
