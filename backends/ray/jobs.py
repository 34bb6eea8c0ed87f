"""Ray jobs (``/api/jobs/``) as fleetdeck phases and tasks.

Every job is a phase (what the cluster is working through, in start order); a submitted job is also a
task (work dispatched to the cluster). Statuses:

  Ray        phase     task
  PENDING    pending   queued
  RUNNING    active    running
  STOPPED    done      cancelled    (ended on request: over, but not a failure to raise an alert about;
                                     Ray cannot resume it, so it is not "paused")
  SUCCEEDED  done      succeeded
  FAILED     failed    failed

A job this backend stopped during a rollback is shown as the task status ``rolled_back``.
"""

from __future__ import annotations

from typing import Any

from backends.model import Phase, PhaseStatus, Task, TaskStatus

PHASE_STATUS: dict[str, PhaseStatus] = {
    "PENDING": "pending",
    "RUNNING": "active",
    "STOPPED": "done",
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
    )


def task_of(job: dict[str, Any], *, now: float, rolled_back: bool = False) -> Task:
    status = str(job.get("status"))
    metadata = _metadata(job)
    created = _seconds(job.get("start_time")) or now
    error = None
    if status == "FAILED":
        error = _first_line(job.get("message")) or str(job.get("error_type") or "failed")
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
