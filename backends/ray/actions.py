"""The actions a Ray cluster can take through its dashboard: submit a job, stop a job, checkpoint the
running jobs' specs, roll back to them. Each is audited in the state file, whatever its outcome.

Dispatch is made safe to retry with a stable ``submission_id``: Ray refuses a second job with an id it
already has, so a retried submission whose first answer was lost finds the job the first try made
instead of running it twice.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from backends.errors import AuthFailed, BackendError, Conflict, Forbidden, Invalid, Unsupported
from backends.model import AuditEntry, AuditOutcome, Checkpoint, DispatchRequest, Target, Task

from . import jobs as job_model
from .client import RayClient
from .failures import error_for_response
from .state import RayState

ROLLBACK_WORDS = (
    "a checkpoint records the specs of the jobs running now; "
    "rollback stops what is running and resubmits the recorded specs"
)
STOP_ACTOR_WORDS = (
    "Ray's dashboard has no call to stop one actor: stop the job that owns it (stop task:JOB_ID), "
    "or end it from a driver with ray.kill"
)
PAYLOAD_WORDS = (
    "a Ray cluster runs commands as jobs: dispatch with --command; Ray's dashboard has no call to hand "
    "a payload to a running actor"
)
# uuid5 namespace for submission ids: the same request and key always make the same id
_SUBMISSION_NS = uuid.UUID("6f1c0c1e-8f7a-4a5e-9a51-2f1b8a6d0e42")


def submission_id_for(spec: dict[str, Any], key: str) -> str:
    text = json.dumps({"spec": spec, "key": key}, sort_keys=True)
    return f"fleetdeck-{uuid.uuid5(_SUBMISSION_NS, text).hex[:20]}"


class RayActions:
    def __init__(self, client: RayClient, state: RayState, *, node: str, clock: Callable[[], float]) -> None:
        self._client = client
        self._state = state
        self._node = node
        self._clock = clock

    # --- dispatch and stop ---------------------------------------------------------------------------------

    async def dispatch(self, request: DispatchRequest, operator: str, reason: str | None) -> Task:
        if request.command is None:
            raise Unsupported(PAYLOAD_WORDS)
        spec: dict[str, Any] = {"entrypoint": shlex.join(request.command)}
        runtime_env = request.payload.get("runtime_env")
        if runtime_env is not None:
            if not isinstance(runtime_env, dict):
                raise Invalid("payload runtime_env must be a JSON object (Ray's runtime_env)")
            spec["runtime_env"] = runtime_env
        metadata = {"fleetdeck_operator": operator, "fleetdeck_reason": reason or ""}
        if request.name:
            metadata[job_model.NAME_KEY] = request.name
        spec["metadata"] = metadata
        # A caller's idempotency key makes the id stable across calls too; without one it is stable for
        # the retries inside this call.
        key = str(request.payload.get("idempotency_key") or uuid.uuid4())
        submission_id = submission_id_for({"entrypoint": spec["entrypoint"], "runtime_env": runtime_env}, key)
        return await self._audited(
            "dispatch",
            f"task:{submission_id}",
            {"entrypoint": spec["entrypoint"]},
            operator,
            reason,
            lambda: self.submit(spec, submission_id),
        )

    async def submit(self, spec: dict[str, Any], submission_id: str) -> Task:
        body = {**spec, "submission_id": submission_id}
        response = await self._client.post_json("/api/jobs/", body, retry=True)
        if not response.is_success and b"already exists" not in response.content:
            raise error_for_response(response, self._client.settings)
        # on "already exists" an earlier try of this very submission got through: that job is the answer
        return await self.task(submission_id)

    async def task(self, job_id: str) -> Task:
        job = await self._client.get_json(f"/api/jobs/{quote(job_id, safe='')}")
        rolled_back = await self._state.rolled_back()
        return job_model.task_of(job, now=self._clock(), rolled_back=job_id in rolled_back)

    async def stop(self, target: Target, operator: str, reason: str | None) -> None:
        if target.kind == "agent":
            raise Unsupported(STOP_ACTOR_WORDS)
        await self._audited("stop", str(target), {}, operator, reason, lambda: self.stop_job(target.id))

    async def stop_job(self, job_id: str) -> None:
        path = f"/api/jobs/{quote(job_id, safe='')}"
        response = await self._client.post_json(f"{path}/stop", None, retry=True)
        answer = self._client.decode(response)
        if isinstance(answer, dict) and answer.get("stopped") is False:
            job = await self._client.get_json(path)
            raise Conflict(f"job {job_id} is not running (it is {job.get('status', 'over')})")

    # --- checkpoint and rollback ---------------------------------------------------------------------------

    async def checkpoint(
        self, label: str, operator: str, reason: str | None, *, automatic: bool = False
    ) -> Checkpoint:
        async def take() -> Checkpoint:
            running = [j for j in await self._submitted_jobs() if job_model.is_running(j)]
            now = self._clock()
            checkpoint = Checkpoint(
                id=f"ckpt-{int(now)}-{uuid.uuid4().hex[:6]}",
                label=label,
                created_at=now,
                created_by=operator,
                automatic=automatic,
                covers=tuple(job_model.job_id(j) or "?" for j in running),
            )
            specs = [{"job_id": job_model.job_id(j), **job_model.spec_of(j)} for j in running]
            await self._state.add_checkpoint(checkpoint, specs)
            return checkpoint

        return await self._audited("checkpoint", None, {"label": label}, operator, reason, take)

    async def rollback(self, checkpoint_id: str, operator: str, reason: str | None) -> Checkpoint:
        _, specs = await self._state.checkpoint_jobs(checkpoint_id)

        async def roll() -> Checkpoint:
            safety = await self.checkpoint(
                f"before rollback to {checkpoint_id}", operator, reason, automatic=True
            )
            running = [job_model.job_id(j) for j in await self._submitted_jobs() if job_model.is_running(j)]
            stopped = [j for j in running if j]
            await self._state.mark_rolled_back(stopped)
            for job_id in stopped:
                with contextlib.suppress(Conflict):  # it ended on its own meanwhile
                    await self.stop_job(job_id)
            for index, spec in enumerate(specs):
                entry = {k: v for k, v in spec.items() if k != "job_id"}
                metadata = {**(entry.get("metadata") or {}), "fleetdeck_operator": operator}
                metadata["fleetdeck_reason"] = f"rollback to {checkpoint_id}"
                entry["metadata"] = {str(k): str(v) for k, v in metadata.items()}
                # stable per rollback: a retry of this resubmission finds its job instead of doubling it
                await self.submit(entry, submission_id_for(entry, f"{safety.id}/{index}"))
            return safety

        return await self._audited("rollback", checkpoint_id, {}, operator, reason, roll)

    async def preview(self, checkpoint_id: str) -> list[str]:
        checkpoint, specs = await self._state.checkpoint_jobs(checkpoint_id)
        running = [
            job_model.job_id(j) or "?" for j in await self._submitted_jobs() if job_model.is_running(j)
        ]
        lines = [ROLLBACK_WORDS]
        lines.append(f"stops {len(running)} running job(s): {', '.join(running) or 'none'}")
        entrypoints = [str(s.get("entrypoint")) for s in specs]
        lines.append(
            f"resubmits {len(specs)} job spec(s) from {checkpoint.id}: {'; '.join(entrypoints) or 'none'}"
        )
        return lines

    async def _submitted_jobs(self) -> list[dict[str, Any]]:
        listed = await self._client.get_json("/api/jobs/")
        rows = listed if isinstance(listed, list) else []
        return [j for j in rows if isinstance(j, dict) and j.get("type", "SUBMISSION") == "SUBMISSION"]

    # --- the audit trail -----------------------------------------------------------------------------------

    async def _audited(
        self,
        action: str,
        target: str | None,
        params: dict[str, Any],
        operator: str,
        reason: str | None,
        call: Callable[[], Any],
    ) -> Any:
        request_id = uuid.uuid4().hex
        try:
            result = await call()
        except BackendError as exc:
            outcome: AuditOutcome = (
                "denied" if isinstance(exc, AuthFailed | Forbidden | Unsupported) else "failed"
            )
            await self._note(action, target, params, operator, reason, outcome, str(exc), request_id)
            raise
        detail = getattr(result, "id", None)
        await self._note(action, target, params, operator, reason, "ok", detail, request_id)
        return result

    async def _note(
        self,
        action: str,
        target: str | None,
        params: dict[str, Any],
        operator: str,
        reason: str | None,
        outcome: AuditOutcome,
        detail: str | None,
        request_id: str,
    ) -> AuditEntry:
        now = self._clock()
        return await self._state.record(
            lambda seq: AuditEntry(
                seq=seq,
                ts=now,
                operator=operator,
                action=action,
                target=target,
                params=params,
                reason=reason,
                outcome=outcome,
                detail=detail,
                request_id=request_id,
            )
        )
