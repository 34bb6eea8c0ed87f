"""DemoBackend: one simulated node that looks and behaves like a real one.

The node's readings are computed from (seed, time) by ``world.py`` and ``plan.py``; operator actions change
only the small ``OperatorState`` (``state.py``), which checkpoints copy and rollbacks restore. Every action,
allowed or not, lands in the audit trail. See ``fleet.py`` for building a whole fleet.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from backends.base import Backend
from backends.errors import BackendError, Forbidden, Invalid
from backends.model import (
    ALL_CAPABILITIES,
    Agent,
    AuditEntry,
    AuditOutcome,
    Checkpoint,
    DispatchRequest,
    Environment,
    Gate,
    KpiSeries,
    LogLevel,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    Phase,
    SignedDecision,
    Target,
    Task,
)
from backends.plugin import BackendOptions, NodeSettings, Thresholds

from .catalog import node_spec
from .history import seed_history
from .judging import Judge
from .kpi_history import kpi_history
from .logs import LogStream
from .operations import Operations
from .plan import Plan
from .roster import build_roster, pick_trouble
from .state import Hold, OperatorState, stronger
from .world import Busy, World

VERSION = "0.1.0"
DEFAULT_SEED = 7
HOUR = 3600.0
# Agents per unit of node weight: the default three nodes (weights 1.5, 1.25, 0.75) get 34 + 29 + 17 = 80.
DEFAULT_AGENTS_PER_WEIGHT = 80 / 3.5

Clock = Callable[[], float]
T = TypeVar("T")

# The demo-only keys a config's ``options`` table may hold, and the types they take.
_CONFIG_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "node_index": int,
    "agents": int,
    "genesis": (int, float),
}


class DemoOptions(BackendOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A demo node's keys: ``seed``, and in ``options`` the keys of ``_CONFIG_OPTIONS``: ``node_index``
    (which generated node to be), ``agents`` (how many) and ``genesis`` (the epoch its plan starts at)."""

    #: fixes everything about the simulated fleet
    seed: int = DEFAULT_SEED
    #: accepted and unused (the demo keeps nothing on disk), as configs written when every node took one
    #: still name it
    state_dir: Path | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)


def genesis_for(now: float) -> float:
    """The fleet's reference time: ``now`` floored to the hour, so every process started within the same
    hour (the console, ``fleetdeck status --demo``, a snapshot test) sees the same plan and log history."""
    return math.floor(now / HOUR) * HOUR


class DemoBackend(Backend):
    """One node of the demo fleet.

    ``seed`` and ``node_index`` fix everything about the node (name, hardware, agents, trouble); ``agents``
    is the number of agents on this node (default: its share of an 80-agent, 3-node fleet). ``clock``
    (default ``time.time``) is read on every call; ``genesis`` (default: the clock at construction floored
    to the hour, see :func:`genesis_for`) anchors the plan and the log history, which starts
    ``BACKLOG_S`` = 600 s before it. For a given (seed, node_index, agents, genesis) and clock reading, the
    snapshot and the log records are always the same, whatever was read before, until an operator acts.
    ``name`` and ``environment`` override the generated ones (for a config's ``[[nodes]]`` section);
    ``read_only`` makes every action fail with :class:`~backends.errors.Forbidden`.
    """

    name = "demo"
    Options = DemoOptions
    capabilities = ALL_CAPABILITIES

    #: how often ``logs(follow=True)`` looks at the clock for new lines
    poll_interval_s = 0.2

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        node_index: int = 0,
        agents: int | None = None,
        clock: Clock | None = None,
        genesis: float | None = None,
        read_only: bool = False,
        name: str | None = None,
        environment: Environment | None = None,
    ) -> None:
        if node_index < 0:
            raise Invalid(f"node_index must be 0 or more, not {node_index}")
        if agents is not None and agents < 0:
            raise Invalid(f"agents must be 0 or more, not {agents}")
        self._clock: Clock = clock or time.time
        spec = node_spec(seed, node_index)
        if name or environment:
            spec = replace(spec, name=name or spec.name, environment=environment or spec.environment)
        self.seed = seed
        self.spec = spec
        self.genesis = float(genesis) if genesis is not None else genesis_for(self._clock())
        self.read_only = read_only
        count = agents if agents is not None else round(DEFAULT_AGENTS_PER_WEIGHT * spec.agent_weight)
        roster = build_roster(seed, spec, count, self.genesis)
        self._world = World(seed, spec, roster, pick_trouble(seed, spec, roster, self.genesis), self.genesis)
        self._plan = Plan(seed, self.genesis)
        self._judge = Judge(self._world)
        self._logs = LogStream(seed, self._world)
        history = seed_history(roster, self.genesis, self._covers_of(roster_ids=[a.id for a in roster]))
        self._ops = Operations(self, history)
        self._audit: list[AuditEntry] = history.audit
        self._info = NodeInfo(
            id=spec.name,
            name=spec.name,
            backend=self.name,
            version=VERSION,
            hostname=spec.hostname,
            environment=spec.environment,
            labels={
                "region": spec.region,
                "gpu": spec.gpu_model.short if spec.gpu_model and spec.gpu_count else "none",
                "gpus": str(spec.gpu_count),
            },
            read_only=read_only,
            capabilities=frozenset(ALL_CAPABILITIES),  # type: ignore[arg-type]
        )

    @classmethod
    def from_config(
        cls,
        node: NodeSettings[DemoOptions],
        *,
        clock: Callable[[], float],
        thresholds: Thresholds | None = None,
    ) -> DemoBackend:
        """The node's ``name``, ``environment`` and ``read_only``, and the keys of :class:`DemoOptions`.
        The demo's health is simulated: no thresholds here."""
        entry = node.backend_options
        options = dict(entry.options or {})
        unknown = sorted(set(options) - set(_CONFIG_OPTIONS))
        if unknown:
            raise Invalid(f"unknown demo option {unknown[0]!r} (known: {', '.join(_CONFIG_OPTIONS)})")
        for key, value in options.items():
            if not isinstance(value, _CONFIG_OPTIONS[key]) or isinstance(value, bool):
                raise Invalid(f"demo option {key!r} must be a number, not {value!r}")
        genesis = options.get("genesis")
        return cls(
            seed=entry.seed,
            node_index=options.get("node_index", 0),
            agents=options.get("agents"),
            clock=clock,
            genesis=None if genesis is None else float(genesis),
            read_only=node.read_only,
            name=node.name,
            environment=node.environment,
        )

    def __repr__(self) -> str:
        return f"DemoBackend(name={self.spec.name!r}, seed={self.seed}, agents={len(self._world.roster)})"

    # --- reading -----------------------------------------------------------------------------------------

    @property
    def info(self) -> NodeInfo:
        return self._info

    @property
    def node_name(self) -> str:
        return self.spec.name

    @property
    def world(self) -> World:
        return self._world

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def state(self) -> OperatorState:
        return self._ops.state

    def now(self) -> float:
        return self._clock()

    async def snapshot(self) -> NodeSnapshot:
        return self.snapshot_at(self._clock())

    def snapshot_at(self, t: float) -> NodeSnapshot:
        """The snapshot at time ``t``; synchronous, for benchmarks and the CLI's one-shot commands."""
        agents, gpu_states = self.agents_at(t)
        state = self._ops.state
        return NodeSnapshot(
            node=self._info,
            observed_at=t,
            system=self._world.system_at(t),
            gpus=self._world.gpus_at(t, gpu_states),
            gpu_status=self._world.gpu_status,
            agents=tuple(agents),
            phases=self.phases_at(t),
            tasks=tuple(record.to_task(t) for record in state.tasks.values()),
            checkpoints=tuple(record.checkpoint for record in self._ops.checkpoints),
        )

    def agents_at(self, t: float) -> tuple[list[Agent], dict[str, str]]:
        state = self._ops.state
        busy = self._busy_at(t)
        agents, gpu_states = self._world.agents_at(t, state.agent_holds, state.phase_holds, busy)
        for record in state.commands.values():
            agents.append(
                self._world.command_agent_at(record, t, state.agent_holds.get(record.id), busy.get(record.id))
            )
        return agents, gpu_states

    def _busy_at(self, t: float) -> dict[str, Busy]:
        """Agents running a dispatched task show that task instead of their simulated work."""
        busy: dict[str, Busy] = {}
        for record in self._ops.state.tasks.values():
            if record.kind == "command" or record.final is not None:
                continue
            progress = record.progress_at(t)
            if progress is not None:
                busy[record.agent_id] = Busy(
                    record.id, f"running {record.kind} {record.id} for {record.submitted_by}", progress
                )
        return busy

    def phases_at(self, t: float) -> tuple[Phase, ...]:
        state = self._ops.state
        holds, signoffs = state.phase_holds, self._ops.signoffs
        phases = self._plan.phases_at(t, self._judge.judge(t, self.agent_holds()))
        if not holds and not signoffs:
            return phases
        out: list[Phase] = []
        for phase in phases:
            signed = signoffs.get(phase.id)
            if signed is not None:
                gate = msgspec.structs.replace(phase.gate, signed=signed)
                phase = msgspec.structs.replace(phase, gate=gate)
            hold = holds.get(phase.id)
            if hold is None:
                out.append(phase)
            elif hold.kind == "paused":
                out.append(msgspec.structs.replace(phase, status="paused"))
            else:
                gate = msgspec.structs.replace(
                    phase.gate, decision="no-go", reasons=(hold.describe(), *phase.gate.reasons)
                )
                out.append(msgspec.structs.replace(phase, status="blocked", gate=gate))
        return tuple(out)

    def agent_holds(self) -> dict[str, Hold]:
        """The hold each simulated agent is under, its own or its phase's (the stronger one)."""
        state = self._ops.state
        if not state.agent_holds and not state.phase_holds:
            return {}
        holds: dict[str, Hold] = {}
        for spec in self._world.roster:
            via = state.phase_holds.get(spec.phase_id) if spec.phase_id is not None else None
            hold = stronger(state.agent_holds.get(spec.id), via)
            if hold is not None:
                holds[spec.id] = hold
        return holds

    async def kpi_history(
        self, since: float, *, names: Collection[str] | None = None, agent_ids: Collection[str] | None = None
    ) -> list[KpiSeries]:
        return self.kpi_history_at(self._clock(), since, names=names, agent_ids=agent_ids)

    def kpi_history_at(
        self,
        now: float,
        since: float,
        *,
        names: Collection[str] | None = None,
        agent_ids: Collection[str] | None = None,
    ) -> list[KpiSeries]:
        """The KPI history as of ``now``, synchronously: it ends on each agent's figure at ``now``."""
        if not math.isfinite(since):
            raise Invalid(f"since must be a finite time, not {since!r}")
        agents, _ = self.agents_at(now)
        latest = {agent.id: agent for agent in agents}
        return kpi_history(
            self._world, latest, self.agent_holds(), since, now, names=names, agent_ids=agent_ids
        )

    def _covers_of(self, roster_ids: list[str]) -> tuple[str, ...]:
        phase_ids = tuple(f"phase:{ident}" for ident in self._plan.open_phase_ids())
        return phase_ids + tuple(f"agent:{agent_id}" for agent_id in roster_ids)

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        cursor, read_before = since_seq, None
        while True:
            state, now = self._ops.state, self._clock()
            for record in self._logs.records(cursor, now, state.agent_holds, state.phase_holds, read_before):
                yield record
                cursor = record.seq
            if not follow:
                return
            read_before = math.floor(now)  # every second before this one is complete and now read
            await asyncio.sleep(self.poll_interval_s)

    def log_records(self, since_seq: int = 0, now: float | None = None) -> list[LogRecord]:
        """The retained records after ``since_seq`` as of ``now`` (default: the clock), synchronously."""
        state = self._ops.state
        t = self._clock() if now is None else now
        return self._logs.records(since_seq, t, state.agent_holds, state.phase_holds)

    def write_log(
        self, ts: float, level: LogLevel, source: str, message: str, fields: dict[str, Any] | None = None
    ) -> None:
        """Echo an operator action into the node's log, as a real orchestrator would."""
        self._logs.append(ts, level, source, message, fields)

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        return [entry for entry in self._audit if entry.seq > since_seq]

    # --- actions -----------------------------------------------------------------------------------------

    def _act(
        self,
        action: str,
        target: str | None,
        params: dict[str, Any],
        operator: str,
        reason: str | None,
        run: Callable[[float], tuple[T, str]],
    ) -> T:
        """Run one action at the current clock reading and audit it, whatever the outcome."""
        t = self._clock()
        if self.read_only:
            error: BackendError = Forbidden(f"node {self.spec.name} is read-only")
            self._record(t, operator, action, target, params, reason, "denied", str(error))
            raise error
        try:
            result, detail = run(t)
        except BackendError as exc:
            outcome: AuditOutcome = "denied" if isinstance(exc, Forbidden) else "failed"
            self._record(t, operator, action, target, params, reason, outcome, str(exc))
            raise
        self._record(t, operator, action, target, params, reason, "ok", detail)
        return result

    def _record(
        self,
        t: float,
        operator: str,
        action: str,
        target: str | None,
        params: dict[str, Any],
        reason: str | None,
        outcome: AuditOutcome,
        detail: str,
    ) -> None:
        seq = self._audit[-1].seq + 1 if self._audit else 1
        self._audit.append(
            AuditEntry(
                seq=seq,
                ts=t,
                operator=operator,
                action=action,
                target=target,
                params=params,
                reason=reason,
                outcome=outcome,
                detail=detail,
                request_id=f"{self.spec.name}-{seq}",
            )
        )

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        if request.command is not None:
            target = None
            params: dict[str, Any] = {
                "command": list(request.command),
                "name": request.name,
                "payload": request.payload,
            }
        else:
            target = f"agent:{request.agent_id}"
            params = {"agent_id": request.agent_id, "kind": request.kind, "payload": request.payload}
        return self._act(
            "dispatch",
            target,
            params,
            operator,
            reason,
            lambda t: self._ops.dispatch(request, operator, reason, t),
        )

    async def pause(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        self._act(
            "pause",
            str(target),
            {},
            operator,
            reason,
            lambda t: self._ops.hold(target, "paused", operator, reason, t),
        )

    async def resume(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        self._act(
            "resume",
            str(target),
            {},
            operator,
            reason,
            lambda t: self._ops.resume(target, operator, reason, t),
        )

    async def stop(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        self._act(
            "stop",
            str(target),
            {},
            operator,
            reason,
            lambda t: self._ops.hold(target, "stopped", operator, reason, t),
        )

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        return self._act(
            "checkpoint",
            None,
            {"label": label},
            operator,
            reason,
            lambda t: self._ops.checkpoint(label, operator, t, automatic=False),
        )

    async def rollback(self, checkpoint_id: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        return self._act(
            "rollback",
            f"checkpoint:{checkpoint_id}",
            {"checkpoint_id": checkpoint_id},
            operator,
            reason,
            lambda t: self._ops.rollback(checkpoint_id, operator, reason, t),
        )

    async def sign_gate(
        self, phase_id: str, decision: SignedDecision, *, operator: str, reason: str | None = None
    ) -> Gate:
        return self._act(
            "sign_gate",
            f"phase:{phase_id}",
            {"decision": decision},
            operator,
            reason,
            lambda t: self._ops.sign_gate(phase_id, decision, operator, reason, t),
        )
