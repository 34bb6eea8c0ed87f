"""Job logs as fleetdeck log records, by polling ``GET /api/jobs/{id}/logs`` (the dashboard's ``/logs/tail``
is a websocket, which this backend does not speak).

Ray's logs have no sequence numbers, so this backend numbers them: each new complete line of a job gets
the next seq, strictly increasing for this backend instance, and every record handed out is kept (a
bounded buffer) so ``logs(since_seq=N)`` resumes after N without repeats. A job's status changes are
records too ("job X SUCCEEDED"), so a follower sees a job end. A job whose final status was seen and whose
log was read after it is not asked again.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backends.errors import NotFound
from backends.model import LogLevel, LogRecord

from . import jobs as job_model
from .client import RayClient

Sleep = Callable[[float], Awaitable[None]]
KEEP_RECORDS = 20_000
# "2026-11-21 17:47:36,868\tINFO job_manager.py:581 -- ...": Ray's own lines name their level
_RAY_LEVEL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
# "[2026-11-21 17:47:59,550 E 10491 10491] logging.cc:474: ...": Ray's C++ (glog) lines
_GLOG_LEVEL = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ ([DIWEF]) \d+")
_GLOG_LEVELS: dict[str, LogLevel] = {"D": "debug", "I": "info", "W": "warning", "E": "error", "F": "critical"}
_PY_ERROR = re.compile(r"^(Traceback \(most recent call last\)|[A-Za-z_.]*(Error|Exception)\b:)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STATUS_LEVEL: dict[str, LogLevel] = {"FAILED": "error", "STOPPED": "warning"}


class JobLogs:
    def __init__(
        self,
        client: RayClient,
        *,
        state_dir: Path,
        clock: Callable[[], float],
        sleep: Sleep,
        poll_s: float,
        max_jobs: int,
    ) -> None:
        self._state_dir = state_dir
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._max_jobs = max_jobs
        self._records: deque[LogRecord] = deque(maxlen=KEEP_RECORDS)
        self._seq = 0
        self._lines_read: dict[str, int] = {}
        self._status: dict[str, str] = {}
        self._finished: set[str] = set()  # jobs whose final log has been read
        self._lock = asyncio.Lock()  # two followers of one backend must not number the same lines twice

    async def records(self, since_seq: int, follow: bool) -> AsyncIterator[LogRecord]:
        cursor = since_seq
        while True:
            await self.poll()
            for record in list(self._records):
                if record.seq > cursor:
                    cursor = record.seq
                    yield record
            if not follow:
                return
            await self._sleep(self._poll_s)

    async def poll(self) -> None:
        async with self._lock:
            listed = await self._client.get_json("/api/jobs/")
            jobs = job_model.ordered(listed if isinstance(listed, list) else [], self._max_jobs)
            for job in jobs:
                await self._read_job(job)

    async def _read_job(self, job: dict[str, Any]) -> None:
        ident = job_model.job_id(job)
        if ident is None or ident in self._finished or job.get("type", "SUBMISSION") != "SUBMISSION":
            return  # a plain driver's logs are not served by the job API
        status = str(job.get("status") or "")
        final = not job_model.is_running(job)
        try:
            answer = await self._client.get_json(f"/api/jobs/{quote(ident, safe='')}/logs")
        except NotFound:
            return  # deleted between the listing and now
        text = answer.get("logs") if isinstance(answer, dict) else None
        lines = str(text or "").split("\n")
        # the last piece is a line still being written, unless the job is over
        complete = lines if final else lines[:-1]
        if complete and complete[-1] == "":
            complete = complete[:-1]
        start = self._lines_read.get(ident, 0)
        for line in complete[start:]:
            self._add(ident, _clean(line), _level(line), {"job": ident})
        self._lines_read[ident] = max(start, len(complete))
        if self._status.get(ident) != status:
            self._status[ident] = status
            message = f"job {ident} {status}"
            if job.get("message") and final:
                message += f": {str(job['message']).strip().splitlines()[0]}"
            self._add(ident, message, _STATUS_LEVEL.get(status, "info"), {"job": ident, "status": status})
        if final:
            self._finished.add(ident)

    def _add(self, source: str, message: str, level: LogLevel, fields: dict[str, Any]) -> None:
        self._seq += 1
        self._records.append(
            LogRecord(
                seq=self._seq, ts=self._clock(), level=level, source=source, message=message, fields=fields
            )
        )


def _clean(line: str) -> str:
    return _ANSI.sub("", line).rstrip("\r")


def _level(line: str) -> LogLevel:
    if match := _RAY_LEVEL.match(line):
        return match.group(1).lower()  # type: ignore[return-value]
    if match := _GLOG_LEVEL.match(line):
        return _GLOG_LEVELS[match.group(1)]
    if _PY_ERROR.match(line):
        return "error"
    return "info"
