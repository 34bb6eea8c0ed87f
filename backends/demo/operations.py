"""The demo node's operator actions, applied to its in-memory ``OperatorState``.

Each method checks the request against what the node shows right now, raises NotFound or Conflict with a
message an operator can act on, applies the change and returns (result, audit detail). Auditing and the
read-only check live in the backend, so every path through here is audited the same way.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import replace
from typing import Any, Protocol

import msgspec

from backends.errors import Conflict, Invalid, NotFound
from backends.model import (
    Agent,
    Checkpoint,
    DispatchRequest,
    Gate,
    GateSignoff,
    LogLevel,
    Phase,
    Target,
    Task,
)

from .catalog import NodeSpec
from .history import History
from .plan import ACTIVE_PHASE_ID
from .signals import mix, text_key, unit
from .state import COMMAND_STARTUP_S, CheckpointRecord, CommandAgent, Hold, HoldKind, TaskRecord, stronger
from .world import World

_LIVE_TASK = ("queued", "running", "paused")
_TASK_ERRORS = (
    "exit code 1: test_gpu_oom_retry failed with AssertionError",
    "timeout after 60 s waiting for a free GPU",
    "exit code 2: invalid payload: missing 'suite'",
)


def _listing(what: str, ids: list[str], wanted: str) -> str:
    """ "(did you mean coder-07? 34 agents: ...)": enough to spot a typo without flooding a notification."""
    if not ids:
        return f"(it has no {what})"
    close = difflib.get_close_matches(wanted, ids, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    shown = ", ".join(ids[:6])
    more = ", ..." if len(ids) > 6 else ""
    return f"({hint}{len(ids)} {what}: {shown}{more})"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class DemoNode(Protocol):
    """What the actions read from the node they act on (the DemoBackend): named here, so that this module
    does not import the backend that imports it."""

    seed: int
    spec: NodeSpec

    @property
    def world(self) -> World: ...

    def agents_at(self, t: float) -> tuple[list[Agent], dict[str, str]]: ...

    def phases_at(self, t: float) -> tuple[Phase, ...]: ...

    def write_log(
        self, ts: float, level: LogLevel, source: str, message: str, fields: dict[str, Any] | None = None
    ) -> None: ...


class Operations:
    def __init__(self, node: DemoNode, history: History) -> None:
        self.node = node
        self.state = history.state
        self.checkpoints: list[CheckpointRecord] = history.checkpoints
        self._next_task = history.next_task
        self._next_checkpoint = history.next_checkpoint
        self._next_pid = 40_000 + node.spec.index * 37
        # Sign-offs are judgements on the record, like the audit trail: a rollback does not take them back.
        self.signoffs: dict[str, GateSignoff] = {}

    # --- lookups -----------------------------------------------------------------------------------------

    @property
    def _name(self) -> str:
        return self.node.spec.name

    def _agent(self, agent_id: str, t: float) -> Agent:
        agents, _ = self.node.agents_at(t)
        for agent in agents:
            if agent.id == agent_id:
                return agent
        known = _listing("agents", [a.id for a in agents], agent_id)
        raise NotFound(f"no agent {agent_id!r} on node {self._name} {known}")

    def _phase(self, phase_id: str, t: float) -> Phase:
        phases = self.node.phases_at(t)
        for phase in phases:
            if phase.id == phase_id:
                return phase
        raise NotFound(
            f"no phase {phase_id!r} in the plan on node {self._name} "
            f"{_listing('phases', [p.id for p in phases], phase_id)}"
        )

    def _task(self, task_id: str) -> TaskRecord:
        record = self.state.tasks.get(task_id)
        if record is None:
            known = _listing("tasks", list(self.state.tasks), task_id)
            raise NotFound(f"no task {task_id!r} on node {self._name} {known}")
        return record

    def _agent_hold(self, agent: Agent) -> tuple[Hold | None, Hold | None]:
        """The agent's own hold and the one it gets from its phase."""
        via = self.state.phase_holds.get(agent.phase_id) if agent.phase_id else None
        return self.state.agent_holds.get(agent.id), via

    def _cancel_tasks(self, agent_ids: set[str], t: float) -> int:
        cancelled = 0
        for record in self.state.tasks.values():
            if record.agent_id in agent_ids and record.status_at(t)[0] in _LIVE_TASK:
                record.final, record.final_at = "cancelled", t
                cancelled += 1
        return cancelled

    # --- pause / stop ------------------------------------------------------------------------------------

    def hold(
        self, target: Target, kind: HoldKind, operator: str, reason: str | None, t: float
    ) -> tuple[None, str]:
        verb = "pause" if kind == "paused" else "stop"
        hold = Hold(kind, t, operator, reason)
        if target.kind == "task":
            return None, self._hold_task(target.id, kind, t)
        if target.kind == "phase":
            phase = self._phase(target.id, t)
            current = self.state.phase_holds.get(phase.id)
            if current is not None and (current.kind == "stopped" or current.kind == kind):
                raise Conflict(f"phase {phase.id} ({phase.name}) is already {current.describe()}")
            if current is None and phase.status != "active":
                raise Conflict(
                    f"phase {phase.id} ({phase.name}) is {phase.status}; only the active phase can be {kind}"
                )
            self.state.phase_holds[phase.id] = hold
            members = {a.id for a in self.node.world.roster if a.phase_id == phase.id}
            cancelled = self._cancel_tasks(members, t) if kind == "stopped" else 0
            self.node.write_log(
                t,
                "warning",
                "node",
                f"phase {phase.name} {kind} by {operator}",
                {"phase": phase.id, "agents": len(members), "reason": reason},
            )
            extra = f", {_plural(cancelled, 'task')} cancelled" if cancelled else ""
            return None, f"phase {phase.name} {kind} with its {_plural(len(members), 'agent')}{extra}"
        agent = self._agent(target.id, t)
        own, via = self._agent_hold(agent)
        current = stronger(own, via)
        if current is not None and (current.kind == "stopped" or current.kind == kind):
            through = f" with phase {agent.phase_id}" if current is via else ""
            raise Conflict(f"agent {agent.id} is already {current.kind}{through} ({current.describe()})")
        if kind == "paused" and agent.state == "failed":
            raise Conflict(
                f"agent {agent.id} has failed ({agent.health_reason}); stop it, or wait for its "
                f"restart before pausing it"
            )
        self.state.agent_holds[agent.id] = hold
        cancelled = self._cancel_tasks({agent.id}, t) if kind == "stopped" else 0
        self.node.write_log(
            t,
            "warning" if kind == "stopped" else "info",
            agent.id,
            f"{verb} requested by {operator}" + (f": {reason}" if reason else ""),
            {"operator": operator},
        )
        return None, f"agent {agent.id} {kind}" + (
            f", {_plural(cancelled, 'task')} cancelled" if cancelled else ""
        )

    def _hold_task(self, task_id: str, kind: HoldKind, t: float) -> str:
        record = self._task(task_id)
        status = record.status_at(t)[0]
        if kind == "paused":
            if status not in ("queued", "running"):
                raise Conflict(f"task {task_id} is {status}; only a queued or running task can be paused")
            record.paused_at = t
            return f"task {task_id} paused while {status}"
        if status not in _LIVE_TASK:
            raise Conflict(
                f"task {task_id} is already {status}; only a queued, running or paused task can be stopped"
            )
        record.final, record.final_at = "cancelled", t
        return f"task {task_id} cancelled while {status}"

    # --- resume ------------------------------------------------------------------------------------------

    def resume(self, target: Target, operator: str, reason: str | None, t: float) -> tuple[None, str]:
        undo = "roll back to a checkpoint taken before the stop"
        if target.kind == "task":
            record = self._task(target.id)
            status = record.status_at(t)[0]
            if status != "paused" or record.paused_at is None:
                raise Conflict(f"task {target.id} is {status}, not paused")
            record.paused_total += t - record.paused_at
            record.paused_at = None
            return None, f"task {target.id} resumed"
        if target.kind == "phase":
            phase = self._phase(target.id, t)
            current = self.state.phase_holds.get(phase.id)
            if current is None:
                raise Conflict(f"phase {phase.id} ({phase.name}) is {phase.status}, not paused")
            if current.kind == "stopped":
                raise Conflict(
                    f"phase {phase.id} ({phase.name}) was {current.describe()}; a stopped phase "
                    f"cannot be resumed: {undo}"
                )
            del self.state.phase_holds[phase.id]
            self.node.write_log(
                t, "info", "node", f"phase {phase.name} resumed by {operator}", {"phase": phase.id}
            )
            return None, f"phase {phase.name} resumed"
        agent = self._agent(target.id, t)
        own, via = self._agent_hold(agent)
        stopped = next((h for h in (own, via) if h is not None and h.kind == "stopped"), None)
        if stopped is not None:
            raise Conflict(
                f"agent {agent.id} was {stopped.describe()}; a stopped agent cannot be resumed: {undo}"
            )
        if own is None and via is not None:
            raise Conflict(
                f"agent {agent.id} is paused with its phase; resume phase:{agent.phase_id} instead"
            )
        if own is None:
            raise Conflict(f"agent {agent.id} is {agent.state}, not paused")
        del self.state.agent_holds[agent.id]
        self.node.write_log(t, "info", agent.id, f"resumed by {operator}", {"operator": operator})
        return None, f"agent {agent.id} resumed" + (
            f" (still paused with phase {agent.phase_id})" if via else ""
        )

    # --- dispatch ----------------------------------------------------------------------------------------

    def _new_task_id(self) -> tuple[str, int]:
        number = self._next_task
        self._next_task += 1
        return f"task-{number:04d}", number

    def dispatch(
        self, request: DispatchRequest, operator: str, reason: str | None, t: float
    ) -> tuple[Task, str]:
        if request.command is not None:
            return self._start_command(request, operator, t)
        assert request.agent_id is not None  # DispatchRequest guarantees one of the two
        agent = self._agent(request.agent_id, t)
        if agent.state == "stopped":
            raise Conflict(f"agent {agent.id} is stopped; it cannot take work")
        task_id, number = self._new_task_id()
        h = mix(self.node.seed, self.node.spec.index, number)
        fails = unit(mix(h, 1)) < 0.12
        run_s = round(20 + 70 * unit(h), 1)
        record = TaskRecord(
            id=task_id,
            kind=request.kind,
            agent_id=agent.id,
            payload=dict(request.payload),
            created_at=t,
            submitted_by=operator,
            queue_s=2.0,
            run_s=run_s,
            outcome="failed" if fails else "succeeded",
            result=None if fails else {"ok": True, "duration_s": run_s},
            error=_TASK_ERRORS[h % len(_TASK_ERRORS)] if fails else None,
        )
        self.state.tasks[task_id] = record
        self.node.write_log(
            t,
            "info",
            agent.id,
            f"accepted {request.kind} {task_id} from {operator}",
            {"task": task_id, "payload": record.payload},
        )
        return record.to_task(t), f"{task_id} queued on {agent.id}"

    def _start_command(self, request: DispatchRequest, operator: str, t: float) -> tuple[Task, str]:
        assert request.command is not None
        agents, _ = self.node.agents_at(t)
        taken = {a.id for a in agents}
        if request.name:
            name = request.name.strip()
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
                raise Invalid(f"agent name {request.name!r} must be letters, digits, '.', '_' or '-'")
            if name in taken:
                raise Conflict(f"agent {name!r} already exists on node {self._name}; pick another --name")
        else:
            base = (
                re.sub(r"[^a-z0-9_-]+", "-", os.path.basename(request.command[0]).lower()).strip("-") or "job"
            )
            number = 1
            while f"{base}-{number:02d}" in taken:
                number += 1
            name = f"{base}-{number:02d}"
        self._next_pid += 1 + mix(text_key(name), self._next_pid) % 40
        task_id, _ = self._new_task_id()
        self.state.commands[name] = CommandAgent(
            id=name,
            command=tuple(request.command),
            created_at=t,
            pid=self._next_pid,
            by=operator,
            task_id=task_id,
        )
        record = TaskRecord(
            id=task_id,
            kind="command",
            agent_id=name,
            payload={"command": list(request.command), **request.payload},
            created_at=t,
            submitted_by=operator,
            queue_s=0.5,
            run_s=COMMAND_STARTUP_S,
            outcome="succeeded",
            result={"agent_id": name, "pid": self._next_pid},
        )
        self.state.tasks[task_id] = record
        self.node.write_log(
            t,
            "info",
            "node",
            f"started {name} (pid {self._next_pid}) for {operator}: " + " ".join(request.command)[:160],
            {"agent": name, "task": task_id},
        )
        return record.to_task(t), f"{task_id} started agent {name}"

    # --- checkpoints -------------------------------------------------------------------------------------

    def checkpoint(self, label: str, operator: str, t: float, *, automatic: bool) -> tuple[Checkpoint, str]:
        number = self._next_checkpoint
        self._next_checkpoint += 1
        agents, _ = self.node.agents_at(t)
        phases = [p.id for p in self.node.phases_at(t) if p.status != "done"]
        checkpoint = Checkpoint(
            id=f"ckpt-{number:04d}",
            label=label.strip() or "manual checkpoint",
            created_at=t,
            created_by=operator,
            phase_id=ACTIVE_PHASE_ID,
            automatic=automatic,
            covers=tuple(f"phase:{p}" for p in phases) + tuple(f"agent:{a.id}" for a in agents),
        )
        self.checkpoints.append(CheckpointRecord(checkpoint, self.state.copy()))
        self.node.write_log(
            t,
            "info",
            "node",
            f"checkpoint {checkpoint.id} ({checkpoint.label}) taken by {operator}",
            {"checkpoint": checkpoint.id, "automatic": automatic},
        )
        return (
            checkpoint,
            f"{checkpoint.id} taken: {_plural(len(agents), 'agent')}, {_plural(len(phases), 'phase')}",
        )

    def rollback(
        self, checkpoint_id: str, operator: str, reason: str | None, t: float
    ) -> tuple[Checkpoint, str]:
        chosen = next((c for c in self.checkpoints if c.checkpoint.id == checkpoint_id), None)
        if chosen is None:
            ids = [c.checkpoint.id for c in self.checkpoints]
            known = _listing("checkpoints", ids, checkpoint_id)
            raise NotFound(f"no checkpoint {checkpoint_id!r} on node {self._name} {known}")
        safety, _ = self.checkpoint(f"before rollback to {checkpoint_id}", operator, t, automatic=True)
        restored = chosen.state.copy()
        tasks: dict[str, TaskRecord] = {}
        rolled_back = 0
        for task_id, record in self.state.tasks.items():
            if task_id in restored.tasks:
                tasks[task_id] = restored.tasks[task_id]
            elif record.final == "rolled_back":
                tasks[task_id] = replace(record)
            else:
                tasks[task_id] = replace(record, final="rolled_back", final_at=t)
                rolled_back += 1
        restored.tasks = tasks
        removed = sorted(set(self.state.commands) - set(restored.commands))
        self.state = restored
        self.node.write_log(
            t,
            "warning",
            "node",
            f"rolled back to {checkpoint_id} ({chosen.checkpoint.label}) "
            f"by {operator}" + (f": {reason}" if reason else ""),
            {"checkpoint": checkpoint_id, "safety_checkpoint": safety.id},
        )
        parts = [
            f"restored {checkpoint_id}",
            f"{_plural(rolled_back, 'task')} rolled back",
            f"{_plural(len(restored.agent_holds) + len(restored.phase_holds), 'hold')} in force",
        ]
        if removed:
            parts.append("removed " + ", ".join(removed))
        return safety, "; ".join(parts) + f"; safety checkpoint {safety.id}"

    # --- gates -------------------------------------------------------------------------------------------

    def sign_gate(
        self, phase_id: str, decision: str, operator: str, reason: str | None, t: float
    ) -> tuple[Gate, str]:
        """Record an operator's go/no-go on a phase's gate, beside (never instead of) the computed one."""
        if decision not in ("go", "no-go"):
            raise Invalid(f"decision must be go or no-go, not {decision!r}")
        phase = self._phase(phase_id, t)
        if phase.status == "done":
            signed = phase.gate.signed
            by = f": signed {signed.decision.upper()} by {signed.operator}" if signed else ""
            raise Conflict(f"phase {phase_id} is done; its gate is closed{by}")
        if phase.status == "pending":
            raise Conflict(f"phase {phase_id} has not started; its gate is judged once it runs")
        signoff = GateSignoff(decision=decision, operator=operator, at=t, reason=reason)  # type: ignore[arg-type]
        self.signoffs[phase_id] = signoff
        computed = phase.gate.decision.upper()
        self.node.write_log(
            t,
            "info",
            "node",
            f"gate of {phase.name} signed {decision.upper()} by {operator} (computed: {computed})"
            + (f": {reason}" if reason else ""),
            {"phase": phase_id, "decision": decision, "computed": phase.gate.decision},
        )
        gate = msgspec.structs.replace(phase.gate, signed=signoff)
        return gate, f"signed {decision.upper()}; the figures say {computed}"
