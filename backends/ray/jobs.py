"""Ray jobs (``/api/jobs/``) as fleetdeck phases and tasks.

Every job is a phase (what the cluster is working through, in start order); a submitted job is also a
task (work dispatched to the cluster). Statuses:

  Ray        phase     task
  PENDING    pending   queued
  RUNNING    active    running
  STOPPED    stopped   cancelled    (ended on request: over, but neither a success nor a failure to raise an
                                     alert about; Ray cannot resume it, so it is not "paused")
  SUCCEEDED  done      succeeded
  FAILED     failed    failed

A job this backend stopped during a rollback is shown as the task status ``rolled_back``. A job has no
gate: its phase carries the empty default, which the console shows as none.

Why a job failed is in Ray's ``message``: its first line says how it ended ("Job entrypoint command failed
with exit code 1, last available logs (truncated to 20,000 chars):") and the rest is the tail of the job's
output. The cause an operator needs is at the end of that tail, the last lines of a Python traceback, so the
task's error and the phase's ``status_reason`` quote those: the exception and the line that raised it
("RuntimeError: boom (at job.py:3 in main: raise RuntimeError("boom"); exit code 1)").
"""

from __future__ import annotations

import re
from typing import Any

from backends.model import Phase, PhaseStatus, Task, TaskStatus

PHASE_STATUS: dict[str, PhaseStatus] = {
    "PENDING": "pending",
    "RUNNING": "active",
    "STOPPED": "stopped",
    "SUCCEEDED": "done",
    "FAILED": "failed",
}
TASK_STATUS: dict[str, TaskStatus] = {
    "PENDING": "queued",
    "RUNNING": "running",
    "STOPPED": "cancelled",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
}
OPERATOR_KEY = "fleetdeck_operator"
REASON_KEY = "fleetdeck_reason"
NAME_KEY = "fleetdeck_name"
_ERROR_CHARS = 300
_EXCEPTION_CHARS = 160
ENTRYPOINT_FAILED = "JOB_ENTRYPOINT_COMMAND_ERROR"
_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_EXIT_CODE = re.compile(r"exit code (-?\d+)")
# the lines Ray itself writes at the top of a job's log, which are never the cause
_RAY_OWN = re.compile(
    r"^(Running entrypoint for job |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\t\w+ job_manager\.py)"
)


def job_id(job: dict[str, Any]) -> str | None:
    """A job's id as fleetdeck shows it: the submission id, or Ray's job id for a plain driver."""
    value = job.get("submission_id") or job.get("job_id")
    return str(value) if value else None


def ordered(jobs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` jobs that have an id, oldest first."""
    known = [j for j in jobs if isinstance(j, dict) and job_id(j)]
    known.sort(key=lambda j: (_ms(j.get("start_time")) or float("inf"), job_id(j)))
    return known[-limit:]


def phase_of(job: dict[str, Any], order: int) -> Phase:
    return Phase(
        id=job_id(job) or "?",
        name=display_name(job),
        order=order,
        status=PHASE_STATUS.get(str(job.get("status")), "pending"),
        progress=1.0 if job.get("status") == "SUCCEEDED" else None,
        started_at=_seconds(job.get("start_time")),
        finished_at=_seconds(job.get("end_time")),
        status_reason=_status_reason(job),
    )


def _status_reason(job: dict[str, Any]) -> str | None:
    if job.get("status") == "FAILED":
        return failure_of(job)
    if job.get("status") == "STOPPED":
        return _first_line(job.get("message")) or "stopped"
    return None


def task_of(job: dict[str, Any], *, now: float, rolled_back: bool = False) -> Task:
    status = str(job.get("status"))
    metadata = _metadata(job)
    created = _seconds(job.get("start_time")) or now
    error = failure_of(job) if status == "FAILED" else None
    exit_code = job.get("driver_exit_code")
    return Task(
        id=job_id(job) or "?",
        kind="job",
        target=_short(str(job.get("entrypoint") or "?"), 200),
        payload=spec_of(job),
        status="rolled_back" if rolled_back and status == "STOPPED" else TASK_STATUS.get(status, "queued"),
        created_at=created,
        updated_at=_seconds(job.get("end_time")) or created,
        submitted_by=str(metadata.get(OPERATOR_KEY) or "ray"),
        attempts=1,
        result={"exit_code": exit_code} if isinstance(exit_code, int) else None,
        error=error,
    )


def failure_of(job: dict[str, Any]) -> str:
    """Why a failed job failed, in one line, the cause first: the exception its traceback ended with and
    the line that raised it; else the last line it printed; else Ray's own first line."""
    lines = str(job.get("message") or "").strip().splitlines()
    head = lines[0].strip() if lines else ""
    exit_code = job.get("driver_exit_code")
    if not isinstance(exit_code, int) or isinstance(exit_code, bool):
        found = _EXIT_CODE.search(head)
        exit_code = int(found.group(1)) if found else None
    exit_words = f"exit code {exit_code}" if exit_code is not None else None
    entrypoint = job.get("error_type") == ENTRYPOINT_FAILED or head.startswith(
        "Job entrypoint command failed"
    )
    cause = traceback_cause(lines[1:])
    if cause is not None:
        exception, where = cause
        after = "; ".join(part for part in (f"at {where}" if where else None, exit_words) if part)
        text = exception + (f" ({after})" if after else "")
        return _short(text if entrypoint else f"{_reason_words(head)} — {text}", _ERROR_CHARS)
    if entrypoint:
        last = next((line.strip() for line in reversed(lines[1:]) if _printed(line)), None)
        words = exit_words or "the entrypoint failed"
        return _short(f"{words}; its last line: {last}" if last else words, _ERROR_CHARS)
    return _short(head, _ERROR_CHARS) if head else str(job.get("error_type") or "failed")


def traceback_cause(lines: list[str]) -> tuple[str, str | None] | None:
    """(the exception line, "file:line in function: code" of the frame that raised) of the last Python
    traceback in ``lines``; None when there is none or it was cut before its exception."""
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].rstrip().endswith(_TRACEBACK)), None)
    if start is None:
        return None
    where: str | None = None
    frame: re.Match[str] | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        if line[:1].isspace():
            if match := _FRAME.match(line):
                frame, where = match, _where(match, None)
            elif frame is not None and where == _where(frame, None) and not _markers(line):
                where = _where(frame, line.strip())  # the code line under the frame
            continue
        # short enough that the place it was raised still fits in the error after it
        return _short(" ".join(line.split()), _EXCEPTION_CHARS), where
    return None


def _where(frame: re.Match[str], code: str | None) -> str:
    file = frame.group("file").replace("\\", "/").rsplit("/", 1)[-1]
    func = frame.group("func")
    place = f"{file}:{frame.group('line')}" + (f" in {func}" if func else "")
    return f"{place}: {_short(code, 120)}" if code else place


def _markers(line: str) -> bool:
    """Python 3.11's ``^^^^``/``~~~`` lines that point at the failing expression under a code line."""
    return not line.strip().strip("^~")


def _printed(line: str) -> bool:
    return bool(line.strip()) and not _RAY_OWN.match(line)


def _reason_words(head: str) -> str:
    """Ray's first line without the colon (or full stop) it ends with."""
    return head.rstrip(":.").strip() or "failed"


def spec_of(job: dict[str, Any]) -> dict[str, Any]:
    """What it takes to submit the job again: its entrypoint, runtime_env and metadata."""
    spec: dict[str, Any] = {"entrypoint": str(job.get("entrypoint") or "")}
    for key in ("runtime_env", "metadata"):
        if isinstance(job.get(key), dict):
            spec[key] = job[key]
    for key in ("entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory", "entrypoint_resources"):
        if job.get(key) is not None:
            spec[key] = job[key]
    return spec


def display_name(job: dict[str, Any]) -> str:
    metadata = _metadata(job)
    if metadata.get(NAME_KEY):
        return str(metadata[NAME_KEY])
    return _short(str(job.get("entrypoint") or job_id(job) or "job"), 80)


def _metadata(job: dict[str, Any]) -> dict[str, Any]:
    value = job.get("metadata")
    return value if isinstance(value, dict) else {}


def is_running(job: dict[str, Any]) -> bool:
    return job.get("status") in ("PENDING", "RUNNING")


def _ms(value: Any) -> float | None:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
    )


def _seconds(value: Any) -> float | None:
    ms = _ms(value)
    return ms / 1000 if ms is not None else None  # Ray's job times are epoch milliseconds


def _first_line(value: Any) -> str | None:
    text = str(value or "").strip()
    return _short(text.splitlines()[0], _ERROR_CHARS) if text else None


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
