"""From mapped batches to store writes: what needs memory across requests lives here.

- the last minute of each agent's requests (latency samples, errors) gives ``request_latency_p50_ms`` /
  ``_p95_ms`` and ``error_ratio``; ``requests_total`` / ``errors_total`` count them;
- a cumulative series' total is the sum of its series' latest values (restart-safe: nothing is added up
  here, and a series that starts again reads as a counter reset, which the store's rates handle);
- a cumulative histogram's buckets are diffed against the last ones seen;
- tokens: when an agent sends token metrics, its spans' ``gen_ai.usage.*`` are not counted again;
- bounds: at most ``max_kpis`` KPI names per agent (the rest refused, counted), ``max_agents`` agents of
  kind "otel" (the store enforces it in the write's transaction).

Not thread-safe: one ``take`` at a time (the receiver runs them on one thread, in the order their
requests were mapped; the mapping itself runs elsewhere, mapper_pool.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from backends.kpis import percentile
from backends.local.store import Store
from backends.local.store_telemetry import TelemetryResult, TelemetryWrite

from .mapping import TOKEN_KPIS, AgentData, Batch
from .wire import Signal

WINDOW_S = 60.0
MAX_SAMPLES_PER_AGENT = 10_000
MAX_SAMPLES_PER_HISTOGRAM = 1_000
DEFAULT_MAX_AGENTS = 1_000
DEFAULT_MAX_KPIS = 32
# How long a request may wait for the store's write lock before the receiver answers 503: under the 10 s an
# OTel SDK exporter waits for a reply by default (OTEL_EXPORTER_OTLP_TIMEOUT), so the exporter hears "retry"
# and never gives up on a request that the store commits afterwards (its retry would then be a duplicate).
STORE_WAIT_S = 4.0


@dataclass(frozen=True)
class Outcome:
    records: int  # spans, data points or log records read
    rejected: int  # of those, refused (an agent past the limit, a KPI past the limit)
    message: str  # why, for the partial-success reply; "" when all was taken
    result: TelemetryResult | None
    refused_agents: tuple[str, ...] = ()


class Ingestor:
    def __init__(
        self,
        store: Store,
        *,
        max_agents: int = DEFAULT_MAX_AGENTS,
        max_kpis: int = DEFAULT_MAX_KPIS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.max_agents = max_agents
        self.max_kpis = max_kpis
        self._clock = clock
        self._windows: dict[str, deque[tuple[float, float | None, bool]]] = {}
        self._series: dict[str, dict[str, dict[str, tuple[float, str]]]] = {}  # agent -> kpi -> series
        self._histograms: dict[str, tuple[int, ...]] = {}
        self._token_metrics: set[str] = set()
        self._span_samples: set[str] = set()
        self._kpi_names: dict[str, set[str]] = {}

    def now(self) -> float:
        return self._clock()

    def take(self, signal: Signal, batch: Batch, now: float) -> Outcome:
        """Store one mapped export request, mapped at ``now`` (StoreError and sqlite3 errors propagate:
        nothing of the request was stored then, and the client may send it again)."""
        writes: list[TelemetryWrite] = []
        over_limit = 0
        for data in batch.agents.values():
            write, dropped = self._write_of(data, now, signal)
            writes.append(write)
            over_limit += dropped
        if not writes:
            return Outcome(batch.records, 0, "", None)
        result = self.store.record_telemetry(writes, max_agents=self.max_agents, within_s=STORE_WAIT_S)
        refused = set(result.refused)
        for agent_id in refused:
            self._forget(agent_id)
        rejected = sum(batch.agents[agent_id].records for agent_id in refused)
        notes = []
        if refused:
            notes.append(
                f"{rejected} records of {len(refused)} new agents refused: this receiver keeps at most "
                f"{self.max_agents} OTLP agents (--max-agents)"
            )
        if over_limit:
            notes.append(f"{over_limit} figures refused: an agent keeps at most {self.max_kpis} KPIs")
        return Outcome(batch.records, rejected + over_limit, "; ".join(notes), result, tuple(sorted(refused)))

    def _forget(self, agent_id: str) -> None:
        for table in (self._windows, self._series, self._kpi_names):
            table.pop(agent_id, None)
        self._token_metrics.discard(agent_id)
        self._span_samples.discard(agent_id)

    def _write_of(self, data: AgentData, now: float, signal: Signal) -> tuple[TelemetryWrite, int]:
        agent = data.agent_id
        if data.token_metrics:
            self._token_metrics.add(agent)
        increments = dict(data.increments)
        if agent not in self._token_metrics:
            for kpi, tokens in data.span_tokens.items():
                before = increments.get(kpi, (0.0, "tokens"))[0]
                increments[kpi] = (before + tokens, "tokens")
        figures: dict[str, tuple[float, str, str]] = {
            name: (value, unit, "gauge") for name, (value, unit) in data.gauges.items()
        }
        if data.cumulative:
            series = self._series.setdefault(agent, {})
            for (kpi, key), latest in data.cumulative.items():
                series.setdefault(kpi, {})[key] = latest
            for kpi in {kpi for kpi, _ in data.cumulative}:
                values = series[kpi].values()
                unit = next(iter(values))[1]
                figures[kpi] = (sum(value for value, _ in values), unit, "counter")
        samples = list(data.samples)
        if samples:
            self._span_samples.add(agent)
        elif data.histograms and agent not in self._span_samples:
            samples = self._histogram_samples(data, now)
        self._judge_requests(agent, samples, now, increments, figures)
        dropped = self._bound_kpis(agent, increments, figures)
        write = TelemetryWrite(agent, data.labels, increments, figures, data.logs)
        return write, dropped

    def _judge_requests(
        self,
        agent: str,
        samples: list[tuple[float, float | None, bool]],
        now: float,
        increments: dict[str, tuple[float, str]],
        figures: dict[str, tuple[float, str, str]],
    ) -> None:
        window = self._windows.get(agent)
        if samples:
            if window is None:
                window = self._windows[agent] = deque(maxlen=MAX_SAMPLES_PER_AGENT)
            # judged by when they arrived: a client's clock may be minutes off, and its batches late
            window.extend((now, ms, failed) for _, ms, failed in samples)
            errors = sum(1 for _, _, failed in samples if failed)
            increments["requests_total"] = (float(len(samples)), "count")
            increments["errors_total"] = (float(errors), "count")
        if window is None:
            return
        while window and window[0][0] < now - WINDOW_S:
            window.popleft()
        if not samples:
            return  # nothing new: the figures last stored stand, aging as the store's do
        recent = list(window)
        failed = sum(1 for _, _, error in recent if error)
        figures["error_ratio"] = (failed / len(recent), "ratio", "gauge")
        durations = sorted(ms for _, ms, _ in recent if ms is not None)
        if durations:
            figures["request_latency_p50_ms"] = (percentile(durations, 50), "ms", "gauge")
            figures["request_latency_p95_ms"] = (percentile(durations, 95), "ms", "gauge")

    def _histogram_samples(self, data: AgentData, now: float) -> list[tuple[float, float | None, bool]]:
        samples: list[tuple[float, float | None, bool]] = []
        for series, temporality, bounds, counts, _at in data.histograms:
            if temporality != 1:  # cumulative: what arrived since the last export of this series
                previous = self._histograms.get(series)
                self._histograms[series] = counts
                if previous is not None and len(previous) == len(counts):
                    diffs = tuple(now_c - then_c for now_c, then_c in zip(counts, previous, strict=True))
                    if min(diffs, default=0) >= 0:
                        counts = diffs
            total = sum(counts)
            if not total or len(counts) != len(bounds) + 1:
                continue
            scale = min(1.0, MAX_SAMPLES_PER_HISTOGRAM / total)
            for index, count in enumerate(counts):
                if not count:
                    continue
                value = _bucket_value(bounds, index)
                samples += [(now, value, False)] * max(1, round(count * scale))
        return samples

    def _bound_kpis(
        self,
        agent: str,
        increments: dict[str, tuple[float, str]],
        figures: dict[str, tuple[float, str, str]],
    ) -> int:
        names = self._kpi_names.setdefault(agent, set())
        dropped = 0
        for table in (figures, increments):
            for name in list(table):
                if name in names:
                    continue
                if len(names) >= self.max_kpis and name not in TOKEN_KPIS:
                    del table[name]
                    dropped += 1
                    continue
                names.add(name)
        return dropped


def _bucket_value(bounds: tuple[float, ...], index: int) -> float:
    """A bucket's midpoint; the open-ended ones their finite bound."""
    if index == 0:
        return bounds[0] if bounds else 0.0
    if index >= len(bounds):
        return bounds[-1]
    return (bounds[index - 1] + bounds[index]) / 2
