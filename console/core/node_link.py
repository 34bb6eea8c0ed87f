"""What the console knows of one node: its backend, the last good snapshot, how old it is, the last error,
short metric histories for the sparklines, and a bounded buffer of recent log records.

This is plain Python (no Textual): the app's workers call :meth:`NodeLink.poll` and :meth:`add_logs`;
screens read the fields. A failed poll keeps the last good snapshot so panels can show it greyed as stale.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from backends.base import Backend
from backends.errors import TimedOut
from backends.model import ENVIRONMENT_RANK, LogRecord, NodeSnapshot
from console.core.audit_trail import AuditTrail
from console.core.describe_error import describe_error
from console.core.kpi_history import KpiHistory
from console.core.kpi_rules import KpiRule, effective_rules

HISTORY_LEN = 120  # samples kept per series: two minutes at the default 1 s refresh
LOG_CAPACITY = 10_000  # lines kept per node (a second of a 10,000 lines/s flood, several minutes of most)
# Lines kept across the whole fleet: a hundred nodes keep 1,000 each rather than a million lines in all
# (a line with its fields is about 400 bytes; the log buffers were most of a big fleet's memory).
FLEET_LOG_BUDGET = 100_000
MIN_LOG_CAPACITY = 1_000
KPI_SEED_WINDOW_S = 600.0  # KPI history asked of the node when first reached: past any usual for_s


def fleet_log_capacity(nodes: int) -> int:
    """Lines to keep per node when ``nodes`` nodes are watched."""
    return max(MIN_LOG_CAPACITY, min(LOG_CAPACITY, FLEET_LOG_BUDGET // max(nodes, 1)))


@dataclass(frozen=True)
class Freshness:
    kind: str  # live | stale | offline | connecting | frozen
    text: str


def offline_after(refresh_s: float) -> float:
    """How long a node that only times out is shown stale before it is called offline."""
    return max(10 * refresh_s, 30.0)


class NodeLink:
    def __init__(
        self,
        name: str,
        backend: Backend,
        *,
        clock: Callable[[], float],
        environment: str | None = None,
        read_only: bool = False,
        read_only_reason: str | None = None,
        log_capacity: int = LOG_CAPACITY,
        kpi_rules: Sequence[KpiRule] = (),
    ) -> None:
        self.name = name
        self.backend = backend
        self.clock = clock
        self._environment = environment
        self._read_only = read_only
        self._read_only_reason = read_only_reason
        self.snapshot: NodeSnapshot | None = None
        self.received_at: float | None = None
        self.error: str | None = None
        self.timed_out = False  # the last poll failed by timing out: slow, not known dead
        self.cpu_history: deque[float] = deque(maxlen=HISTORY_LEN)
        self.mem_history: deque[float] = deque(maxlen=HISTORY_LEN)
        self.gpu_history: dict[int, dict[str, deque[float]]] = {}
        self.logs: deque[LogRecord] = deque(maxlen=log_capacity)
        self.log_error: str | None = None
        self.audit = AuditTrail()  # fetched by the Audit screen, not by the poll loop
        # the config's [[kpis]] (the built-in rules fill in the rest) and the figures they are judged on
        self.kpi_rules: tuple[KpiRule, ...] = tuple(kpi_rules)
        self.kpis = KpiHistory(rules=self.kpi_rules, node=name)  # judged as the alerts name the node
        self.kpis_seeded = False  # the node's own KPI history was asked for (once, see seed_kpis)
        # ... and handed over: only then is a breach's hold known from before the console's first look
        self.kpi_history_read = False
        self.kpi_history_error: str | None = None  # why it was not, where the node failed to hand it over
        self._opened = False

    # A remote node only says who it is once connected, so these are read from the backend each time.

    @property
    def environment(self) -> str:
        """The stricter of the configured environment and the one the node reports: a node that calls
        itself production is framed and guarded as production even where the config forgot to say so."""
        reported = self.backend.info.environment
        if self._environment is None:
            return reported
        return max(self._environment, reported, key=lambda env: ENVIRONMENT_RANK.get(env, 0))

    @property
    def read_only(self) -> bool:
        return self._read_only or self.backend.info.read_only

    @property
    def read_only_reason(self) -> str | None:
        """Why actions are off, in words for the footer, Help and refusals."""
        if self._read_only:
            return self._read_only_reason or "read-only"
        if self.backend.info.read_only:
            return self.backend.read_only_reason or f"node {self.name} reports itself read-only"
        return None

    # --- snapshots -------------------------------------------------------------------------------------

    async def poll(self, timeout: float) -> bool:
        """Fetch one snapshot; on any failure keep the last good one and remember why. Never raises."""
        try:
            if not self._opened:
                await asyncio.wait_for(self.backend.open(), timeout)
                self._opened = True
            snapshot = await asyncio.wait_for(self.backend.snapshot(), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a backend may fail in any way; the console must stay up
            self.error = describe_error(exc)
            self.timed_out = isinstance(exc, (TimeoutError, TimedOut))
            return False
        if not self.kpis_seeded:
            longest = max((rule.for_s for rule in effective_rules(self.kpi_rules)), default=0.0)
            await self.seed_kpis(window_s=max(KPI_SEED_WINDOW_S, 2 * longest), timeout=timeout)
        self.record(snapshot)
        return True

    async def seed_kpis(self, window_s: float, timeout: float) -> None:
        """Fill the KPI history from the node's own (once), so a breach that began before the console
        started is dated right and a trend has a past. A node that keeps none, or fails to hand it over in
        time, is judged from what the console sees from now on."""
        self.kpis_seeded = True
        if not self.backend.supports("kpi_history"):
            return
        try:
            since = self.clock() - window_s
            series = await asyncio.wait_for(self.backend.kpi_history(since), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a history that cannot be read leaves the live figures to judge by
            self.kpi_history_error = describe_error(exc)
            return
        self.kpis.seed(series)
        self.kpi_history_read = True

    def record(self, snapshot: NodeSnapshot) -> None:
        self.snapshot = snapshot
        self.received_at = self.clock()
        self.error = None
        self.timed_out = False
        self.kpis.observe(snapshot)
        system = snapshot.system
        if system.cpu_percent is not None:
            self.cpu_history.append(system.cpu_percent)
        if system.mem_used is not None and system.mem_total:
            self.mem_history.append(100.0 * system.mem_used / system.mem_total)
        for gpu in snapshot.gpus:
            series = self.gpu_history.setdefault(
                gpu.index, {"util": deque(maxlen=HISTORY_LEN), "mem": deque(maxlen=HISTORY_LEN)}
            )
            if gpu.util_percent is not None:
                series["util"].append(gpu.util_percent)
            if gpu.mem_used is not None and gpu.mem_total:
                series["mem"].append(100.0 * gpu.mem_used / gpu.mem_total)

    def freshness(self, refresh_s: float, frozen: bool = False) -> Freshness:
        if self.snapshot is None:
            return (
                Freshness("offline", f"offline: {self.error}")
                if self.error
                else Freshness("connecting", "connecting…")
            )
        age = self.clock() - (self.received_at or 0.0)
        if self.error and not (self.timed_out and age < offline_after(refresh_s)):
            return Freshness("offline", f"offline: {self.error}")
        if self.error:  # a slow node: its last data is still the best there is, for a while
            return Freshness("stale", f"stale {age:.0f}s · {self.error}")
        if frozen:
            return Freshness("live", "live")
        if age > max(3 * refresh_s, 5.0):
            return Freshness("stale", f"stale {age:.0f}s")
        return Freshness("live", "live")

    # --- logs ------------------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self.logs[-1].seq if self.logs else 0

    def add_logs(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            self.add_log(record)

    def add_log(self, record: LogRecord) -> bool:
        """Buffer one record unless it is at or below the newest seq; False if it was dropped so. The log
        worker calls this for every line a following stream yields (thousands a second in a flood)."""
        logs = self.logs
        if logs and record.seq <= logs[-1].seq:
            return False
        logs.append(record)
        return True

    def logs_since(self, seq: int) -> Iterator[LogRecord]:
        """Records newer than ``seq``, oldest first, without copying the whole buffer."""
        newer: list[LogRecord] = []
        for record in reversed(self.logs):
            if record.seq <= seq:
                break
            newer.append(record)
        return reversed(newer)
