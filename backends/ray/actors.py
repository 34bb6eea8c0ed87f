"""Ray actors (``/api/v0/actors?detail=1``) as fleetdeck agents of kind ``actor``.

State and health:
  ALIVE                              → running, healthy
  RESTARTING                         → starting, degraded (with the restart count as the reason)
  PENDING_CREATION, DEPENDENCIES_UNREADY → starting, unknown (not scheduled yet)
    ... needing resources no machine has → starting, unhealthy ("needs 1 GPU, the cluster has 0"): it would
                                         wait for ever, so it is an alert, not a start in progress
  DEAD after an intended exit        → stopped, unknown
  DEAD otherwise                     → failed, unhealthy, the death cause's message as the reason
A DEAD actor is history (``Agent.dead``): Ray never revives it, so it is counted apart from the node's
health and raises no alert; its row and its cause stay to be looked at.

What an actor needs is its ``required_resources`` (``{"GPU": 1.0}``); what the cluster has is each live
machine's ``resources_total`` from ``/api/v0/nodes``. Only a need that no machine could ever meet is judged:
one busy machine is a wait, not a fault. Placement-group resources (``CPU_group_<id>``) exist only once
their group is placed, and are not judged.

Ray's own job supervisors (``_ray_internal_job_actor_*``) are jobs' plumbing, shown as phases instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.model import Agent, AgentState, Health, Kpi

INTERNAL_PREFIX = "_ray_internal_"
# death reasons that mean someone ended the actor on purpose, not a crash
_INTENDED_REASONS = frozenset({"RAY_KILL", "OUT_OF_SCOPE"})
_REASON_CHARS = 300
_BYTE_RESOURCES = frozenset({"memory", "object_store_memory"})  # Ray counts these in bytes


def agents_from(
    actors: list[dict[str, Any]],
    *,
    ip_of_node: dict[str, str],
    phase_of_job: dict[str, str],
    gpu_bytes_of_pid: dict[int, int],
    machines: Sequence[Mapping[str, float]] = (),
    kpis_of_actor: Mapping[str, tuple[Kpi, ...]] | None = None,
) -> list[Agent]:
    """``machines``: each live machine's ``resources_total``; none known, no need is judged.
    ``kpis_of_actor``: each actor's figures by actor id (see ``task_figures.py``)."""
    agents = [
        _agent(
            a,
            ip_of_node=ip_of_node,
            phase_of_job=phase_of_job,
            gpu_bytes_of_pid=gpu_bytes_of_pid,
            machines=machines,
            kpis=(kpis_of_actor or {}).get(str(a["actor_id"]), ()),
        )
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
    machines: Sequence[Mapping[str, float]],
    kpis: tuple[Kpi, ...] = (),
) -> Agent:
    actor_id = str(actor["actor_id"])
    class_name = str(actor.get("class_name") or "actor")
    state, health, reason = _state(actor)
    if state == "starting" and health == "unknown" and (lacking := unmet_need(actor, machines)):
        health, reason = "unhealthy", f"cannot be scheduled: {lacking}"
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
        kpis=kpis,
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


def machine_resources(nodes: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Each live machine's ``resources_total`` (``/api/v0/nodes``)."""
    machines = []
    for node in nodes:
        total = node.get("resources_total")
        if node.get("state") == "ALIVE" and isinstance(total, dict):
            machines.append({str(k): v for k, v in total.items() if _number(v)})
    return machines


def unmet_need(actor: dict[str, Any], machines: Sequence[Mapping[str, float]]) -> str | None:
    """What an actor needs that no live machine has, in words ("needs 1 GPU, the cluster has 0"); None
    when some machine could run it, or when that cannot be told (no machine known)."""
    needs = actor.get("required_resources")
    if not machines or not isinstance(needs, dict):
        return None
    wanted = {str(k): float(v) for k, v in needs.items() if _number(v) and v > 0 and "_group_" not in str(k)}
    if not wanted or any(all(m.get(k, 0.0) >= v for k, v in wanted.items()) for m in machines):
        return None
    words = []
    for name, need in sorted(wanted.items()):
        if all(m.get(name, 0.0) >= need for m in machines):
            continue
        total = sum(m.get(name, 0.0) for m in machines)
        most = max(m.get(name, 0.0) for m in machines)
        if total >= need:
            words.append(
                f"needs {_amount(need, name)} on one machine, the most one has is {_number_of(most, name)}"
            )
        else:
            words.append(f"needs {_amount(need, name)}, the cluster has {_number_of(total, name)}")
    # each resource alone fits somewhere, but no machine has them all together
    return "; ".join(words) or "no machine has all of " + ", ".join(
        _amount(v, k) for k, v in sorted(wanted.items())
    )


def _amount(value: float, name: str) -> str:
    """ "1 GPU", "2.5 CPU", "4.0 GiB memory"."""
    return f"{_number_of(value, name)} {name}"


def _number_of(value: float, name: str) -> str:
    return f"{value / 1024**3:.1f} GiB" if name in _BYTE_RESOURCES else f"{value:g}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _death(cause: Any) -> tuple[str, str]:
    """(reason code, message) from any of Ray's death-cause contexts."""
    if not isinstance(cause, dict):
        return "", ""
    for context in cause.values():
        if isinstance(context, dict):
            message = str(context.get("error_message") or "").strip()
            message = " ".join(message.split())
            # Ray follows a worker's death with a paragraph of guesses; the cause is what comes before
            message = message.split(" Some common causes include", 1)[0]
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
