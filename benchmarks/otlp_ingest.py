"""OTLP ingest: the real ``fleetdeck otlp`` (its own process and its mapper process, uvicorn on 127.0.0.1,
its own state dir) offered 12,500 spans a second and 25,000 log records a second together for 25 s, from
20 agents. The targets are 10,000 and 20,000 stored a second: offering a quarter more than that shows
whether the receiver has the room, where offering exactly the target could only ever come close to it.

Two sender processes (``benchmarks.otlp_clients``), one for traces and one for logs, send serialized
protobuf export requests of 512 records each with real httpx, paced, one export in flight per agent, as
the SDKs' batch processors and OTLP/HTTP exporters do; 429 and 503 are retried after their Retry-After.
Spans are GenAI model calls (``gen_ai.operation.name`` chat, a model, input and output tokens; one in 50
failed); log records carry a ``bench.seq`` unique in the run.

Once the senders are done the receiver is stopped and its store read with sqlite3:

- ``spans_stored``: the sum of every bench agent's ``requests_total`` (each chat span is one request);
  ``error_spans_stored`` its ``errors_total``;
- ``logs_stored``: distinct ``bench.seq`` among the log lines (a failed span's line has none);
- ``*_lost``: sent (answered 200) minus stored; ``*_per_s``: stored over the time from the first send to
  the last reply; ``latency_*_ms``: the round trip of each export request (send to reply: the reply waits
  for the commit); ``retries``: 429/503 replies; ``receiver_cpu_percent``: the CPU of the receiver and
  its mapper processes over that time (100 = one core), ``mapper_cpu_percent`` the mappers' part of it;
  ``receiver_rss_mb``: their memory together at the end.

Log retention is raised for the receiver (FLEETDECK_LOG_MAX_RECORDS) above what a run writes, so no record
is pruned before it is counted.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from benchmarks.measure import Target, ms, quantile
from benchmarks.otlp_clients import Plan, sender
from benchmarks.served_node import ROOT, isolated_env

TITLE = "OTLP ingest: 12,500 spans/s and 25,000 log records/s offered, 20 agents, 512 per request"


class AtLeast(Target):
    """A figure's goal from below: at least ``limit``."""

    def met(self, value: float) -> bool:
        return not math.isnan(value) and value >= self.limit


class Recorded(Target):
    """A figure that is only measured, not judged: met when there is one."""

    def __init__(self, label: str) -> None:
        super().__init__(0, label)

    def met(self, value: float) -> bool:
        return not math.isnan(value)


TARGETS: dict[str, Target] = {
    "spans_per_s": AtLeast(10_000, ">= 10,000 spans/s stored"),
    "logs_per_s": AtLeast(20_000, ">= 20,000 log records/s stored"),
    "spans_lost": Target(0, "no span lost", inclusive=True),
    "logs_lost": Target(0, "no log record lost", inclusive=True),
    "latency_p99_ms": Recorded("p99 ingest latency recorded"),
}
AGENTS = 20
BATCH = 512
FULL = (12_500.0, 25_000.0, 25.0)  # spans a second, log records a second, seconds: offered
QUICK = (2_000.0, 4_000.0, 2.0)
LEAD_S = 0.3  # from go to the first send: both senders start on the same schedule
STARTUP_LINE = re.compile(r"^fleetdeck otlp: receiving on (?P<url>https?://\S+)$")
LOG_RETENTION = 5_000_000


class Receiver:
    """``python -m console otlp --listen 127.0.0.1:0 --state-dir DIR`` until the context ends (SIGTERM)."""

    def __init__(self, state_dir: Path, env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.env = env
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    def __enter__(self) -> Receiver:
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        command = [sys.executable, "-m", "console", "otlp", "--listen", "127.0.0.1:0"]
        command += ["--state-dir", str(self.state_dir)]
        self.process = subprocess.Popen(
            command, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, bufsize=1,
        )  # fmt: skip
        box: list[str] = []
        got = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            box.append(self.process.stdout.readline().rstrip("\r\n"))
            got.set()
            for _ in self.process.stdout:
                pass

        threading.Thread(target=read, name="otlp-stdout", daemon=True).start()
        got.wait(30)
        match = STARTUP_LINE.match(box[0] if box else "")
        if match is None:
            text = self.stderr_text()[-2000:]
            self.stop()
            raise RuntimeError(f"`fleetdeck otlp` did not start (first line {box[:1]!r}); stderr:\n{text}")
        self.url = match["url"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._stderr is not None:
            self._stderr.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def token(self) -> str:
        return (Path(self.env["XDG_STATE_HOME"]) / "fleetdeck" / "local-operator.token").read_text().strip()

    def _processes(self) -> list[Any]:
        """The receiver, then its mapper processes."""
        import psutil

        receiver = psutil.Process(self.pid)
        return [receiver, *receiver.children(recursive=True)]

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds of the receiver and of its mappers."""
        import psutil

        spent = []
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                spent.append(float(times.user + times.system))
        return spent[0], sum(spent[1:])

    def rss_mb(self) -> float:
        import psutil

        total = 0
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return round(total / (1024 * 1024), 1)

    def stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stored(db: Path) -> dict[str, float]:
    """What the store holds of the bench agents: requests and errors counted from spans, log records."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kpis = dict(
            conn.execute(
                "SELECT name, COALESCE(SUM(value), 0) FROM kpi_latest WHERE agent_id LIKE 'bench-agent-%' "
                "AND name IN ('requests_total', 'errors_total') GROUP BY name"
            ).fetchall()
        )
        logs = conn.execute(
            """SELECT COUNT(DISTINCT json_extract(fields, '$."bench.seq"')),"""
            """ COUNT(json_extract(fields, '$."bench.seq"')) FROM logs WHERE source LIKE 'bench-agent-%'"""
        ).fetchone()
        lines = conn.execute("SELECT COUNT(*) FROM logs WHERE source LIKE 'bench-agent-%'").fetchone()[0]
    finally:
        conn.close()
    return {
        "spans": float(kpis.get("requests_total", 0.0)),
        "error_spans": float(kpis.get("errors_total", 0.0)),
        "logs": float(logs[0]),
        "log_rows": float(logs[1]),
        "lines": float(lines),
    }


def run(spans_rate: float, logs_rate: float, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    plans = [
        Plan("traces", spans_rate, seconds, BATCH, AGENTS),
        Plan("logs", logs_rate, seconds, BATCH, AGENTS),
    ]
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-otlp-") as tmp:
        home = Path(tmp)
        env = isolated_env(home)
        env["FLEETDECK_LOG_MAX_RECORDS"] = str(LOG_RETENTION)
        state_dir = home / "node"
        tallies: list[dict[str, Any]] = []
        with Receiver(state_dir, env) as receiver:
            token = receiver.token()
            go = ctx.Event()
            start_at = ctx.Value("d", 0.0)
            processes, readies, outs = [], [], []
            for plan in plans:
                ready = ctx.Event()
                out = home / f"{plan.signal}.json"
                process = ctx.Process(
                    target=sender,
                    args=(receiver.url, token, plan, str(out), ready, go, start_at),
                    daemon=True,
                )
                process.start()
                processes.append(process)
                readies.append(ready)
                outs.append(out)
            try:
                for ready, process in zip(readies, processes, strict=True):
                    while not ready.wait(0.2):
                        if not process.is_alive():
                            raise RuntimeError(f"a sender exited ({process.exitcode}) before it was ready")
                cpu_before = receiver.cpu_seconds()
                start_at.value = time.time() + LEAD_S
                go.set()
                for process in processes:
                    process.join(seconds + 600)
                cpu_after = receiver.cpu_seconds()
                rss = receiver.rss_mb()
            finally:
                for process in processes:
                    if process.is_alive():
                        process.kill()
                        process.join()
            for process, out in zip(processes, outs, strict=True):
                if process.exitcode != 0 or not out.exists():
                    raise RuntimeError(f"a sender failed (exit {process.exitcode})")
                tallies.append(json.loads(out.read_text()))
        counts = stored(state_dir / "fleetdeck.db")
    spans, logs = tallies
    first = min(t["first_send"] for t in tallies)
    last = max(t["last_reply"] for t in tallies)
    wall = max(last - first, 1e-9)
    latencies = spans["latencies"] + logs["latencies"]
    return {
        "spans_sent": float(spans["sent"]),
        "spans_stored": counts["spans"],
        "spans_lost": spans["sent"] - counts["spans"],
        "error_spans_sent": float(spans["failed_sent"]),
        "error_spans_stored": counts["error_spans"],
        "logs_sent": float(logs["sent"]),
        "logs_stored": counts["logs"],
        "logs_lost": logs["sent"] - counts["logs"],
        "logs_stored_twice": counts["log_rows"] - counts["logs"],
        "spans_per_s": round(counts["spans"] / wall, 1),
        "logs_per_s": round(counts["logs"] / wall, 1),
        "offered_spans_per_s": spans_rate,
        "offered_logs_per_s": logs_rate,
        "send_wall_s": round(wall, 2),
        "latency_p50_ms": ms(quantile(latencies, 0.50)),
        "latency_p99_ms": ms(quantile(latencies, 0.99)),
        "latency_max_ms": ms(max(latencies, default=math.nan)),
        "spans_latency_p99_ms": ms(quantile(spans["latencies"], 0.99)),
        "logs_latency_p99_ms": ms(quantile(logs["latencies"], 0.99)),
        "requests": float(len(latencies)),
        "retries": float(spans["retries"] + logs["retries"]),
        "request_errors": float(len(spans["errors"]) + len(logs["errors"])),
        "receiver_cpu_percent": round(100.0 * (sum(cpu_after) - sum(cpu_before)) / wall, 1),
        "mapper_cpu_percent": round(100.0 * (cpu_after[1] - cpu_before[1]) / wall, 1),
        "receiver_rss_mb": rss,
    }


def measure(quick: bool) -> dict[str, float | str]:
    spans_rate, logs_rate, seconds = QUICK if quick else FULL
    figures: dict[str, float | str] = dict(run(spans_rate, logs_rate, seconds))
    figures["note"] = (
        f"{AGENTS} agents, {BATCH} records per request, one export in flight per agent, protobuf; "
        "senders in 2 processes on the same machine"
    )
    if quick:
        figures["quick"] = (
            f"quick mode: {spans_rate:,.0f} spans/s and {logs_rate:,.0f} logs/s for {seconds:.0f} s"
        )
    return figures
