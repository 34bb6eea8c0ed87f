"""Tasks (dispatched work), checkpoints, and the capture and restore of the state a rollback returns to."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from backends.errors import Conflict, Invalid
from backends.model import Checkpoint, Target, Task, TaskStatus

from .store_agents import known_ids, not_found
from .store_db import dumps, loads

TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)
TERMINAL_TASK_STATUSES = frozenset(("succeeded", "failed", "cancelled", "rolled_back"))
_OPERATOR_HOLDS = frozenset(("paused", "stopped"))
CAPTURE_FORMAT = 1


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """A checkpoint with what a rollback needs: the captured store state and each workspace's git ref."""

    checkpoint: Checkpoint
    state: dict[str, Any] = field(default_factory=dict)
    git_refs: dict[str, str] = field(default_factory=dict)


def new_id(conn: sqlite3.Connection, table: str, prefix: str, now: float) -> str:
    """A short id that sorts by time ("cp-20261121-134501-3f2a"), unique within ``table``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    while True:
        ident = f"{prefix}-{stamp}-{secrets.token_hex(2)}"
        # Checked inside the caller's write transaction, so no other process can take it meanwhile.
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (ident,)).fetchone() is None:
            return ident


# --- tasks ---------------------------------------------------------------------------------------------


def _task(row: Any) -> Task:
    return Task(
        id=row["id"],
        kind=row["kind"],
        target=row["target"],
        payload=loads(row["payload"], {}),
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        submitted_by=row["submitted_by"],
        attempts=row["attempts"],
        result=loads(row["result"]),
        error=row["error"],
    )


def get_task(conn: sqlite3.Connection, task_id: str) -> Task:
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        recent = [str(r[0]) for r in conn.execute("SELECT id FROM tasks ORDER BY created_at DESC LIMIT 11")]
        raise not_found("task", task_id, recent)
    return _task(row)


def create_task(
    conn: sqlite3.Connection,
    now: float,
    kind: str,
    target: str,
    payload: Mapping[str, Any],
    submitted_by: str,
) -> Task:
    try:
        parsed = Target.parse(target)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if not kind or not submitted_by:
        raise Invalid("a task needs a kind and who submitted it")
    if not isinstance(payload, Mapping):
        raise Invalid(f"a task payload must be a JSON object, not {type(payload).__name__}")
    # Catch a typo now rather than queue work that nothing will ever claim.
    if parsed.kind in ("agent", "phase"):
        table = "agents" if parsed.kind == "agent" else "phases"
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (parsed.id,)).fetchone() is None:
            raise not_found(parsed.kind, parsed.id, known_ids(conn, table))
    ident = new_id(conn, "tasks", "t", now)
    conn.execute(
        """INSERT INTO tasks (id, kind, target, payload, status, created_at, updated_at, submitted_by)
           VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)""",
        (ident, kind, str(parsed), dumps(dict(payload)), now, now, submitted_by),
    )
    return get_task(conn, ident)


def claim_task(conn: sqlite3.Connection, now: float, agent_id: str) -> Task | None:
    """The oldest queued task for the agent, now running; atomic under the write lock."""
    row = conn.execute(
        "SELECT id FROM tasks WHERE target = ? AND status = 'queued' ORDER BY created_at, id LIMIT 1",
        (f"agent:{agent_id}",),
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        "UPDATE tasks SET status = 'running', attempts = attempts + 1, updated_at = ? WHERE id = ?",
        (now, row["id"]),
    )
    return get_task(conn, row["id"])


def _change(
    conn: sqlite3.Connection,
    now: float,
    task_id: str,
    status: str,
    result: Any,
    error: str | None,
    *,
    keep_outcome: bool,
) -> Task:
    current = get_task(conn, task_id)
    if current.status in TERMINAL_TASK_STATUSES:
        raise Conflict(
            f"task {task_id} already {current.status.replace('_', ' ')}; it cannot become {status}"
        )
    conn.execute(
        """UPDATE tasks SET status = ?, updated_at = ?,
               result = CASE WHEN ? THEN result ELSE ? END, error = CASE WHEN ? THEN error ELSE ? END
           WHERE id = ?""",
        (status, now, keep_outcome, None if result is None else dumps(result), keep_outcome, error, task_id),
    )
    return get_task(conn, task_id)


def finish_task(conn: sqlite3.Connection, now: float, task_id: str, result: Any, error: str | None) -> Task:
    status = "failed" if error is not None else "succeeded"
    return _change(conn, now, task_id, status, result, error, keep_outcome=False)


def set_task_status(conn: sqlite3.Connection, now: float, task_id: str, status: str) -> Task:
    if status not in TASK_STATUSES:
        raise Invalid(f"task status {status!r} is not one of {', '.join(TASK_STATUSES)}")
    return _change(conn, now, task_id, status, None, None, keep_outcome=True)


_OPEN = "('queued', 'running', 'paused')"


def list_tasks(conn: sqlite3.Connection, limit: int) -> list[Task]:
    """Newest first: every unfinished task, however old, then the newest finished ones up to ``limit``."""
    open_rows = conn.execute(
        f"SELECT * FROM tasks WHERE status IN {_OPEN} ORDER BY created_at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    done_rows = conn.execute(
        f"SELECT * FROM tasks WHERE status NOT IN {_OPEN} ORDER BY created_at DESC LIMIT ?",
        (max(0, limit - len(open_rows)),),
    ).fetchall()
    tasks = [_task(row) for row in (*open_rows, *done_rows)]
    return sorted(tasks, key=lambda t: (t.created_at, t.id), reverse=True)


# --- checkpoints ---------------------------------------------------------------------------------------

_CHECKPOINT_COLUMNS = "id, label, created_at, created_by, phase_id, automatic, covers"


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        id=row["id"],
        label=row["label"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        phase_id=row["phase_id"],
        automatic=bool(row["automatic"]),
        covers=tuple(loads(row["covers"], [])),
    )


def add_checkpoint(
    conn: sqlite3.Connection,
    now: float,
    *,
    label: str,
    created_by: str,
    automatic: bool,
    phase_id: str | None,
    covers: Sequence[str],
    state: Mapping[str, Any],
    git_refs: Mapping[str, str],
) -> Checkpoint:
    ident = new_id(conn, "checkpoints", "cp", now)
    conn.execute(
        """INSERT INTO checkpoints (id, label, created_at, created_by, phase_id, automatic, covers, state,
               git_refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            ident,
            label,
            now,
            created_by,
            phase_id,
            int(automatic),
            dumps(list(covers)),
            dumps(dict(state)),
            dumps(dict(git_refs)),
        ),
    )
    return get_checkpoint(conn, ident)


def get_checkpoint(conn: sqlite3.Connection, checkpoint_id: str) -> Checkpoint:
    return checkpoint_record(conn, checkpoint_id).checkpoint


def checkpoint_record(conn: sqlite3.Connection, checkpoint_id: str) -> CheckpointRecord:
    row = conn.execute("SELECT * FROM checkpoints WHERE id = ?", (checkpoint_id,)).fetchone()
    if row is None:
        recent = [
            str(r[0]) for r in conn.execute("SELECT id FROM checkpoints ORDER BY created_at DESC LIMIT 11")
        ]
        raise not_found("checkpoint", checkpoint_id, recent)
    return CheckpointRecord(_checkpoint(row), loads(row["state"], {}), loads(row["git_refs"], {}))


def list_checkpoints(conn: sqlite3.Connection, limit: int) -> list[Checkpoint]:
    rows = conn.execute(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)
    )
    return [_checkpoint(row) for row in rows]


# --- capture and restore -------------------------------------------------------------------------------


def capture(conn: sqlite3.Connection) -> dict[str, Any]:
    """What a rollback restores, as plain JSON-able data: plan progress, task outcomes, agent holds."""
    criteria: dict[str, dict[str, str | None]] = {}
    for row in conn.execute("SELECT milestone_id, name, actual FROM criteria"):
        criteria.setdefault(str(row["milestone_id"]), {})[str(row["name"])] = row["actual"]
    return {
        "format": CAPTURE_FORMAT,
        "phases": {
            row["id"]: {
                "status_override": row["status_override"],
                "started_at": row["started_at"],
                "finished_at": row["finished_at"],
            }
            for row in conn.execute("SELECT id, status_override, started_at, finished_at FROM phases")
        },
        "milestones": {row["id"]: row["status"] for row in conn.execute("SELECT id, status FROM milestones")},
        "criteria": criteria,
        "tasks": {
            row["id"]: {"status": row["status"], "result": loads(row["result"]), "error": row["error"]}
            for row in conn.execute("SELECT id, status, result, error FROM tasks")
        },
        "agents": {row["id"]: row["state"] for row in conn.execute("SELECT id, state FROM agents")},
    }


def _hold(state: str) -> str:
    return state if state in _OPERATOR_HOLDS else "running"


def restore(conn: sqlite3.Connection, now: float, state: Mapping[str, Any]) -> dict[str, str]:
    """Put plan and tasks back as captured; return the agent holds (id -> paused|stopped|running) that
    differ now, for the caller to carry out on the processes - the store cannot pause a process itself.

    Tasks created since the capture become rolled_back; a task captured while running is queued again
    (the work it did since is undone); anything not in the capture that is not a task is left alone.
    """
    if not isinstance(state, Mapping) or state.get("format") != CAPTURE_FORMAT:
        raise Invalid("this checkpoint's state is not in a format this fleetdeck can restore")
    for phase_id, phase in state.get("phases", {}).items():
        conn.execute(
            "UPDATE phases SET status_override = ?, started_at = ?, finished_at = ? WHERE id = ?",
            (phase["status_override"], phase["started_at"], phase["finished_at"], phase_id),
        )
    for milestone_id, status in state.get("milestones", {}).items():
        conn.execute(
            "UPDATE milestones SET status = ?, updated_at = ? WHERE id = ?", (status, now, milestone_id)
        )
    for milestone_id, actuals in state.get("criteria", {}).items():
        conn.execute("UPDATE criteria SET actual = NULL WHERE milestone_id = ?", (milestone_id,))
        conn.executemany(
            "UPDATE criteria SET actual = ?, updated_at = ? WHERE milestone_id = ? AND name = ?",
            [(actual, now, milestone_id, name) for name, actual in actuals.items()],
        )
    captured_tasks: Mapping[str, Any] = state.get("tasks", {})
    for row in conn.execute("SELECT id, status FROM tasks").fetchall():
        before = captured_tasks.get(row["id"])
        if before is None:
            conn.execute(
                "UPDATE tasks SET status = 'rolled_back', updated_at = ? WHERE id = ?", (now, row["id"])
            )
        elif before["status"] != row["status"]:
            status = "queued" if before["status"] == "running" else before["status"]
            result = before.get("result")
            conn.execute(
                "UPDATE tasks SET status = ?, result = ?, error = ?, updated_at = ? WHERE id = ?",
                (status, None if result is None else dumps(result), before.get("error"), now, row["id"]),
            )
    captured_agents: Mapping[str, str] = state.get("agents", {})
    holds = {}
    for row in conn.execute("SELECT id, state FROM agents"):
        before_state = captured_agents.get(row["id"])
        if before_state is not None and _hold(before_state) != _hold(row["state"]):
            holds[str(row["id"])] = _hold(before_state)
    return holds
