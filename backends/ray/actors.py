"""Ray actors (``/api/v0/actors?detail=1``) as fleetdeck agents of kind ``actor``.

State and health:
  ALIVE                              → running, healthy
  RESTARTING                         → starting, degraded (with the restart count as the reason)
  PENDING_CREATION, DEPENDENCIES_UNREADY → starting, unknown (not scheduled yet)
  DEAD after an intended exit        → stopped, unknown (like a stopped local agent: nothing to fix)
  DEAD otherwise                     → failed, unhealthy, the death cause's message as the reason
Ray's own job supervisors (``_ray_internal_job_actor_*``) are jobs' plumbing, shown as phases instead.
"""

from __future__ import annotations

from typing import Any

from backends.model import Agent, AgentState, Health

INTERNAL_PREFIX = "_ray_internal_"
# death reasons that mean someone ended the actor on purpose, not a crash
_INTENDED_REASONS = frozenset({"RAY_KILL", "OUT_OF_SCOPE"})
_REASON_CHARS = 300


def agents_from(
    actors: list[dict[str, Any]],
    *,
    ip_of_node: dict[str, str],
    phase_of_job: dict[str, str],
    gpu_bytes_of_pid: dict[int, int],
) -> list[Agent]:
    agents = [
        _agent(a, ip_of_node=ip_of_node, phase_of_job=phase_of_job, gpu_bytes_of_pid=gpu_bytes_of_pid)
        for a in actors
        if a.get("actor_id") and not str(a.get("name") or "").startswith(INTERNAL_PREFIX)
    ]
    # the living first, so a long history of dead actors does not push them off the table
    return sorted(agents, key=lambda a: (a.state in ("stopped", "failed"), a.name, a.id))


def internal_actor(actor: dict[str, Any]) -> bool:
    return str(actor.get("name") or "").startswith(INTERNAL_PREFIX)


def _agent(
    actor: dict[str, Any],
    *,
    ip_of_node: dict[str, str],
    phase_of_job: dict[str, str],
    gpu_bytes_of_pid: dict[int, int],
) -> Agent:
    actor_id = str(actor["actor_id"])
    class_name = str(actor.get("class_name") or "actor")
    state, health, reason = _state(actor)
    pid = _int(actor.get("pid"))
    pid = pid if pid else None  # Ray reports 0 before the actor has a process
    labels = {"class": class_name, "role": class_name}
    if actor.get("ray_namespace"):
        labels["namespace"] = str(actor["ray_namespace"])
    node_id = actor.get("node_id")
    if node_id:
        labels["node"] = ip_of_node.get(str(node_id), str(node_id)[:12])
    if actor.get("job_id"):
        labels["job_id"] = str(actor["job_id"])
    if actor.get("is_detached"):
        labels["detached"] = "yes"
    return Agent(
        id=actor_id,
        name=str(actor.get("name") or actor.get("repr_name") or f"{class_name} {actor_id[:8]}"),
        kind="actor",
        state=state,
        health=health,
        health_reason=reason,
        pid=pid,
        gpu_mem_bytes=gpu_bytes_of_pid.get(pid) if pid else None,
        phase_id=phase_of_job.get(str(actor.get("job_id") or "")),
        restarts=max(0, _int(actor.get("num_restarts")) or 0),
        labels=labels,
    )


def _state(actor: dict[str, Any]) -> tuple[AgentState, Health, str | None]:
    ray_state = str(actor.get("state") or "")
    if ray_state == "ALIVE":
        return "running", "healthy", None
    if ray_state == "RESTARTING":
        return "starting", "degraded", f"restarting (restarts so far: {_int(actor.get('num_restarts')) or 0})"
    if ray_state in ("PENDING_CREATION", "DEPENDENCIES_UNREADY"):
        return "starting", "unknown", "waiting to be scheduled"
    if ray_state == "DEAD":
        reason, message = _death(actor.get("death_cause"))
        intended = reason in _INTENDED_REASONS or "INTENDED_USER_EXIT" in message
        if intended:
            return "stopped", "unknown", message or "stopped"
        return "failed", "unhealthy", message or "dead (Ray gave no cause)"
    return "unknown", "unknown", f"Ray state {ray_state}" if ray_state else None


def _death(cause: Any) -> tuple[str, str]:
    """(reason code, message) from any of Ray's death-cause contexts."""
    if not isinstance(cause, dict):
        return "", ""
    for context in cause.values():
        if isinstance(context, dict):
            message = str(context.get("error_message") or "").strip()
            message = " ".join(message.split())
            if len(message) > _REASON_CHARS:
                message = message[: _REASON_CHARS - 1] + "…"
            return str(context.get("reason") or ""), message
    return "", ""


def _int(value: Any) -> int | None:
    # the state API sends some counters as strings ("num_restarts": "0")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
