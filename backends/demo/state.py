"""What operators changed on a demo node: holds (pause/stop), dispatched tasks and command agents.

The simulation itself is a pure function of time; this module is the only mutable part, and it is small
and copyable so a checkpoint can keep a copy and a rollback can put it back. Task progress is stored as
timestamps, not as a status, so a task's status at any time is computed and never needs a ticking thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from backends.model import Checkpoint, Task, TaskStatus

HoldKind = Literal["paused", "stopped"]
HOLD_RANK: dict[str, int] = {"paused": 1, "stopped": 2}

COMMAND_STARTUP_S = 5.0  # a dispatched command reports "starting" this long before "running"


@dataclass(frozen=True, slots=True)
class Hold:
    """An operator's pause or stop on an agent or a phase."""

    kind: HoldKind
    since: float
    by: str
    reason: str | None = None

    def describe(self) -> str:
        text = f"{self.kind} by {self.by}"
        return f"{text}: {self.reason}" if self.reason else text


def stronger(a: Hold | None, b: Hold | None) -> Hold | None:
    """The hold that wins when an agent is held directly and through its phase (stop beats pause)."""
    if a is None or b is None:
        return a or b
    return a if HOLD_RANK[a.kind] >= HOLD_RANK[b.kind] else b


@dataclass(slots=True)
class TaskRecord:
    """A task's fixed plan (how long it queues and runs, how it ends) plus the operator's interventions."""

    id: str
    kind: str
    agent_id: str
    payload: dict[str, Any]
    created_at: float
    submitted_by: str
    queue_s: float
    run_s: float
    outcome: Literal["succeeded", "failed"]
    result: Any = None
    error: str | None = None
    paused_at: float | None = None
    paused_total: float = 0.0
    final: TaskStatus | None = None  # cancelled or rolled_back, set by an operator
    final_at: float | None = None

    @property
    def target(self) -> str:
        return f"agent:{self.agent_id}"

    def _elapsed(self, t: float) -> float:
        """Seconds the task has been live (queued or running) at ``t``, not counting pauses."""
        now = t if self.final_at is None else self.final_at
        if self.paused_at is not None:
            now = min(now, self.paused_at)
        return now - self.created_at - self.paused_total

    def status_at(self, t: float) -> tuple[TaskStatus, float]:
        """The status at time ``t`` and when it last changed."""
        if self.final is not None and self.final_at is not None:
            return self.final, self.final_at
        elapsed = self._elapsed(t)
        start = self.created_at + self.paused_total + self.queue_s
        if elapsed >= self.queue_s + self.run_s:
            return self.outcome, start + self.run_s
        if self.paused_at is not None:
            return "paused", self.paused_at
        if elapsed < self.queue_s:
            return "queued", self.created_at
        return "running", start

    def progress_at(self, t: float) -> float | None:
        """Fraction of the run done, for the agent running it; None unless the task is running."""
        ran = self._elapsed(t) - self.queue_s
        if self.final is not None or ran < 0 or ran >= self.run_s:
            return None
        return round(ran / self.run_s, 3)

    def to_task(self, t: float) -> Task:
        status, updated = self.status_at(t)
        return Task(
            id=self.id,
            kind=self.kind,
            target=self.target,
            payload=self.payload,
            status=status,
            created_at=self.created_at,
            updated_at=max(updated, self.created_at),
            submitted_by=self.submitted_by,
            attempts=1 if self._elapsed(t) >= self.queue_s else 0,
            result=self.result if status == "succeeded" else None,
            error=self.error if status == "failed" else None,
        )


@dataclass(slots=True)
class CommandAgent:
    """An agent an operator started by dispatching a command."""

    id: str
    command: tuple[str, ...]
    created_at: float
    pid: int
    by: str
    task_id: str


@dataclass(slots=True)
class OperatorState:
    """Everything a rollback restores."""

    agent_holds: dict[str, Hold] = field(default_factory=dict)
    phase_holds: dict[str, Hold] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    commands: dict[str, CommandAgent] = field(default_factory=dict)

    def copy(self) -> OperatorState:
        # Holds are frozen and can be shared; task and command records are mutable and must be copied.
        return OperatorState(
            agent_holds=dict(self.agent_holds),
            phase_holds=dict(self.phase_holds),
            tasks={k: replace(v, payload=dict(v.payload)) for k, v in self.tasks.items()},
            commands={k: replace(v) for k, v in self.commands.items()},
        )


@dataclass(slots=True)
class CheckpointRecord:
    checkpoint: Checkpoint
    state: OperatorState
