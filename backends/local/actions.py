"""The local node's operator actions: dispatch, pause / resume / stop, checkpoint and rollback.

Every action is audited (operator, reason, outcome) whether it succeeds, is refused or fails. Managed agents
are controlled through commands queued in the store and carried out by their supervisor (the one owner of
the process); the action waits briefly for the supervisor to confirm, so "ok" means done, not merely asked.
Synchronous: the backend runs these in a worker thread.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from backends.agent_states import ALREADY, state_refusal
from backends.errors import BackendError, Conflict, Forbidden, NotFound
from backends.model import Checkpoint, DispatchRequest, Target, Task

from . import freeze, read_only
from .rollback import Rollbacks
from .store import Store
from .store_agents import validate_name
from .store_health import AgentRecord, failure_reason, pid_alive, restarting_after_failure
from .supervisor import AgentSpec, spawn_detached

CONFIRM_TIMEOUT_S = 5.0
WANTED_STATE = {"pause": "paused", "resume": "running", "stop": "stopped"}
PHASE_OVERRIDE = {"pause": "paused", "resume": None, "stop": "blocked"}
TASK_STATUS = {"pause": "paused", "resume": "queued", "stop": "cancelled"}


class Actions:
    def __init__(self, store: Store, state_dir: Path, *, node: str, read_only: bool, python: str) -> None:
        self.store = store
        self.state_dir = state_dir
        self.node = node
        self.read_only = read_only
        self.python = python

    @contextmanager
    def _audited(
        self, operator: str, action: str, target: str | None, reason: str | None, **params: object
    ) -> Iterator[dict[str, str]]:
        """Audit the block's outcome: ok, denied (Forbidden) or failed (any other error), then re-raise."""
        detail: dict[str, str] = {}
        if self.read_only:
            read_only.deny(self.store, self.node, operator, action, target, reason, **params)
        try:
            yield detail
        except BackendError as exc:
            outcome = "denied" if isinstance(exc, Forbidden) else "failed"
            self.store.audit(
                operator, action, target, outcome=outcome, params=params, reason=reason, detail=str(exc)
            )
            raise
        self.store.audit(
            operator, action, target, outcome="ok", params=params, reason=reason, detail=detail.get("text")
        )

    # --- dispatch --------------------------------------------------------------------------------------

    def dispatch(self, request: DispatchRequest, operator: str, reason: str | None) -> Task:
        target = f"agent:{request.agent_id}" if request.agent_id else None
        with self._audited(operator, "dispatch", target, reason, kind=request.kind) as detail:
            if request.agent_id is not None:
                self.store.agent_record(request.agent_id)  # NotFound names the known agents
                task = self.store.create_task(
                    request.kind, f"agent:{request.agent_id}", request.payload, operator
                )
                detail["text"] = f"{task.id} queued"
                return task
            assert request.command is not None
            name = validate_name(request.name or _derive_name(request.command[0]))
            self._refuse_live_duplicate(name)
            spec = AgentSpec(name=name, command=tuple(request.command))
            # Known before its supervisor starts: the task below must name an existing agent, and the
            # operator sees the new agent as "starting" at once.
            self.store.register_agent(name, kind="process", state="starting", command=list(request.command))
            try:
                supervisor_pid = spawn_detached(self.state_dir, spec, self.python)
            except OSError as exc:
                self.store.set_agent_state(name, "failed", message=f"cannot start its supervisor: {exc}")
                raise
            task = self.store.create_task(
                "command", f"agent:{name}", {"command": list(request.command)}, operator
            )
            task = self.store.finish_task(task.id, result={"agent": name, "supervisor_pid": supervisor_pid})
            detail["text"] = f"started agent {name} (supervisor pid {supervisor_pid})"
            return task

    def _refuse_live_duplicate(self, name: str) -> None:
        try:
            record = self.store.agent_record(name)
        except BackendError:
            return
        if record.state in ("running", "starting", "paused") and _supervised(record):
            raise Conflict(f"agent {name} is already running; pick another --name")

    # --- pause / resume / stop -------------------------------------------------------------------------

    def control(self, action: str, target: Target, operator: str, reason: str | None) -> None:
        with self._audited(operator, action, str(target), reason) as detail:
            if target.kind == "agent":
                detail["text"] = self._control_agent(
                    action, self.store.agent_record(target.id), operator, reason
                )
            elif target.kind == "phase":
                detail["text"] = self._control_phase(action, target.id, operator, reason)
            else:
                detail["text"] = self._control_task(action, target.id)

    def _control_agent(
        self, action: str, record: AgentRecord, operator: str, reason: str | None, *, strict: bool = True
    ) -> str:
        wanted = WANTED_STATE[action]
        state = record.state
        if record.kind == "otel":
            # It only exports telemetry: no process of ours, no reporter reading commands, so a "paused"
            # row would be a lie. Its own controls (or its operator) are the way.
            raise Conflict(
                f"agent {record.id} is known only from its OpenTelemetry: fleetdeck has no way to {action} "
                "it; nothing was changed"
            )
        if action != "stop" and restarting_after_failure(record):
            # "starting" in name only: the process failed and none runs until the backoff ends, so there
            # is nothing to freeze or continue, and a "paused" row would hide the crash loop
            restarting = f"agent {record.id} is restarting ({failure_reason(record)})"
            if action == "pause":
                raise Conflict(
                    f"{restarting}: no process runs to pause; stop it, or pause it once it runs again; "
                    "nothing was changed"
                )
            raise Conflict(f"{restarting}, not paused: there is nothing to resume; nothing was changed")
        if state in ALREADY[action]:
            if strict:
                raise Conflict(f"agent {record.id} is already {state}")
            return f"{record.id} already {state}"
        why = failure_reason(record) if state == "failed" else None
        if refusal := state_refusal(action, record.id, state, why):
            raise Conflict(f"{refusal}; nothing was changed")
        supervised = record.kind == "process" and _supervised(record)
        process_alive = record.pid is not None and pid_alive(record.pid)
        if record.kind == "process" and not supervised and not process_alive and action != "stop":
            raise Conflict(
                f"agent {record.id} has no process left (its supervisor is gone); nothing to {action}; "
                "stop it to clear it, or start it again with fleetdeck run"
            )
        if supervised:
            self.store.enqueue_command(record.id, action, operator=operator, reason=reason)
            if action == "stop":
                reached = self._await_state(record.id, {"stopped", "failed"})
            else:
                reached = self._await_state(record.id, {wanted}, or_ended=True)
            if reached is None:
                return f"{record.id}: {action} queued; the supervisor has not confirmed yet"
            if reached.state != wanted and action != "stop":
                # it ended (or began a restart) while the command was on its way: say so, never "ok"
                raise Conflict(
                    f"agent {record.id} ended ({failure_reason(reached)}) before the {action} took "
                    "effect; nothing was changed"
                )
            return f"{record.id} {wanted}"
        if record.kind == "process" and record.pid is not None and process_alive:
            # no supervisor left: act on the process group ourselves so the operator is not stuck
            _signal_group(self.state_dir, record, action)
        self.store.enqueue_command(
            record.id, action, operator=operator, reason=reason
        )  # a reporter polls these
        self.store.set_agent_state(record.id, wanted, message=f"{wanted} by {operator}")
        return f"{record.id} {wanted}"

    def _control_phase(self, action: str, phase_id: str, operator: str, reason: str | None) -> str:
        phases = {p.id: p for p in self.store.phases()}
        if phase_id not in phases:
            known = ", ".join(sorted(phases)) or "none"
            raise NotFound(f"no phase {phase_id!r} on node {self.node} (known: {known})")
        agents, *_ = self.store.snapshot_parts()
        members = [a.id for a in agents if a.phase_id == phase_id]
        results = []
        for agent_id in members:
            try:
                results.append(
                    self._control_agent(
                        action, self.store.agent_record(agent_id), operator, reason, strict=False
                    )
                )
            except Conflict as exc:  # one agent that cannot take it does not stop the rest of the phase
                results.append(str(exc))
        self.store.set_phase_status(phase_id, PHASE_OVERRIDE[action])
        return f"phase {phase_id}: {len(members)} agent(s)" + (f" ({'; '.join(results)})" if results else "")

    def _control_task(self, action: str, task_id: str) -> str:
        task = self.store.get_task(task_id)
        allowed = {
            "pause": ("queued", "running"),
            "resume": ("paused",),
            "stop": ("queued", "running", "paused"),
        }
        if task.status not in allowed[action]:
            raise Conflict(f"task {task_id} is {task.status}; cannot {action} it")
        self.store.set_task_status(task_id, TASK_STATUS[action])
        return f"task {task_id} {TASK_STATUS[action]}"

    def _await_state(self, agent_id: str, states: set[str], *, or_ended: bool = False) -> AgentRecord | None:
        """The agent's row once it is in one of ``states`` (or, ``or_ended``, has failed, stopped or begun
        a restart after a failure); None when the supervisor has not answered within CONFIRM_TIMEOUT_S."""
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        while time.monotonic() < deadline:
            record = self.store.agent_record(agent_id)
            if record.state in states:
                return record
            if or_ended and (record.state in ("failed", "stopped") or restarting_after_failure(record)):
                return record
            time.sleep(0.05)
        return None

    # --- checkpoint and rollback: rollback.py, crash-safe; pausing goes through _control_agent -------

    @property
    def rollbacks(self) -> Rollbacks:
        return Rollbacks(
            self.store, self.state_dir, node=self.node, read_only=self.read_only, control=self._control_agent
        )

    def checkpoint(
        self, label: str, operator: str, reason: str | None, *, automatic: bool = False
    ) -> Checkpoint:
        return self.rollbacks.checkpoint(label, operator, reason, automatic=automatic)

    def rollback_preview(self, checkpoint_id: str) -> list[str]:
        return self.rollbacks.preview(checkpoint_id)

    def rollback(self, checkpoint_id: str, operator: str, reason: str | None) -> Checkpoint:
        return self.rollbacks.rollback(checkpoint_id, operator, reason)

    def recover_rollback(self, operator: str, reason: str | None) -> Checkpoint | None:
        return self.rollbacks.recover(operator, reason)

    def interrupted_rollback(self) -> str | None:
        return self.rollbacks.notice()


def _supervised(record: AgentRecord) -> bool:
    return record.supervisor_pid is not None and pid_alive(record.supervisor_pid)


def _signal_group(state_dir: Path, record: AgentRecord, action: str) -> None:
    """Act on an unsupervised process's group: a pause freezes it through its gate, as a supervisor would."""
    assert record.pid is not None
    try:
        group = os.getpgid(record.pid)
    except ProcessLookupError:
        return
    if action == "pause":
        try:
            freeze.freeze_group(group, freeze.gate_path(state_dir, record.id))
        except freeze.FreezeError as exc:
            raise Conflict(f"agent {record.id}: {exc}") from None
        return
    signum = {"resume": signal.SIGCONT, "stop": signal.SIGTERM}[action]
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
        if action == "stop":
            os.killpg(group, signal.SIGCONT)  # a frozen group must run to act on its SIGTERM


def _derive_name(program: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "-", Path(program).name)[:40] or "agent"
    return f"{base}-{secrets.token_hex(2)}"
