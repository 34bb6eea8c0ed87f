"""The demo fleet's fixed vocabulary: GPU models, node shapes, regions, agent roles and teams.

The first three nodes are fixed (a production H100 box, a staging A100 box, a GPU-less dev box) because
screenshots, docs and snapshot tests describe them by name; nodes beyond those are drawn from a seeded RNG.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from backends.model import AgentKind, Environment

from .signals import mix

MIB = 1024**2
GIB = 1024**3
TIB = 1024**4


@dataclass(frozen=True, slots=True)
class GpuModel:
    name: str  # as NVML reports it
    short: str  # for the node's "gpu" label
    mem_total: int  # bytes, as NVML reports (a little under the marketing size)
    power_limit_w: float
    idle_power_w: float


GPU_MODELS: dict[str, GpuModel] = {
    "H100": GpuModel("NVIDIA H100 80GB HBM3", "H100-80GB", 81559 * MIB, 700.0, 72.0),
    "A100": GpuModel("NVIDIA A100-SXM4-40GB", "A100-40GB", 40960 * MIB, 400.0, 52.0),
    "L40S": GpuModel("NVIDIA L40S", "L40S-48GB", 46068 * MIB, 350.0, 36.0),
    "A10G": GpuModel("NVIDIA A10G", "A10G-24GB", 23028 * MIB, 300.0, 26.0),
    "RTX6000": GpuModel("NVIDIA RTX 6000 Ada Generation", "RTX6000-48GB", 49140 * MIB, 300.0, 24.0),
}

# What NVML says on a machine without the driver; the console shows it verbatim.
NO_DRIVER_REASON = "NVML Shared Library Not Found"
# An occasional generated node whose GPUs cannot be read, so the "error" path is also on screen.
GPU_ERROR_REASON = "NVML: Unknown Error (GPU has fallen off the bus)"

REGIONS: tuple[str, ...] = ("eu-west-1", "us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1")
_ENV_SHORT: dict[str, str] = {"production": "prod", "staging": "stage", "dev": "dev"}


# mke2fs's default: 5% of an ext4 filesystem is reserved for root, so df's Avail is less than size - used.
DISK_RESERVED_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """The static shape of one node: who it is and what hardware it has."""

    index: int
    name: str
    environment: Environment
    region: str
    gpu_model: GpuModel | None
    gpu_count: int
    gpu_error: str | None  # set when the node has GPUs NVML cannot read
    cpu_count: int
    mem_total: int
    swap_total: int
    disk_total: int
    boot_age_s: float  # how long before genesis the machine booted

    @property
    def disk_reserved(self) -> int:
        """Blocks the filesystem keeps for root: counted neither as used nor as available, as df shows."""
        return int(self.disk_total * DISK_RESERVED_SHARE)

    @property
    def hostname(self) -> str:
        return f"{self.name}.{self.region}.fleet.internal"

    @property
    def agent_weight(self) -> float:
        """Share of the fleet's agents this node hosts: GPU boxes carry more (the model agents)."""
        if self.gpu_model is None or self.gpu_error is not None:
            return 0.75
        return 1.0 + self.gpu_count / 16


_FIXED_NODES: tuple[tuple[str, Environment, str, str | None, int, int, int], ...] = (
    # name, environment, region, GPU model, GPUs, CPUs, memory GiB
    ("gpu-prod-01", "production", "eu-west-1", "H100", 8, 128, 2048),
    ("gpu-stage-02", "staging", "eu-west-1", "A100", 4, 64, 512),
    ("cpu-dev-03", "dev", "eu-central-1", None, 0, 16, 64),
)


def node_spec(seed: int, index: int) -> NodeSpec:
    """The node at ``index`` of a fleet built from ``seed`` (the first three are the same for any seed)."""
    rng = random.Random(mix(seed, index, 0x4E0DE))
    if index < len(_FIXED_NODES):
        name, env, region, model_key, gpus, cpus, mem_gib = _FIXED_NODES[index]
        gpu_error = None
    else:
        env = rng.choices(("production", "staging", "dev"), weights=(4, 3, 3))[0]
        region = rng.choice(REGIONS)
        has_gpus = rng.random() < (0.9 if env == "production" else 0.6)
        model_key = rng.choice(tuple(GPU_MODELS)) if has_gpus else None
        gpus = rng.choice((1, 2, 4, 4, 8, 8)) if has_gpus else 0
        cpus = rng.choice((32, 64, 96, 128)) if has_gpus else rng.choice((8, 16, 32))
        mem_gib = cpus * rng.choice((4, 8, 16))
        gpu_error = GPU_ERROR_REASON if has_gpus and rng.random() < 0.04 else None
        prefix = "gpu" if has_gpus else "cpu"
        name = f"{prefix}-{_ENV_SHORT[env]}-{index + 1:02d}"
    return NodeSpec(
        index=index,
        name=name,
        environment=env,
        region=region,
        gpu_model=GPU_MODELS[model_key] if model_key else None,
        gpu_count=gpus,
        gpu_error=gpu_error,
        cpu_count=cpus,
        mem_total=mem_gib * GIB,
        swap_total=(8 if mem_gib <= 256 else 16) * GIB,
        disk_total=int((7.0 if gpus >= 8 else 3.5 if gpus else 1.0) * TIB),
        boot_age_s=rng.uniform(3, 40) * 86400,
    )


def split_agents(total: int, specs: list[NodeSpec]) -> list[int]:
    """Share ``total`` agents over nodes by weight, largest remainder first, so the sum is exact."""
    if not specs:
        return []
    weights = [spec.agent_weight for spec in specs]
    scale = max(total, 0) / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(specs)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: max(total, 0) - sum(counts)]:
        counts[i] += 1
    return counts


# --- agent roles ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    kind: AgentKind
    teams: tuple[str, ...]
    gpu: bool  # holds GPU memory (joined to GPU processes)
    always_busy: bool  # services never go idle; workers idle between tasks
    message: str  # formatted with n (a task number that moves with time), k, shard, model and agents
    task: str | None  # the current_task text, or None for long-running services
    rss_gib: float  # typical resident memory


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "planner",
            "actor",
            ("core", "platform"),
            False,
            False,
            "breaking down milestone W7 into {k} work items",
            "plan-{n}",
            1.2,
        ),
        Role(
            "coder",
            "reporting",
            ("core", "search", "platform", "inference"),
            False,
            False,
            "implementing PR #{n}",
            "PR #{n}",
            2.5,
        ),
        Role(
            "reviewer",
            "reporting",
            ("core", "search", "platform"),
            False,
            False,
            "reviewing PR #{n} ({k} comments)",
            "review PR #{n}",
            1.8,
        ),
        Role(
            "tester",
            "process",
            ("qa", "core"),
            False,
            False,
            "running integration shard {k}/16",
            "test run {n}",
            3.0,
        ),
        Role(
            "model-manager",
            "process",
            ("inference",),
            True,
            True,
            "serving {model}, {k} requests in flight",
            None,
            24.0,
        ),
        Role(
            "embedder",
            "process",
            ("search", "inference"),
            True,
            True,
            "embedding batch {n} with bge-large-en-v1.5",
            None,
            6.0,
        ),
        Role("retriever", "actor", ("search",), False, True, "serving index shard {shard}/8", None, 4.0),
        Role(
            "evaluator", "process", ("evals",), False, False, "eval run {n}: regression-v3", "eval-{n}", 2.2
        ),
        Role(
            "indexer",
            "actor",
            ("search",),
            False,
            False,
            "indexing repository snapshot {n}",
            "index-{n}",
            3.5,
        ),
        Role(
            "scheduler",
            "process",
            ("platform",),
            False,
            True,
            "{k} tasks queued for {agents} agents",
            None,
            0.8,
        ),
        Role("obs-hub", "process", ("platform",), False, True, "ingesting {k}k metrics/s", None, 1.5),
    )
}

MODELS: tuple[str, ...] = (
    "llama-3.1-70b-instruct",
    "qwen2.5-72b-instruct",
    "mixtral-8x22b-instruct",
    "llama-3.1-8b-instruct",
    "deepseek-coder-v2-lite",
)

# The mix of worker roles once the fixed ones are placed; shuffled per node so nodes differ.
_WORKER_MIX: tuple[str, ...] = (
    "coder",
    "coder",
    "coder",
    "coder",
    "tester",
    "tester",
    "reviewer",
    "reviewer",
    "retriever",
    "evaluator",
    "evaluator",
    "planner",
    "indexer",
    "coder",
    "tester",
    "retriever",
)


def role_sequence(seed: int, index: int, count: int, gpu_count: int) -> list[str]:
    """The roles of a node's ``count`` agents, in roster order.

    The scheduler and the observability hub come first (every node has them), then the GPU holders (about
    one model-manager per two GPUs, one embedder per four), then a shuffled mix of workers.
    """
    fixed = ["scheduler", "obs-hub"]
    if gpu_count:
        fixed += ["model-manager"] * max(1, gpu_count // 2)
        fixed += ["embedder"] * max(1, gpu_count // 4)
    workers = list(_WORKER_MIX)
    random.Random(mix(seed, index, 0x201E5)).shuffle(workers)
    roles = fixed[:count]
    while len(roles) < count:
        roles.append(workers[(len(roles) - len(fixed)) % len(workers)])
    return roles
