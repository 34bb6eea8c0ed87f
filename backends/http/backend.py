"""HttpBackend: a remote node served by ``fleetdeck node serve``, through ``backends.node_api``.

``open()`` makes one pooled connection and asks the node who it is (``/v1/info``) and who it takes us for
(``/v1/whoami``); ``info`` then is the node's own, narrowed to what our token may do (see ``access.py``).
Every other call is one request, retried as ``client.py`` says; logs stream over SSE (``log_stream.py``).
Snapshots, tasks, checkpoints and audit entries are returned exactly as the node sent them.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any, TypeVar
from urllib.parse import quote

from backends import node_api
from backends.base import Backend
from backends.errors import BackendError, Invalid, NotFound, Unreachable
from backends.model import (
    AuditEntry,
    Checkpoint,
    DispatchRequest,
    Gate,
    KpiSeries,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    SignedDecision,
    Target,
    Task,
)
from backends.node_api import (
    ActionResult,
    CheckpointBody,
    DispatchBody,
    RollbackBody,
    RollbackPreview,
    SignGateBody,
    TargetBody,
    Whoami,
)
from backends.plugin import NodeSettings, Thresholds

from .access import BACKEND_NAME, Access, before_open, for_caller
from .client import NodeClient, Sleep
from .failures import NotTheModel
from .log_stream import LogStream
from .settings import HttpOptions, HttpSettings, settings_from_config

T = TypeVar("T")

INFO_PATH = f"{node_api.PREFIX}/info"
WHOAMI_PATH = f"{node_api.PREFIX}/whoami"
SNAPSHOT_PATH = f"{node_api.PREFIX}/snapshot"
AUDIT_PATH = f"{node_api.PREFIX}/audit"


class HttpBackend(Backend):
    name = BACKEND_NAME

    def __init__(
        self, settings: HttpSettings, *, clock: Callable[[], float] = time.time, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._client = NodeClient(settings, sleep=sleep)
        self._log_stream = LogStream(self._client, clock=clock, sleep=sleep)
        self._opened = False
        self._open_lock = asyncio.Lock()  # the poll and log workers may both open first
        self._apply(before_open(settings))

    Options = HttpOptions

    @classmethod
    def from_config(
        cls,
        node: NodeSettings[HttpOptions],
        *,
        clock: Callable[[], float],
        thresholds: Thresholds | None = None,
    ) -> HttpBackend:
        """The keys in :class:`~backends.http.settings.HttpOptions`. The node judges health itself: no
        thresholds here."""
        return cls(settings_from_config(node), clock=clock)

    def __repr__(self) -> str:
        return f"HttpBackend(node={self.settings.node_name!r}, url={self.settings.url!r})"

    # --- who the node is, and what we may do there ---------------------------------------------------------

    @property
    def info(self) -> NodeInfo:
        return self._access.info

    @property
    def served_backend(self) -> str | None:
        """The backend behind the node's API (``demo``, ``local``, ...), once open."""
        return self._access.served_backend

    def capability_note(self, capability: str) -> str | None:
        return self._access.note(capability, self.settings.node_name)

    def _apply(self, access: Access) -> None:
        self._access = access
        self.capabilities = access.capabilities
        self.read_only_reason = access.read_only_reason

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:
            if self._opened:
                return
            self._client.start()
            whoami = await self._introduction(WHOAMI_PATH, Whoami)
            server = await self._introduction(INFO_PATH, NodeInfo)
            self._apply(for_caller(server, whoami, self.settings))
            self._opened = True

    async def close(self) -> None:
        self._opened = False
        await self._client.aclose()

    async def _introduction(self, path: str, type_: type[T]) -> T:
        """One of the two questions ``open`` asks; an answer no v1 node would give is said in words."""
        try:
            return await self._client.get(path, type_)
        except NotTheModel as exc:
            why = f"GET {path} answered something that is not a {exc.expected} ({exc.problem})"
        except (NotFound, Invalid) as exc:  # no such route, or a method it does not know there
            why = f"GET {path} was refused: {exc}"
        raise Unreachable(f"node at {self.settings.url} does not speak the fleetdeck node API v1: {why}")

    # --- reading -----------------------------------------------------------------------------------------

    async def snapshot(self) -> NodeSnapshot:
        await self.open()
        return await self._client.get(SNAPSHOT_PATH, NodeSnapshot)

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        await self.open()
        async for record in self._log_stream.records(since_seq, follow):
            yield record

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        await self.open()
        return await self._client.get(
            AUDIT_PATH, list[AuditEntry], params={"since_seq": since_seq}, expected="list of AuditEntry"
        )

    async def rollback_preview(self, checkpoint_id: str) -> list[str]:
        await self.open()
        path = f"{node_api.PREFIX}/checkpoints/{quote(checkpoint_id, safe='')}/preview"
        preview = await self._client.get(path, RollbackPreview)
        return list(preview.lines)

    async def kpi_history(
        self, since: float, *, names: Collection[str] | None = None, agent_ids: Collection[str] | None = None
    ) -> list[KpiSeries]:
        """The node's KPI history. An answer is bounded (node_api.MAX_KPI_POINTS): past the bound the node
        leaves the oldest points out, as its retention does."""
        await self.open()
        params: dict[str, Any] = {"since": _epoch_text(since)}
        if names is not None:
            if not names:
                return []  # "none of these": the query cannot say it (no name at all means every one)
            params["name"] = sorted(names)
        if agent_ids is not None:
            if not agent_ids:
                return []
            params["agent"] = sorted(agent_ids)
        return await self._client.get(
            node_api.KPIS_PATH, list[KpiSeries], params=params, expected="list of KpiSeries"
        )

    # --- actions -----------------------------------------------------------------------------------------

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        return await self._act("dispatch", DispatchBody(request=request, reason=reason), Task, operator)

    async def pause(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        await self._control("pause", target, operator, reason)

    async def resume(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        await self._control("resume", target, operator, reason)

    async def stop(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        await self._control("stop", target, operator, reason)

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        return await self._act("checkpoint", CheckpointBody(label=label, reason=reason), Checkpoint, operator)

    async def rollback(self, checkpoint_id: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        body = RollbackBody(checkpoint_id=checkpoint_id, reason=reason)
        return await self._act("rollback", body, Checkpoint, operator)

    async def sign_gate(
        self, phase_id: str, decision: SignedDecision, *, operator: str, reason: str | None = None
    ) -> Gate:
        body = SignGateBody(decision=decision, reason=reason)
        return await self._act("sign_gate", body, Gate, operator, phase_id=phase_id)

    async def _control(self, action: str, target: Target, operator: str, reason: str | None) -> None:
        result = await self._act(
            action, TargetBody(target=str(target), reason=reason), ActionResult, operator
        )
        if not result.ok:
            detail = result.detail or "no reason given"
            raise BackendError(f"node {self.settings.node_name} did not {action} {target}: {detail}")

    async def _act(self, action: str, body: Any, type_: type[T], operator: str, **path: str) -> T:
        """POST one action. Its Idempotency-Key is made here, once, and every retry of it carries the same
        key, so a dispatch whose answer was lost is not done twice."""
        await self.open()
        # ``operator`` is not sent: the node audits under the name its credential proves (the token's, or
        # the serving user's), never under a name a client claims (node_api.py)
        headers = {node_api.IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4())}
        return await self._client.post(node_api.action_path(action, **path), body, type_, headers=headers)


def _epoch_text(since: float) -> str:
    """``since`` as the plain decimal the node takes (``repr`` could say 1e-05); before 1970 is 1970."""
    if math.isnan(since) or since <= 0:
        return "0"
    return f"{min(since, 999_999_999_999_999.0):.6f}"  # the node takes at most 15 digits before the point
