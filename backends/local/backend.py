"""LocalBackend: this machine as a fleetdeck node, with no daemon.

Host metrics come from psutil, GPUs from NVML (initialised once), agents, plan, tasks, checkpoints, logs and
the audit trail from the embedded SQLite store that supervisors (``fleetdeck run``) and reporting agents
write into. Every store and sampler call runs in a worker thread, so a slow disk never blocks the console.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Collection
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from backends.base import Backend
from backends.errors import BackendError, Invalid
from backends.model import (
    ALL_CAPABILITIES,
    Agent,
    AuditEntry,
    Checkpoint,
    DispatchRequest,
    Environment,
    Gate,
    Gpu,
    KpiSeries,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    SignedDecision,
    Target,
    Task,
)
from backends.package_version import package_version
from backends.plugin import BackendOptions, NodeSettings, Thresholds

from . import read_only
from .actions import Actions
from .metrics import HostSampler, ancestors
from .nvml import GpuSampler
from .store import Store, StoreError, default_state_dir
from .store_health import HEALTH_CHECKS, AgentRecord, HealthThresholds, judges_supervisor, pid_alive

T = TypeVar("T")
# How often a follower looks for new lines: an idle look is one indexed read (tens of microseconds), and
# the wait is most of a line's delay to the console and to the node server's SSE clients.
LOG_POLL_S = 0.1
LOG_PAGE = 5_000


class LocalOptions(BackendOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """This machine's keys: ``state_dir``, and in ``options`` ``state_dir`` or ``python`` (the
    interpreter supervisors run under; default: the console's)."""

    #: the node's store and git scratch (default ``$XDG_STATE_HOME/fleetdeck/node``)
    state_dir: Path | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class LocalBackend(Backend):
    name = "local"
    Options = LocalOptions
    capabilities = ALL_CAPABILITIES

    def __init__(
        self,
        *,
        state_dir: Path | str | None = None,
        node_name: str = "local",
        environment: Environment = "dev",
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        thresholds: HealthThresholds | None = None,
        nvml_module: Any = None,
        python: str = sys.executable,
    ) -> None:
        self.state_dir = Path(state_dir).expanduser() if state_dir else default_state_dir()
        self.clock = clock
        self.thresholds = thresholds or HealthThresholds()
        self.read_only = read_only
        self._nvml_module = nvml_module
        self._python = python
        self._store: Store | None = None
        self._host: HostSampler | None = None
        self._gpus: GpuSampler | None = None
        self._actions: Actions | None = None
        self._info = NodeInfo(
            id=node_name,
            name=node_name,
            backend=self.name,
            version=package_version(),
            hostname=socket.gethostname(),
            environment=environment,
            labels={"state_dir": str(self.state_dir)},
            read_only=read_only,
            capabilities=frozenset(ALL_CAPABILITIES),  # type: ignore[arg-type]
            health_checks=HEALTH_CHECKS,
        )

    @classmethod
    def from_config(
        cls,
        node: NodeSettings[LocalOptions],
        *,
        clock: Callable[[], float],
        thresholds: Thresholds | None = None,
    ) -> LocalBackend:
        """The node's ``name``, ``environment`` and ``read_only``, and the keys of :class:`LocalOptions`;
        ``thresholds`` judge the agents' heartbeats and error rates."""
        entry = node.backend_options
        options = dict(entry.options or {})
        state_dir = entry.state_dir or options.pop("state_dir", None)
        unknown = set(options) - {"python"}
        if unknown:
            raise Invalid(f"unknown option(s) for the local backend: {', '.join(sorted(unknown))}")
        return cls(
            state_dir=state_dir,
            node_name=node.name,
            environment=node.environment,
            read_only=node.read_only,
            clock=clock,
            python=options.get("python", sys.executable),
            thresholds=health_thresholds(thresholds),
        )

    @property
    def info(self) -> NodeInfo:
        return self._info

    @property
    def store(self) -> Store:
        if self._store is None:
            raise StoreError("the local node is not open")
        return self._store

    # --- lifecycle -------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._store is not None:
            return
        self._store = await asyncio.to_thread(Store, self.state_dir, clock=self.clock)
        self._host = HostSampler(self.state_dir)
        self._gpus = GpuSampler(self._nvml_module)
        self._actions = Actions(
            self._store, self.state_dir, node=self._info.name, read_only=self.read_only, python=self._python
        )

    async def close(self) -> None:
        if self._gpus is not None:
            self._gpus.close()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        self._store = self._gpus = self._host = self._actions = None

    async def _run(self, work: Callable[[], T]) -> T:
        await self.open()
        return await asyncio.to_thread(work)

    # --- reading ---------------------------------------------------------------------------------------

    async def snapshot(self) -> NodeSnapshot:
        return await self._run(self._snapshot)

    def _snapshot(self) -> NodeSnapshot:
        assert self._host is not None and self._gpus is not None
        # a read-only node records no verdict history: it must not write (read_only.py)
        read = self.store.snapshot_read(self.thresholds, record_verdicts=not self.read_only)
        agents = without_dead_supervisors(read.agents, read.records)
        system = self._host.sample()
        owners = {a.pid: a.id for a in agents if a.pid is not None}
        gpus, gpu_status = self._gpus.sample(lambda pid: owner_of(pid, owners))
        return NodeSnapshot(
            node=self._info,
            observed_at=self.clock(),
            system=system,
            gpus=gpus,
            gpu_status=gpu_status,
            agents=tuple(with_gpu_memory(agents, gpus)),
            phases=tuple(read.phases),
            tasks=tuple(read.tasks),
            checkpoints=tuple(read.checkpoints),
        )

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        await self.open()
        cursor = since_seq
        while True:
            page = await self._run(partial(self.store.logs_since, cursor, limit=LOG_PAGE))
            for record in page:
                yield record
                cursor = record.seq
            if len(page) == LOG_PAGE:
                continue  # more waiting: read on without sleeping
            if not follow:
                return
            await asyncio.sleep(LOG_POLL_S)

    async def rollback_preview(self, checkpoint_id: str) -> list[str]:
        return await self._run(lambda: self._ops().rollback_preview(checkpoint_id))

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        return await self._run(lambda: self.store.audit_since(since_seq))

    async def kpi_history(
        self, since: float, *, names: Collection[str] | None = None, agent_ids: Collection[str] | None = None
    ) -> list[KpiSeries]:
        """The store's KPI points since ``since`` (a read: a read-only node keeps it)."""
        return await self._run(lambda: self.store.kpi_history(since, names, agent_ids))

    # --- actions ---------------------------------------------------------------------------------------

    def _ops(self) -> Actions:
        assert self._actions is not None
        return self._actions

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        return await self._run(lambda: self._ops().dispatch(request, operator, reason))

    async def pause(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        await self._run(lambda: self._ops().control("pause", target, operator, reason))

    async def resume(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        await self._run(lambda: self._ops().control("resume", target, operator, reason))

    async def stop(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        await self._run(lambda: self._ops().control("stop", target, operator, reason))

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        if "\x00" in label:  # the label is each workspace's commit message, and git refuses a NUL there
            raise Invalid("label: must not contain NUL (\\x00); any other text is kept as written")
        return await self._run(lambda: self._ops().checkpoint(label, operator, reason))

    async def rollback(self, checkpoint_id: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        return await self._run(lambda: self._ops().rollback(checkpoint_id, operator, reason))

    async def sign_gate(
        self, phase_id: str, decision: SignedDecision, *, operator: str, reason: str | None = None
    ) -> Gate:
        target = f"phase:{phase_id}"

        def sign() -> Gate:
            if self.read_only:
                read_only.deny(
                    self.store, self._info.name, operator, "gate.sign", target, reason, decision=decision
                )
            try:
                return self.store.sign_gate(phase_id, decision, operator, reason)
            except BackendError as exc:
                self.store.audit(
                    operator, "gate.sign", target, outcome="failed", params={"decision": decision},
                    reason=reason, detail=str(exc),
                )  # fmt: skip
                raise

        return await self._run(sign)

    async def interrupted_rollback(self) -> str | None:
        return await self._run(lambda: self._ops().interrupted_rollback())

    async def recover_rollback(self, *, operator: str, reason: str | None = None) -> Checkpoint | None:
        return await self._run(lambda: self._ops().recover_rollback(operator, reason))


def without_dead_supervisors(agents: list[Agent], records: list[AgentRecord]) -> list[Agent]:
    """Show an agent whose supervisor died (kill -9, OOM) as failed: its row still says running, and
    nothing is left to change that. Its health already names the supervisor; its pid stays visible, since
    the process may still run unsupervised."""
    orphaned = {
        r.id
        for r in records
        if judges_supervisor(r) and r.supervisor_pid is not None and not pid_alive(r.supervisor_pid)
    }
    if not orphaned:
        return agents
    gone = ("stopped", "failed")
    return [
        msgspec.structs.replace(a, state="failed") if a.id in orphaned and a.state not in gone else a
        for a in agents
    ]


def health_thresholds(config_thresholds: Thresholds | None) -> HealthThresholds | None:
    """The config's heartbeat, telemetry and error-rate thresholds, in the store's terms."""
    if config_thresholds is None:
        return None
    warn_s, crit_s = config_thresholds["heartbeat_stale_s"]
    warn_t, crit_t = config_thresholds["telemetry_stale_s"]
    warn_n, crit_n = config_thresholds["error_log_rate_per_min"]
    return HealthThresholds(
        heartbeat_stale_s=(warn_s, crit_s),
        telemetry_stale_s=(warn_t, crit_t),
        error_rate_per_min=(warn_n, crit_n),
    )


def owner_of(pid: int, owners: dict[int, str]) -> str | None:
    """The agent that owns ``pid``: the agent whose pid is ``pid`` or one of its ancestors."""
    for candidate in ancestors(pid):
        if candidate in owners:
            return owners[candidate]
    return None


def with_gpu_memory(agents: list[Agent], gpus: tuple[Gpu, ...]) -> list[Agent]:
    """Fill each agent's GPU memory from the GPU processes joined to it (None when it has none known)."""
    used: dict[str, int] = {}
    for gpu in gpus:
        for process in gpu.processes:
            if process.agent_id is not None and process.used_memory is not None:
                used[process.agent_id] = used.get(process.agent_id, 0) + process.used_memory
    if not used:
        return agents
    return [msgspec.structs.replace(a, gpu_mem_bytes=used[a.id]) if a.id in used else a for a in agents]
