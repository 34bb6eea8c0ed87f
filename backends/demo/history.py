"""What happened on a demo node before genesis: a few tasks, two checkpoints and their audit entries.

Seeded so the Tasks, Checkpoints and Audit views are never empty on a fresh demo, and timed so the list
has one of everything: finished, failed, cancelled, one running through the demo and one still queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.model import AuditEntry, Checkpoint

from .plan import ACTIVE_PHASE_ID
from .roster import AgentSpec
from .state import CheckpointRecord, OperatorState, TaskRecord

HOUR = 3600.0
DAY = 86400.0
SYSTEM_OPERATOR = "fleetdeck"  # who automatic checkpoints are "created_by"

FIRST_TASK_NUMBER = 401  # ids continue a project's history rather than starting at 1
FIRST_CHECKPOINT_NUMBER = 11


@dataclass(slots=True)
class History:
    state: OperatorState
    checkpoints: list[CheckpointRecord]
    audit: list[AuditEntry]
    next_task: int
    next_checkpoint: int


def _pick(roster: list[AgentSpec], *roles: str) -> str:
    for role in roles:
        for agent in roster:
            if agent.role.name == role:
                return agent.id
    return roster[0].id


def seed_history(roster: list[AgentSpec], genesis: float, covers: tuple[str, ...]) -> History:
    g = genesis
    tasks: list[TaskRecord] = []
    if roster:
        manager = _pick(roster, "model-manager", "retriever", "evaluator")
        tasks = [
            TaskRecord(
                id="task-0401",
                kind="eval",
                agent_id=_pick(roster, "evaluator", "tester"),
                payload={"suite": "regression-v3"},
                created_at=g - 5 * HOUR,
                submitted_by="alice",
                queue_s=20.0,
                run_s=1500.0,
                outcome="succeeded",
                result={"accuracy": 86.4, "baseline": 85.9},
            ),
            TaskRecord(
                id="task-0402",
                kind="reindex",
                agent_id=_pick(roster, "indexer", "retriever", "coder"),
                payload={"shard": 7},
                created_at=g - 3.5 * HOUR,
                submitted_by="bob",
                queue_s=45.0,
                run_s=900.0,
                outcome="failed",
                error="timeout after 900 s waiting for shard 7 to load",
            ),
            TaskRecord(
                id="task-0403",
                kind="deploy",
                agent_id=manager,
                payload={"revision": "r42", "canary_percent": 10},
                created_at=g - 2 * HOUR,
                submitted_by="carol",
                queue_s=10.0,
                run_s=1200.0,
                outcome="succeeded",
                final="cancelled",
                final_at=g - 2 * HOUR + 300,
            ),
            TaskRecord(
                id="task-0404",
                kind="test",
                agent_id=_pick(roster, "tester", "coder"),
                payload={"suite": "e2e"},
                created_at=g - HOUR,
                submitted_by="alice",
                queue_s=5.0,
                run_s=420.0,
                outcome="succeeded",
                result={"passed": 214, "failed": 0},
            ),
            TaskRecord(
                id="task-0405",
                kind="benchmark",
                agent_id=manager,
                payload={"profile": "2x-traffic", "duration_s": 5400},
                created_at=g - 600,
                submitted_by="alice",
                queue_s=30.0,
                run_s=5400.0,
                outcome="succeeded",
                result={"p95_ms": 131, "throughput_rps": 1340},
            ),
            TaskRecord(
                id="task-0406",
                kind="review",
                agent_id=_pick(roster, "reviewer", "coder"),
                payload={"pr": 412},
                created_at=g - 60,
                submitted_by="bob",
                queue_s=900.0,
                run_s=600.0,
                outcome="succeeded",
                result={"verdict": "approved"},
            ),
        ]
    checkpoints: list[CheckpointRecord] = []
    audit_rows: list[tuple[float, str, str, str | None, dict[str, object], str | None, str]] = []
    for number, label, at, by, automatic in (
        (FIRST_CHECKPOINT_NUMBER, "before scale-out", g - 19 * DAY, "alice", False),
        (FIRST_CHECKPOINT_NUMBER + 1, "nightly", g - 4 * HOUR, SYSTEM_OPERATOR, True),
    ):
        checkpoint = Checkpoint(
            id=f"ckpt-{number:04d}",
            label=label,
            created_at=at,
            created_by=by,
            phase_id=ACTIVE_PHASE_ID,
            automatic=automatic,
            covers=covers,
        )
        # The copy holds only the tasks that existed then, so rolling back to it undoes the later ones.
        state = OperatorState(tasks={t.id: t for t in tasks if t.created_at <= at})
        checkpoints.append(CheckpointRecord(checkpoint, state.copy()))
        audit_rows.append((at, by, "checkpoint", None, {"label": label}, None, f"{checkpoint.id} taken"))
    for task in tasks:
        audit_rows.append(
            (
                task.created_at,
                task.submitted_by,
                "dispatch",
                task.target,
                {"agent_id": task.agent_id, "kind": task.kind, "payload": task.payload},
                None,
                f"{task.id} queued",
            )
        )
        if task.final == "cancelled" and task.final_at is not None:
            audit_rows.append(
                (
                    task.final_at,
                    task.submitted_by,
                    "stop",
                    f"task:{task.id}",
                    {},
                    "wrong revision, redeploying r43 tomorrow",
                    f"{task.id} cancelled",
                )
            )
    audit_rows.sort(key=lambda row: row[0])
    audit = [
        AuditEntry(
            seq=i,
            ts=ts,
            operator=who,
            action=action,
            target=target,
            params=params,
            reason=reason,
            outcome="ok",
            detail=detail,
        )
        for i, (ts, who, action, target, params, reason, detail) in enumerate(audit_rows, start=1)
    ]
    return History(
        state=OperatorState(tasks={t.id: t for t in tasks}),
        checkpoints=checkpoints,
        audit=audit,
        next_task=FIRST_TASK_NUMBER + len(tasks),
        next_checkpoint=FIRST_CHECKPOINT_NUMBER + len(checkpoints),
    )
