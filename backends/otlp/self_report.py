"""The receiver as an agent of its own store (``otlp``): alive while it listens, with what it took as KPIs.

So its state needs no new machinery to be seen: the fleet shows it running (or stale, if it hangs), and its
figures say what it took and refused. When it refuses new agents (a client naming too many: the
cardinality bound), ``otlp_refused_agents`` rises above 0, which a built-in KPI rule turns into an alert,
and an error line names the limit and how to raise it (at most once a minute, so a flood stays one line).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from backends.local.store import Store

from .ingest import Outcome
from .wire import Signal

AGENT_ID = "otlp"
REPORT_EVERY_S = 5.0
REFUSED_WINDOW_S = 300.0
ERROR_LINE_EVERY_S = 60.0
_RECORD_KPIS: dict[Signal, str] = {
    "traces": "otlp_spans_total",
    "metrics": "otlp_data_points_total",
    "logs": "otlp_log_records_total",
}


class ReceiverReport:
    def __init__(
        self, store: Store, *, listen: str, max_agents: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.listen = listen
        self.max_agents = max_agents
        self._clock = clock
        counted = [*_RECORD_KPIS.values(), "otlp_rejected_total", "otlp_busy_replies_total"]
        self.counts: dict[str, float] = dict.fromkeys([*counted, "otlp_store_errors_total"], 0.0)
        self._refused: deque[tuple[float, str]] = deque(maxlen=100_000)
        self._last_error_line = -ERROR_LINE_EVERY_S
        self._store_problem: str | None = None

    # --- called by the receiver (event loop) ------------------------------------------------------------

    def taken(self, signal: Signal, outcome: Outcome) -> None:
        self.counts[_RECORD_KPIS[signal]] += outcome.records - outcome.rejected
        self.counts["otlp_rejected_total"] += outcome.rejected
        now = self._clock()
        self._refused.extend((now, agent_id) for agent_id in outcome.refused_agents)
        self._store_problem = None

    def busy(self) -> None:
        self.counts["otlp_busy_replies_total"] += 1

    def store_failed(self, detail: str) -> None:
        self.counts["otlp_store_errors_total"] += 1
        self._store_problem = detail

    # --- its own reports (worker threads) -----------------------------------------------------------------

    def refused_agents(self, now: float) -> int:
        while self._refused and self._refused[0][0] < now - REFUSED_WINDOW_S:
            self._refused.popleft()
        return len({agent_id for _, agent_id in self._refused})

    def start(self) -> None:
        labels = {"source": "fleetdeck", "role": "otlp-receiver", "listen": self.listen}
        self.store.register_agent(AGENT_ID, kind="reporting", state="running", labels=labels)
        self.store.heartbeat(AGENT_ID, message=f"receiving OTLP/HTTP on {self.listen}")

    def beat(self) -> None:
        now = self._clock()
        refused = self.refused_agents(now)
        message = f"receiving OTLP/HTTP on {self.listen}"
        if refused:
            message = (
                f"refusing new agents: {refused} in the last 5 min past the limit of {self.max_agents} "
                "OTLP agents (--max-agents)"
            )
        elif self._store_problem:
            message = f"the store refused a write: {self._store_problem}"
        kpis: dict[str, float | tuple[float, str]] = {name: (n, "count") for name, n in self.counts.items()}
        kpis["otlp_refused_agents"] = (float(refused), "count")
        self.store.heartbeat(AGENT_ID, state="running", message=message, kpis=kpis)
        if refused and now - self._last_error_line >= ERROR_LINE_EVERY_S:
            self._last_error_line = now
            self.store.log(
                AGENT_ID,
                "error",
                f"refused the records of {refused} new agents in the last 5 min: this receiver keeps at most "
                f"{self.max_agents} OTLP agents; raise --max-agents, or make the client name fewer agents "
                "(service.name, gen_ai.agent.name)",
                refused_agents=refused,
                max_agents=self.max_agents,
            )

    async def run(self) -> None:
        await asyncio.to_thread(self.start)
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            try:
                await asyncio.to_thread(self.beat)
            except Exception as exc:  # the store busy or gone for a moment: the next beat tries again
                self._store_problem = f"{type(exc).__name__}: {exc}"

    def stopped(self) -> None:
        # stopping anyway: a store that cannot be written says nothing worth a traceback
        with contextlib.suppress(Exception):
            self.store.set_agent_state(AGENT_ID, "stopped", message="receiver stopped")
