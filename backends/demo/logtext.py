"""What demo agents write to their logs: message templates per role, with weights and levels.

Each template's placeholders are filled from a seeded RNG and also returned as the record's structured
``fields``, the way a real structured logger carries its extras. The weights give the level mix a real
fleet has: mostly debug and info, some warnings, rare errors and very rare criticals.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from backends.model import LogLevel

_FILES = (
    "scheduler/client.py",
    "store/sqlite.py",
    "api/routes.py",
    "agents/supervisor.py",
    "models/kv_cache.py",
    "retrieval/index.py",
    "tests/test_rollback.py",
    "ops/heartbeat.py",
)
_CHANGES = (
    "fix retry backoff in scheduler client",
    "batch heartbeat writes",
    "add P95 histogram to /metrics",
    "stream logs with resume cursor",
    "cap KV cache per tenant",
    "shard index by repository",
)
_TESTS = (
    "test_rollback_under_load",
    "test_resume_cursor",
    "test_gpu_oom_retry",
    "test_gate_decision",
    "test_heartbeat_timeout",
    "test_checkpoint_restore",
)
_SUITES = ("integration", "e2e", "regression-v3", "smoke")

# Placeholder name -> how to draw its value. Kept as data so templates stay readable one-liners.
_VALUES: dict[str, Callable[[random.Random], Any]] = {
    "pr": lambda r: r.randrange(300, 990),
    "step": lambda r: r.randrange(1, 90) * 1000,
    "ms": lambda r: r.randrange(18, 115),
    "slow_ms": lambda r: r.randrange(121, 162),
    "n": lambda r: r.randrange(2, 64),
    "m": lambda r: r.randrange(40, 900),
    "k": lambda r: r.randrange(1, 40),
    "pct": lambda r: r.randrange(55, 96),
    "file": lambda r: r.choice(_FILES),
    "change": lambda r: r.choice(_CHANGES),
    "test": lambda r: r.choice(_TESTS),
    "suite": lambda r: r.choice(_SUITES),
    "sha": lambda r: f"{r.getrandbits(28):07x}",
    "shard": lambda r: r.randrange(1, 9),
    "tokens": lambda r: r.randrange(300, 16000),
    "batch": lambda r: r.randrange(1000, 99999),
    "attempt": lambda r: r.randrange(1, 4),
    "sec": lambda r: r.randrange(3, 240),
    "gib": lambda r: r.choice((18, 24, 36, 48)),
    "run": lambda r: r.randrange(100, 400),
    "acc": lambda r: round(r.uniform(81.0, 88.0), 1),
    "drop": lambda r: round(r.uniform(1.2, 4.5), 1),
    "rank": lambda r: r.randrange(0, 8),
    "peer": lambda r: f"coder-{r.randrange(1, 20):02d}",
    "hours": lambda r: r.randrange(20, 42),
}


@dataclass(frozen=True, slots=True)
class Template:
    level: LogLevel
    text: str
    names: tuple[str, ...]  # placeholders, in order, drawn from _VALUES (or the agent's context)


def _t(level: LogLevel, weight: float, text: str) -> tuple[float, Template]:
    names = tuple(name for _, name, _, _ in string.Formatter().parse(text) if name)
    return weight, Template(level, text, names)


_BY_ROLE: dict[str, list[tuple[float, Template]]] = {
    "coder": [
        _t("info", 6, "merged PR #{pr} after review"),
        _t("info", 6, "opened PR #{pr}: {change}"),
        _t("debug", 10, "edited {file} (+{m} -{n} lines)"),
        _t("debug", 6, "unit tests for {file}: {m} passed"),
        _t("info", 3, "pushed {sha} to agent/pr-{pr}"),
        _t("warning", 2, "lint failed on {file}: {n} issues, fixing"),
        _t("error", 0.15, "git push rejected (non-fast-forward) on agent/pr-{pr}, rebasing"),
    ],
    "reviewer": [
        _t("info", 7, "approved PR #{pr}"),
        _t("info", 5, "requested changes on PR #{pr}: {n} comments"),
        _t("debug", 9, "diff for PR #{pr}: {n} files, +{m} -{k}"),
        _t("warning", 1.5, "PR #{pr} changes {file} without tests"),
    ],
    "tester": [
        _t("info", 7, "suite {suite}: {m} passed, 0 failed in {sec} s"),
        _t("debug", 10, "collected {m} tests from {file}"),
        _t("warning", 3, "flaky test {test} passed on retry {attempt}/3"),
        _t("error", 0.3, "suite {suite}: {test} failed with AssertionError"),
    ],
    "model-manager": [
        _t("debug", 12, "batch of {n} requests, {tokens} tokens, {ms} ms"),
        _t("info", 5, "checkpoint saved step={step}"),
        _t("info", 3, "KV cache at {pct}% of {gib} GiB"),
        _t("warning", 1.5, "CUDA OOM retry {attempt}/3 on a batch of {n} requests"),
        _t("warning", 1.5, "slow request: {slow_ms} ms for a batch of {n} requests"),
        _t("error", 0.15, "request timed out after 30000 ms in {model}, returned 504"),
        _t("critical", 0.08, "NCCL watchdog timeout after 600000 ms on rank {rank}"),
    ],
    "embedder": [
        _t("debug", 10, "embedded batch {batch}: {m} documents in {ms} ms"),
        _t("info", 4, "flushed {n}k vectors to index shard {shard}"),
        _t("warning", 1, "queue depth {m} over 500, throttling producers"),
    ],
    "retriever": [
        _t("debug", 12, "query answered in {ms} ms with {k} hits"),
        _t("info", 3, "reloaded index shard {shard} ({n}M vectors)"),
        _t("warning", 2, "slow query: {slow_ms} ms on index shard {shard}"),
        _t("error", 0.15, "shard {shard} timed out after 2000 ms, served partial results"),
    ],
    "evaluator": [
        _t("info", 6, "eval run {run}: accuracy {acc}% on regression-v3"),
        _t("debug", 8, "scored {m} samples of regression-v3"),
        _t("warning", 1.5, "eval run {run}: accuracy {drop} points below baseline"),
    ],
    "planner": [
        _t("info", 6, "planned {n} work items for milestone W7"),
        _t("debug", 8, "re-ranked backlog: {m} items"),
        _t("info", 3, "assigned PR #{pr} to {peer}"),
        _t("warning", 1, "milestone W7 at risk: {n} items left, due in {hours} h"),
    ],
    "indexer": [
        _t("info", 5, "indexed {m}k files from snapshot {sha}"),
        _t("debug", 8, "chunked {file} into {m} chunks"),
        _t("warning", 1, "skipped {n} binary files over 10 MiB"),
    ],
    "scheduler": [
        _t("debug", 10, "tick: {n} queued, {m} running, placed {k}"),
        _t("info", 3, "rebalanced {n} agents across GPUs"),
        _t("warning", 1, "no free GPU for a request, queued for {sec} s"),
    ],
    "obs-hub": [
        _t("debug", 10, "ingested {m}k samples from {n} agents"),
        _t("info", 2, "compacted the metrics store, {m} MiB freed"),
        _t("warning", 1, "{peer} sent samples {sec} s late"),
    ],
    "node": [
        _t("debug", 6, "heartbeat sweep: {m} agents ok"),
        _t("info", 2, "log segment rotated ({m} MiB)"),
        _t("info", 1, "nightly backup uploaded to s3://fleet-backups ({n} GiB)"),
        _t("warning", 0.8, "fsync on /var/lib/fleetdeck took {slow_ms} ms"),
        _t("error", 0.08, "failed to renew TLS certificate, retrying in {sec} s"),
        _t("critical", 0.05, "fleetdeck-agent@{n}.service watchdog timeout, restarting the unit"),
    ],
}

# (templates, cumulative weights) per role, so drawing a template is one rng.choices call.
_TABLES: dict[str, tuple[list[Template], list[float]]] = {
    role: ([tpl for _, tpl in rows], list(accumulate(w for w, _ in rows))) for role, rows in _BY_ROLE.items()
}


def draw_line(rng: random.Random, role: str, model: str | None) -> tuple[LogLevel, str, dict[str, Any]]:
    """One log line for an agent of ``role`` (or "node"): its level, message and structured fields."""
    templates, cum = _TABLES.get(role, _TABLES["node"])
    template = rng.choices(templates, cum_weights=cum)[0]
    values: dict[str, Any] = {}
    for name in template.names:
        values[name] = (model or "the model") if name == "model" else _VALUES[name](rng)
    return template.level, template.text.format(**values), values
