"""RayBackend: a whole Ray cluster as one fleetdeck node, through its dashboard's HTTP API (no Ray import).

``open()`` makes one pooled connection and asks ``/api/version`` (an unsupported Ray is refused in words)
and ``/api/authentication_mode``. A snapshot reads the machines (``/api/v0/nodes``, ``/nodes?view=summary``),
the actors (``/api/v0/actors``) and the jobs (``/api/jobs/``) at once, and every ``task_figures_s`` the
task list (``/api/v0/tasks``) for each actor's KPIs; see ``machines.py``, ``actors.py``, ``jobs.py`` and
``task_figures.py`` for how each becomes the wire model, ``actions.py`` for what the keys do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from backends.base import Backend
from backends.errors import BackendError, Forbidden, Unreachable
from backends.model import (
    AuditEntry,
    Checkpoint,
    DispatchRequest,
    GpuStatus,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    Target,
    Task,
)
from backends.plugin import NodeSettings, Thresholds

from . import jobs as job_model
from .actions import ROLLBACK_WORDS, RayActions
from .actors import agents_from, internal_actor, machine_resources
from .client import RayClient, Sleep
from .cluster_logs import ClusterLogs
from .machines import cluster_from, nodes_from, summaries_from
from .settings import RayOptions, RaySettings, settings_from_config
from .state import RayState
from .task_figures import TASK_PARAMS, TASKS_PATH, TaskFigures
from .version import check_version

ACTIONS = frozenset({"dispatch", "stop", "checkpoint", "rollback"})
PAUSE_WORDS = "Ray has no pause/resume call: a job or an actor can only be stopped and submitted again"
ACTOR_LIMIT = 10_000  # the state API answers 100 actors unless asked for more


class RayBackend(Backend):
    name = "ray"

    def __init__(
        self, settings: RaySettings, *, clock: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._client = RayClient(settings, sleep=sleep)
        self._state = RayState(settings.state_dir)
        self._actions = RayActions(self._client, self._state, node=settings.node_name, clock=clock)
        self._logs = ClusterLogs(
            self._client,
            state_dir=settings.state_dir,
            clock=clock,
            sleep=sleep,
            poll_s=settings.log_poll_s,
            max_jobs=settings.max_jobs,
            max_streams=settings.max_log_streams,
            url=settings.url,
        )
        self._figures = TaskFigures(settings.task_figures_s)
        self._opened = False
        self._open_lock = asyncio.Lock()  # the poll and log workers may both open first
        self._version: str | None = None
        self._hostname: str | None = None
        self._labels: dict[str, str] = {"url": settings.url, "checkpoint": ROLLBACK_WORDS}
        self.capabilities = frozenset({"logs", "audit"} | (set() if settings.read_only else ACTIONS))
        if settings.read_only:
            self.read_only_reason = f"node {settings.node_name} is configured read_only"

    Options = RayOptions

    @classmethod
    def from_config(
        cls,
        node: NodeSettings[RayOptions],
        *,
        clock: Callable[[], float],
        thresholds: Thresholds | None = None,
    ) -> RayBackend:
        """The keys in :class:`~backends.ray.settings.RayOptions`. Ray judges no agent health: no
        thresholds here."""
        return cls(settings_from_config(node), clock=clock)

    def __repr__(self) -> str:
        return f"RayBackend(node={self.settings.node_name!r}, url={self.settings.url!r})"

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(
            id=self.settings.node_name,
            name=self.settings.node_name,
            backend=self.name,
            version=self._version,
            hostname=self._hostname,
            environment=self.settings.environment,  # type: ignore[arg-type]
            labels=dict(self._labels),
            read_only=self.settings.read_only,
            capabilities=self.capabilities,  # type: ignore[arg-type]
        )

    def capability_note(self, capability: str) -> str | None:
        if capability in ("pause", "resume"):
            return PAUSE_WORDS
        if capability in ACTIONS and self.read_only_reason:
            return self.read_only_reason
        return None

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:
            if self._opened:
                return
            self._client.start()
            version = await self._client.get_json("/api/version")
            self._version = check_version(version, self.settings)
            mode = await self._client.get_json("/api/authentication_mode")
            auth = str(mode.get("authentication_mode") or "unknown") if isinstance(mode, dict) else "unknown"
            self._labels["auth"] = auth
            self._labels["dashboard api"] = str(version.get("version")) if isinstance(version, dict) else "?"
            self._opened = True

    async def close(self) -> None:
        self._opened = False
        await self._logs.close()
        await self._client.aclose()

    # --- reading -----------------------------------------------------------------------------------------

    async def snapshot(self) -> NodeSnapshot:
        await self.open()
        get = self._client.get_json
        asked_at = self.clock()
        count_tasks = self._figures.due(asked_at)  # one more request, every task_figures_s at most
        nodes_raw, actors_raw, jobs_raw, summary_raw, tasks_raw = await asyncio.gather(
            get("/api/v0/nodes"),
            get("/api/v0/actors", {"detail": "1", "limit": ACTOR_LIMIT}),
            get("/api/jobs/"),
            self._optional(get("/nodes", {"view": "summary"})),
            self._figures_call(get(TASKS_PATH, TASK_PARAMS)) if count_tasks else _nothing(),
        )
        nodes = nodes_from(nodes_raw)
        actors = nodes_from(actors_raw)  # the same state-API envelope
        if count_tasks:
            if isinstance(tasks_raw, BackendError):
                self._figures.failed(str(tasks_raw), at=asked_at)
            else:
                self._figures.update(
                    tasks_raw, [str(a["actor_id"]) for a in actors if a.get("actor_id")], asked_at
                )
        if self._figures.note:
            self._labels["task figures"] = self._figures.note
        else:
            self._labels.pop("task figures", None)
        listed = [j for j in jobs_raw if isinstance(j, dict)] if isinstance(jobs_raw, list) else []
        jobs = job_model.ordered(listed, self.settings.max_jobs)
        agent_of_pid = {
            int(a["pid"]): str(a["actor_id"])
            for a in actors
            if a.get("state") == "ALIVE" and a.get("pid") and not internal_actor(a)
        }
        summaries = summaries_from(summary_raw) if not isinstance(summary_raw, BackendError) else []
        cluster = cluster_from(nodes, summaries, agent_of_pid=agent_of_pid)
        self._hostname = cluster.hostname
        self._labels.update(cluster.labels)
        phase_of_job = {str(j["job_id"]): job_model.job_id(j) or "" for j in listed if j.get("job_id")}
        agents = agents_from(
            actors,
            ip_of_node={str(n.get("node_id")): str(n.get("node_ip")) for n in nodes if n.get("node_ip")},
            phase_of_job=phase_of_job,
            gpu_bytes_of_pid=cluster.gpu_pids,
            machines=machine_resources(nodes),
            kpis_of_actor=self._figures.kpis_of(),
        )
        rolled_back = await self._state.rolled_back()
        now = self.clock()
        submitted = [j for j in jobs if j.get("type", "SUBMISSION") == "SUBMISSION"]
        return NodeSnapshot(
            node=self.info,
            observed_at=now,
            system=cluster.system,
            gpus=cluster.gpus,
            gpu_status=_gpu_status(summary_raw, summaries),
            agents=tuple(agents),
            phases=tuple(job_model.phase_of(j, order) for order, j in enumerate(jobs, start=1)),
            tasks=tuple(
                job_model.task_of(j, now=now, rolled_back=job_model.job_id(j) in rolled_back)
                for j in submitted
            ),
            checkpoints=tuple(await self._state.checkpoints()),
        )

    @staticmethod
    async def _optional(call: Any) -> Any:
        """The summary only adds host and GPU figures: its failure must not hide the actors and jobs."""
        try:
            return await call
        except Unreachable as exc:
            return exc

    @staticmethod
    async def _figures_call(call: Any) -> Any:
        """The task counts only add KPIs: any failure of theirs leaves the snapshot whole, without them."""
        try:
            return await call
        except BackendError as exc:
            return exc

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        await self.open()
        async for record in self._logs.records(since_seq, follow):
            yield record

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        return await self._state.audit(since_seq)

    async def rollback_preview(self, checkpoint_id: str) -> list[str]:
        await self.open()
        return await self._actions.preview(checkpoint_id)

    # --- actions -----------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only_reason:
            raise Forbidden(self.read_only_reason)

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        self._writable()
        await self.open()
        return await self._actions.dispatch(request, operator, reason)

    async def pause(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        raise self._unsupported_pause()

    async def resume(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        raise self._unsupported_pause()

    def _unsupported_pause(self) -> BackendError:
        from backends.errors import Unsupported

        return Unsupported(PAUSE_WORDS)

    async def stop(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        self._writable()
        await self.open()
        await self._actions.stop(target, operator, reason)

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        self._writable()
        await self.open()
        return await self._actions.checkpoint(label, operator, reason)

    async def rollback(self, checkpoint_id: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        self._writable()
        await self.open()
        return await self._actions.rollback(checkpoint_id, operator, reason)


async def _nothing() -> None:
    return None


def _gpu_status(summary_raw: Any, summaries: list[dict[str, Any]]) -> GpuStatus:
    if isinstance(summary_raw, BackendError):
        return GpuStatus(status="error", reason=f"the node summary is unavailable: {summary_raw}")
    if any(isinstance(s.get("gpus"), list) and s["gpus"] for s in summaries):
        return GpuStatus()
    return GpuStatus(status="no_driver", reason="no machine in the Ray cluster reports a GPU")
