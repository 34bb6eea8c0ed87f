"""Which log files of a Ray cluster are read, and how each is asked for.

* A submitted job's driver log (``GET /api/jobs/``): key ``job:<id>``, its lines under the job's id (a
  task in fleetdeck), read whole by ``/api/jobs/{id}/logs`` and followed by ``/api/v0/logs/stream`` with
  ``submission_id`` and the job's ``driver_node_id``. A job with no driver node yet has no file yet: only
  its status is told. Plain drivers (``ray.init()`` scripts) are not served by the job API.
* An actor's worker files (``GET /api/v0/actors``), ``stdout`` and ``stderr``: keys ``actor:<id>:out`` and
  ``actor:<id>:err``, their lines under the actor's id (an agent), by ``actor_id`` and ``suffix``. The
  living first, then the most recently dead, at most :data:`MAX_ACTORS`; Ray's job supervisors are
  plumbing and left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backends.model import LogLevel

from . import jobs as job_model
from .actors import internal_actor
from .client import RayClient

MAX_ACTORS = 100  # actors whose files are read: the living first, then the most recently dead
ACTOR_LIMIT = 10_000
_STATUS_RANK = {"PENDING": 0, "RUNNING": 1}  # every final status is 2: a job has one
_STATUS_LEVEL: dict[str, LogLevel] = {"FAILED": "error", "STOPPED": "warning"}


@dataclass
class LogFile:
    key: str
    owner: str  # LogRecord.source of its lines: the task (job) or agent (actor) id
    params: dict[str, Any]  # what /api/v0/logs/{file,stream} needs to find it
    over: bool  # its job or actor has ended: once read to its end, the file is finished
    fields: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None  # a job's driver log (read whole through the job API)

    @property
    def followable(self) -> bool:
        """Whether Ray can stream it yet: a job's file is found through its driver's node, which a
        pending job does not have."""
        return bool(self.params)

    worker_file: bool = False  # opens with Ray's ":job_id:" markers
    status: str | None = None  # a job's status line, e.g. "job j1 FAILED: RuntimeError: boom"
    status_word: str = ""
    status_rank: int = 0
    status_level: LogLevel = "info"
    status_at: float | None = None


async def job_files(client: RayClient, *, max_jobs: int) -> list[LogFile]:
    listed = await client.get_json("/api/jobs/")
    jobs = job_model.ordered(listed if isinstance(listed, list) else [], max_jobs)
    return [f for f in (_job_file(j) for j in jobs) if f is not None]


async def actor_files(client: RayClient) -> tuple[list[LogFile], frozenset[int]]:
    """The actors' files, and the pids of those actors (whose copies in a driver's log are left out
    there)."""
    actors = await client.get_json("/api/v0/actors", {"detail": "1", "limit": ACTOR_LIMIT})
    return _actor_files(_result_list(actors))


def _job_file(job: dict[str, Any]) -> LogFile | None:
    ident = job_model.job_id(job)
    if ident is None or job.get("type", "SUBMISSION") != "SUBMISSION" or not job.get("submission_id"):
        return None
    status = str(job.get("status") or "")
    over = not job_model.is_running(job)
    message = f"job {ident} {status}"
    if over and (why := _why_it_ended(job)):
        message += f": {why}"
    node = job.get("driver_node_id")
    return LogFile(
        key=f"job:{ident}",
        owner=ident,
        params={"submission_id": ident, "node_id": str(node)} if node else {},
        over=over,
        fields={"job": ident},
        job_id=ident,
        status=message,
        status_word=status,
        status_rank=_STATUS_RANK.get(status, 2),
        status_level=_STATUS_LEVEL.get(status, "info"),
        status_at=_seconds(job.get("end_time") if over else job.get("start_time")),
    )


def _actor_files(actors: list[dict[str, Any]]) -> tuple[list[LogFile], frozenset[int]]:
    chosen = [
        a
        for a in actors
        if a.get("actor_id") and not internal_actor(a) and _int(a.get("pid")) and a.get("state")
    ]
    # the living first, then the most recently ended
    chosen.sort(key=lambda a: (a.get("state") == "DEAD", -(_int(a.get("end_time")) or 0)))
    chosen = chosen[:MAX_ACTORS]
    files: list[LogFile] = []
    for actor in chosen:
        ident = str(actor["actor_id"])
        name = str(actor.get("name") or actor.get("class_name") or ident[:8])
        for suffix in ("out", "err"):
            files.append(
                LogFile(
                    key=f"actor:{ident}:{suffix}",
                    owner=ident,
                    params={"actor_id": ident, "suffix": suffix},
                    over=actor.get("state") == "DEAD",
                    fields={"actor": name, "stream": "stdout" if suffix == "out" else "stderr"},
                    worker_file=True,
                )
            )
    return files, frozenset(_int(a.get("pid")) or 0 for a in chosen)


def _why_it_ended(job: dict[str, Any]) -> str | None:
    """Ray's message, short: its first line, and where it quotes the job's last output (a failed
    entrypoint), the last line of that, which is the exception a traceback ends with."""
    lines = [line.strip() for line in str(job.get("message") or "").splitlines() if line.strip()]
    if not lines:
        return None
    head = lines[0].split(", last available logs")[0]
    return f"{head}: {lines[-1]}" if len(lines) > 1 else head


def _result_list(answer: Any) -> list[dict[str, Any]]:
    """The rows of a state-API answer (``{"data": {"result": {"result": [...]}}}``)."""
    try:
        rows = answer["data"]["result"]["result"]
    except (KeyError, TypeError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _seconds(value: Any) -> float | None:
    number = _int(value)
    return number / 1000 if number and number > 0 else None
