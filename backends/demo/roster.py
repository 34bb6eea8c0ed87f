"""Who runs on a demo node: the static description of each agent and which ones get into trouble.

Everything here is decided once, at construction, from (seed, node index); the per-snapshot work in
``world.py`` then only evaluates cheap functions of time over these fixed parameters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .catalog import MODELS, ROLES, NodeSpec, Role, role_sequence
from .plan import ACTIVE_PHASE_ID, NEXT_PHASE_ID
from .signals import mix, phase_of, text_key

DAY = 86400.0

# Trouble timings (seconds). A crash loop every 4 minutes and a heartbeat stall every 10 make sure any
# few-minute window of a demo shows both; the durations match what an operator would see on a real node.
CRASH_PERIOD_S = 240.0
CRASH_FAILED_S = 20.0  # exited, waiting out the restart backoff
CRASH_STARTING_S = 12.0  # restarted, not yet reporting ready
STALL_PERIOD_S = 600.0
STALL_LENGTH_S = 110.0
STALL_UNHEALTHY_AFTER_S = 15.0
HEARTBEAT_INTERVAL_S = 5.0
HOT_PERIOD_S = 420.0
HOT_THRESHOLD_C = 85.0


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One simulated agent: identity plus the seeded constants its moving numbers are made from."""

    id: str
    role: Role
    team: str
    labels: dict[str, str]
    phase_id: str | None
    pid: int
    started_at: float
    base_restarts: int
    key: int  # hash seed for this agent's noise
    cpu_base: float  # percent of one core while busy
    busy_period_s: float  # how often it cycles between busy and idle
    busy_phase: float
    task_len_s: float  # how long one work item (a PR, an eval run) takes
    task_offset_s: float
    number_base: int  # first PR/run number, so numbers look like a project's history
    rss_base: int
    heartbeat_offset_s: float
    model: str | None
    gpu_shares: tuple[tuple[int, int], ...]  # (GPU index, bytes held there) for GPU-holding roles


@dataclass(frozen=True, slots=True)
class Trouble:
    """Which agents and GPU misbehave on a node, and when their cycles start."""

    slow_id: str | None  # its latency runs near 120 ms and spikes past 150 ms (figures, not a verdict)
    crash_id: str | None  # crash-loops: failed -> starting -> running every CRASH_PERIOD_S
    crash_epoch: float
    stall_id: str | None  # stops heartbeating for STALL_LENGTH_S every STALL_PERIOD_S
    stall_epoch: float
    hot_gpu: int | None  # climbs above HOT_THRESHOLD_C once per HOT_PERIOD_S
    hot_phase: float


def _gpu_shares(role: str, rank: int, spec: NodeSpec) -> tuple[tuple[int, int], ...]:
    """Place model-managers tensor-parallel over pairs of GPUs and embedders on the last GPU of each four,
    so an 8-GPU box ends up ~88% full (the plan's failing "GPU memory headroom" criterion)."""
    g, model = spec.gpu_count, spec.gpu_model
    if not g or model is None or spec.gpu_error:
        return ()
    if role == "model-manager":
        managers = max(1, g // 2)
        tp = max(1, g // managers)
        first = (rank * tp) % g
        share = int(model.mem_total * 0.82)
        return tuple(((first + i) % g, share) for i in range(tp))
    if role == "embedder":
        return (((g - 1 - rank * 4) % g, int(model.mem_total * 0.09)),)
    return ()


def build_roster(seed: int, spec: NodeSpec, count: int, genesis: float) -> list[AgentSpec]:
    rng = random.Random(mix(seed, spec.index, 0xA6E47))
    gpus = 0 if spec.gpu_error else spec.gpu_count
    roles = role_sequence(seed, spec.index, count, gpus)
    numbering: dict[str, int] = {}
    roster: list[AgentSpec] = []
    pid = 1100 + rng.randrange(400)
    boot = genesis - spec.boot_age_s
    for role_name in roles:
        rank = numbering.get(role_name, 0)
        numbering[role_name] = rank + 1
        role = ROLES[role_name]
        agent_id = f"{role_name}-{rank + 1:02d}"
        team = rng.choice(role.teams)
        model = MODELS[(rank + spec.index) % len(MODELS)] if role_name == "model-manager" else None
        labels = {"role": role_name, "team": team}
        if model:
            labels["model"] = model
        if role_name in ("scheduler", "obs-hub"):
            phase_id = None
        elif role_name in ("tester", "evaluator", "planner") and rng.random() < 0.25:
            phase_id = NEXT_PHASE_ID  # preparing the next phase's chaos tests and runbooks
        else:
            phase_id = ACTIVE_PHASE_ID
        pid += 7 + rng.randrange(60)
        roster.append(
            AgentSpec(
                id=agent_id,
                role=role,
                team=team,
                labels=labels,
                phase_id=phase_id,
                pid=pid,
                started_at=round(max(boot + 60.0, genesis - rng.uniform(0.2, 6.0) * DAY), 3),
                base_restarts=rng.choice((0, 0, 0, 0, 0, 0, 1, 1, 2, 3)),
                key=mix(seed, spec.index, text_key(agent_id)),
                cpu_base=rng.uniform(40, 380) if role.gpu else rng.uniform(4, 85),
                busy_period_s=rng.uniform(240, 1500),
                busy_phase=phase_of(mix(seed, spec.index, text_key(agent_id), 1)),
                task_len_s=rng.uniform(90, 900),
                task_offset_s=rng.uniform(0, 900),
                number_base=rng.randrange(300, 900),
                rss_base=int(role.rss_gib * rng.uniform(0.7, 1.4) * 1024**3),
                heartbeat_offset_s=round(rng.uniform(0, HEARTBEAT_INTERVAL_S), 3),
                model=model,
                gpu_shares=_gpu_shares(role_name, rank, spec),
            )
        )
    return roster


def pick_trouble(seed: int, spec: NodeSpec, roster: list[AgentSpec], genesis: float) -> Trouble:
    """Choose the misbehaving agents: distinct ones, and never the scheduler, the hub or a GPU holder
    (a crashing model-manager would also empty its GPUs, which hides the hot-GPU story)."""
    rng = random.Random(mix(seed, spec.index, 0x7B0B1E))
    plain = [a for a in roster if not a.role.gpu and a.role.name not in ("scheduler", "obs-hub")]

    def take(preferred: tuple[str, ...]) -> str | None:
        candidates = [a for a in plain if a.role.name in preferred] or plain
        if not candidates:
            return None
        chosen = candidates[rng.randrange(len(candidates))]
        plain.remove(chosen)
        return chosen.id

    slow = take(("retriever",))
    crash = take(("tester", "coder"))
    stall = take(("reviewer", "evaluator", "planner"))
    gpus = 0 if spec.gpu_error else spec.gpu_count
    return Trouble(
        slow_id=slow,
        crash_id=crash,
        crash_epoch=genesis - 900.0 + rng.uniform(0, CRASH_PERIOD_S),
        stall_id=stall,
        stall_epoch=genesis - STALL_PERIOD_S + rng.uniform(0, STALL_PERIOD_S),
        hot_gpu=min(3, gpus - 1) if gpus else None,
        hot_phase=phase_of(mix(seed, spec.index, 0x407)),
    )
