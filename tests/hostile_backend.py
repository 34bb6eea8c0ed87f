"""A node whose every string field carries escape sequences, controls, bidi and markup, for the console
tests of terminal safety. Everything else about it is ordinary, so each screen, dialog and panel has data to
show."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from backends.base import Backend
from backends.errors import BackendError
from backends.model import (
    Agent,
    AuditEntry,
    Checkpoint,
    Criterion,
    DispatchRequest,
    Gate,
    Gpu,
    GpuStatus,
    LogRecord,
    Milestone,
    NodeInfo,
    NodeSnapshot,
    Phase,
    SystemMetrics,
    Task,
)

from .hostile import PAYLOAD, SHORT

T0 = 1767225600.0
AGENT_ID = f"id{SHORT}"  # a node may call its agents anything


class HostileBackend(Backend):
    name = "hostile"
    capabilities = frozenset(
        {"logs", "audit", "dispatch", "pause", "resume", "stop", "checkpoint", "rollback"}
    )

    def __init__(self, clock: Callable[[], float], *, gpus: bool = True, read_only: bool = False) -> None:
        self.clock = clock
        self.with_gpus = gpus
        self.read_only = read_only
        self.read_only_reason = f"read-only because {SHORT}" if read_only else None

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(
            id="hostile-01",
            name=f"n{SHORT}",
            backend=self.name,
            version=SHORT,
            hostname=SHORT,
            labels={"role": SHORT},
            read_only=self.read_only,
        )

    async def snapshot(self) -> NodeSnapshot:
        now = self.clock()
        agents = (
            Agent(
                id=AGENT_ID,
                name=f"[bold red]{SHORT}",
                state="running",
                health="degraded",
                health_reason=f"{SHORT} reason",
                last_heartbeat=now - 2,
                phase_id="p1",
                current_task=SHORT,
                message=SHORT,
                labels={"role": SHORT, "workspace": SHORT},
            ),
            Agent(
                id="plain", name="plain", state="paused", health="healthy", message=f"{SHORT}\nsecond line"
            ),
        )
        criterion = Criterion(name=SHORT, target=SHORT, actual=SHORT)
        phase = Phase(
            id="p1",
            name=SHORT,
            order=1,
            status="active",
            progress=0.5,
            milestones=(Milestone(id="m1", name=SHORT, status="active", criteria=(criterion,)),),
            gate=Gate(decision="no-go", reasons=(SHORT,)),
        )
        gpus = (
            (Gpu(index=0, name=SHORT, util_percent=50.0, mem_total=100, mem_used=50),)
            if self.with_gpus
            else ()
        )
        status = GpuStatus() if self.with_gpus else GpuStatus(status="error", reason=SHORT)
        task = Task(
            id="t1", kind=SHORT, target=f"agent:{AGENT_ID}", payload={"prompt": SHORT}, status="running",
            created_at=now - 60, updated_at=now - 5, submitted_by=SHORT, error=SHORT,
        )  # fmt: skip
        checkpoint = Checkpoint(
            id="cp1", label=SHORT, created_at=now - 600, created_by=SHORT, covers=(SHORT,)
        )
        return NodeSnapshot(
            node=self.info,
            observed_at=now,
            system=SystemMetrics(cpu_percent=10.0, mem_total=100, mem_used=40),
            gpus=gpus,
            gpu_status=status,
            agents=agents,
            phases=(phase,),
            tasks=(task,),
            checkpoints=(checkpoint,),
        )

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        now = self.clock()
        records = [
            LogRecord(seq=1, ts=now - 30, level="error", source=AGENT_ID, message=f"{SHORT} {PAYLOAD}"),
            LogRecord(seq=2, ts=now - 20, level="info", source="plain", message="one\ntwo\x1b[2J"),
            LogRecord(
                seq=3, ts=now - 10, level="warning", source=AGENT_ID, message=SHORT, fields={"k": SHORT}
            ),
        ]
        for record in records:
            if record.seq > since_seq:
                yield record

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        entry = AuditEntry(
            seq=1, ts=self.clock() - 60, operator=SHORT, action=SHORT, target=SHORT, params={"label": SHORT},
            reason=SHORT, outcome="failed", detail=f"{SHORT}\nsecond line", request_id=SHORT,
        )  # fmt: skip
        return [entry] if since_seq < 1 else []

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        raise BackendError(f"the node refused: {SHORT}")

    async def rollback_preview(self, checkpoint_id: str) -> list[str]:
        return [f"workspace {SHORT}: 3 files changed"]

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        raise BackendError(f"dispatch refused: {SHORT}")
