"""The reporting API for agent authors: an agent that is not started by ``fleetdeck run`` reports itself.

    from backends.local.reporter import AgentReporter

    with AgentReporter("planner-01", labels={"role": "planner"}) as agent:
        agent.heartbeat(state="running", message="planning W7")
        while (task := agent.next_task()) is not None:
            agent.wait_while_paused()               # honour an operator's pause
            if agent.should_stop:
                break
            try:
                result = work(task.payload)
            except Exception as exc:
                agent.fail(task.id, str(exc))
            else:
                agent.complete(task.id, result)
            agent.heartbeat(                        # KPIs ride along: unit and kind from the name
                progress=0.5,
                message=f"done {task.id}",
                kpis={"latency_p95_ms": 97, "success_ratio": 0.9993, "tokens_out_total": 12_400},
            )
        agent.kpi("cost_usd_total", 3.41)           # or one at a time, a unit given where the name has none
        agent.kpi("queue_depth", 12, unit="count")
        agent.milestone(                            # every criterion needs its actual to pass
            "w7-load-test",
            passed=True,
            criteria={"P95 latency": "97 ms", "Error rate": "0.2%", "Throughput": "1,310 rps"},
        )

Every call is one short write to the node's SQLite store, safe from many processes at once. The node judges
the agent's health from its heartbeats and error rate, so call ``heartbeat`` at least every few seconds.

A KPI's name says its unit and kind (``_ms``, ``_ratio``, ``_usd``, ``_per_hour``...; ``_total`` is a
counter, whose rate the node derives, a drop read as a restart); pass ``(value, unit)`` or ``unit=`` where
it does not. A figure the wire model refuses (NaN, an unknown unit, a bad name) raises
``backends.errors.Invalid`` naming the KPI, and nothing of that call is recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from backends.model import Kpi, Task

from .store import Store, default_state_dir


class AgentReporter:
    def __init__(
        self,
        name: str,
        *,
        state_dir: Path | str | None = None,
        labels: Mapping[str, str] | None = None,
        phase_id: str | None = None,
        workspace: Path | str | None = None,
        pid: int | None = None,
        register: bool = True,
        verify: bool = True,
    ) -> None:
        self.name = name
        # a short-lived reporter (a shell script's `fleetdeck report`) skips the integrity scan on open
        self.store = Store(Path(state_dir) if state_dir else default_state_dir(), verify=verify)
        self._paused = False
        self._stopped = False
        if register:
            self.store.register_agent(
                name,
                kind="reporting",
                state="running",
                pid=os.getpid() if pid is None else pid,
                labels=labels,
                phase_id=phase_id,
                workspace=str(Path(workspace).resolve()) if workspace else None,
            )

    # --- reporting -------------------------------------------------------------------------------------

    def heartbeat(
        self,
        *,
        state: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        current_task: str | None = None,
        kpis: Mapping[str, float | tuple[float, str]] | None = None,
    ) -> None:
        """I am alive; optionally what I am doing and what I achieve (``kpis``: {name: value} or
        {name: (value, unit)}, recorded with the heartbeat). Also picks up the operator's pause, resume and
        stop."""
        self._take_commands()
        if state is None and self._paused:
            state = "paused"
        self.store.heartbeat(
            self.name,
            state=state,
            progress=progress,
            message=message,
            current_task=current_task,
            kpis=kpis,
        )

    def kpi(self, name: str, value: float, unit: str | None = None, *, at: float | None = None) -> Kpi:
        """Report one KPI figure (measured ``at``, default now); its unit defaults to what the name
        implies. Returns it as stored, with a counter's rate."""
        given: float | tuple[float, str] = value if unit is None else (value, unit)
        return self.store.record_kpis(self.name, {name: given}, at=at)[0]

    def log(self, level: str, message: str, **fields: Any) -> None:
        self.store.log(self.name, level, message, **fields)

    def milestone(
        self,
        milestone_id: str,
        *,
        passed: bool | None = None,
        criteria: Mapping[str, str | float] | None = None,
    ) -> None:
        """Mark a milestone passed/failed (or just record criteria actuals with ``passed=None``).

        Passing is refused (Conflict, nothing recorded) while one of its criteria has no actual, counting
        those given here: a criterion nobody measured is never passed.
        """
        status = None if passed is None else ("passed" if passed else "failed")
        self.store.set_milestone(milestone_id, status, criteria or {})

    # --- work ------------------------------------------------------------------------------------------

    def next_task(self) -> Task | None:
        """The oldest task queued for this agent, now marked running; None when there is none (or paused)."""
        self._take_commands()
        if self._paused or self._stopped:
            return None
        return self.store.claim_task(self.name)

    def complete(self, task_id: str, result: Any = None) -> Task:
        return self.store.finish_task(task_id, result=result)

    def fail(self, task_id: str, error: str) -> Task:
        return self.store.finish_task(task_id, error=error)

    # --- the operator's word ---------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        self._take_commands()
        return self._paused

    @property
    def should_stop(self) -> bool:
        self._take_commands()
        return self._stopped

    def wait_while_paused(self, poll_s: float = 0.5) -> None:
        """Block while an operator has this agent paused (returns at once when not paused or stopping)."""
        while self.paused and not self._stopped:
            self.store.heartbeat(self.name, state="paused")
            time.sleep(poll_s)

    def _take_commands(self) -> None:
        for _, command in self.store.take_commands(self.name):
            if command == "pause":
                self._paused = True
            elif command == "resume":
                self._paused = False
            elif command == "stop":
                self._stopped = True

    # --- lifecycle -------------------------------------------------------------------------------------

    def close(self, state: str = "stopped", message: str | None = None) -> None:
        self.store.set_agent_state(self.name, state, message=message)
        self.store.close()

    def __enter__(self) -> AgentReporter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close("stopped")
        else:
            self.log("error", f"agent failed: {type(exc).__name__}: {exc}")
            self.close("failed", message=f"{type(exc).__name__}: {exc}")
