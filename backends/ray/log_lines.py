"""One line of a Ray log file, read: its level, its own time where it states one, and who printed it.

Ray's files carry no record structure, only text, so all of this is read from the line itself:

* Ray's Python lines (``2026-12-02 06:14:12,291\tINFO job_manager.py:581 -- ...``) and C++ lines
  (``[2026-12-02 06:14:16,353 E 10491 10491] logging.cc:474: ...``) state a level and a time;
* Python's own ``WARNING:root:...`` / ``ERROR:...`` prefixes (logging's default format), a
  ``warnings.warn`` line (``file.py:3: UserWarning: ...``) and a traceback state a level;
* a driver's copy of worker output (``(Printer pid=7681) actor line 0``) names the worker;
* worker files open with Ray's markers (``:job_id:02000000``, ``:actor_name:Printer``), not output.

Everything else is ``info`` with no time of its own: the reader stamps it with the time it fetched it and
says so (:data:`FETCHED`), rather than passing the fetch time off as the time the line was written.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from backends.model import TIME_FETCHED, LogLevel

#: ``fields["time"]`` of a line whose ts is when fleetdeck fetched it: Ray gave the line no time
FETCHED = TIME_FETCHED

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RAY_PY = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d+)\s+(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\b"
)
_RAY_GLOG = re.compile(r"^\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d+) (?P<level>[DIWEF]) \d+")
_GLOG_LEVELS: dict[str, LogLevel] = {"D": "debug", "I": "info", "W": "warning", "E": "error", "F": "critical"}
_PY_LOGGING = re.compile(r"^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):")
_PY_WARNING = re.compile(r"^\S+:\d+: [A-Za-z_]*Warning: ")
_PY_ERROR = re.compile(r"^(Traceback \(most recent call last\)|[A-Za-z_.]*(Error|Exception)\b:)")
# "(Printer pid=7681)" or "(f pid=7680, ip=10.0.0.2)": Ray's log monitor copying a worker's line
_WORKER_ECHO = re.compile(r"^\((?P<name>[^()]*?) pid=(?P<pid>\d+)(?:, ip=[0-9a-fA-F.:]+)?\) ?")
_CHAINED = re.compile(r"^(During handling of the above exception|The above exception was the direct cause)")
_MARKER = re.compile(r"^:(job_id|actor_name|task_name|task_attempt_start|task_attempt_end):")


@dataclass(frozen=True)
class ReadLine:
    message: str
    level: LogLevel
    ts: float | None  # the time the line states (UTC epoch), or None
    worker_pid: int | None = None  # a driver's copy of this worker's output
    worker: str | None = None


def clean(line: str) -> str:
    return _ANSI.sub("", line).rstrip("\r")


def is_marker(line: str) -> bool:
    """Ray's own bookkeeping at the top of a worker file, not anything the worker printed."""
    return bool(_MARKER.match(line))


def read_line(raw: str) -> ReadLine:
    line = clean(raw)
    worker_pid: int | None = None
    worker: str | None = None
    body = line
    if echo := _WORKER_ECHO.match(line):
        worker_pid, worker = int(echo.group("pid")), echo.group("name")
        body = line[echo.end() :]
    level, ts = _level_and_time(body)
    return ReadLine(message=line, level=level, ts=ts, worker_pid=worker_pid, worker=worker)


class SourceReader:
    """Reads one source's lines in order, so a traceback is an error from its first line to its last
    (its ``File ...`` and source lines alone say nothing), chained tracebacks included."""

    def __init__(self) -> None:
        self._in_traceback = False

    def read(self, raw: str) -> ReadLine:
        read = read_line(raw)
        body = read.message if read.worker_pid is None else _WORKER_ECHO.sub("", read.message, count=1)
        if body.startswith("Traceback (most recent call last)"):
            self._in_traceback = True
        elif self._in_traceback:
            if body[:1].isspace() or not body or _CHAINED.match(body):
                return _as_error(read)
            self._in_traceback = False  # the exception line itself ends it
            return _as_error(read)
        return read


def _as_error(read: ReadLine) -> ReadLine:
    return ReadLine(read.message, "error", read.ts, read.worker_pid, read.worker)


def _level_and_time(line: str) -> tuple[LogLevel, float | None]:
    if match := _RAY_PY.match(line):
        return match.group("level").lower(), _epoch(match.group("ts"), match.group("ms"))  # type: ignore[return-value]
    if match := _RAY_GLOG.match(line):
        return _GLOG_LEVELS[match.group("level")], _epoch(match.group("ts"), match.group("ms"))
    if match := _PY_LOGGING.match(line):
        return match.group("level").lower(), None  # type: ignore[return-value]
    if _PY_WARNING.match(line):
        return "warning", None
    if _PY_ERROR.match(line):
        return "error", None
    return "info", None


def _epoch(stamp: str, millis: str) -> float | None:
    """Ray writes its lines' times in the machine's local time, with no zone: read them as this
    machine's local time (a head and its console usually share one; where they do not, the line is off
    by the zones' difference, not silently by an unknown amount)."""
    try:
        parsed = time.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    local = time.mktime(parsed)
    return local + int(millis[:3].ljust(3, "0")) / 1000
