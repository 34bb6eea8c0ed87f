"""Rollback: checkpoint and roll back a git workspace of 10,000 files (50 MB) through the local node.

The product path, headless: a LocalBackend on a temporary state dir with one agent whose workspace is the
repository; ``checkpoint`` and ``rollback`` are the calls the console's `c` and `r` keys (and the CLI) make,
so a rollback includes what the operator gets with it: the refusal checks, pausing and resuming the agent,
the safety checkpoint of the messed-up tree, and the audit entries.

Each repetition: checkpoint, mess the tree up as an agent would (edits, deletions, new files, an ignored
log), roll back, and check the tree is the checkpoint's again (every file's bytes, by sha256, and no file
more or less). The first checkpoint of a workspace is reported apart (``checkpoint_first_s``): it is the
one that finds nothing cached from before.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.git_workspace import Mess, build, fingerprint, make_mess
from benchmarks.measure import Target

TITLE = "Rollback: checkpoint and roll back a 10,000-file (50 MB) git workspace"
TARGETS = {"rollback_s": Target(2.0, "rollback of the 10,000-file workspace < 2 s")}
OPERATOR = "bench"


async def _repetitions(state_dir: Path, repo: Path, mess: Mess, repetitions: int) -> dict[str, float]:
    from backends.local.backend import LocalBackend

    backend = LocalBackend(state_dir=state_dir)
    await backend.open()
    try:
        # A reporting agent at work in the repository: the checkpoint covers its workspace and the
        # rollback pauses and resumes it around the restore.
        backend.store.register_agent("coder", kind="reporting", state="running", workspace=str(repo))
        checkpoints, rollbacks = [], []
        for index in range(repetitions):
            expected = fingerprint(repo)
            start = time.perf_counter()
            checkpoint = await backend.checkpoint(f"before task {index}", operator=OPERATOR)
            checkpoints.append(time.perf_counter() - start)
            if f"workspace:{repo}" not in checkpoint.covers:
                raise RuntimeError(f"the checkpoint does not cover the workspace: {checkpoint.covers}")

            make_mess(repo, mess, seed=index + 1)
            if fingerprint(repo) == expected:
                raise RuntimeError("the mess changed nothing: the rollback would prove nothing")

            start = time.perf_counter()
            await backend.rollback(checkpoint.id, operator=OPERATOR, reason="benchmark")
            rollbacks.append(time.perf_counter() - start)

            restored = fingerprint(repo)
            if restored != expected:
                missing, extra = set(expected) - set(restored), set(restored) - set(expected)
                differ = [p for p in set(expected) & set(restored) if expected[p] != restored[p]]
                raise RuntimeError(
                    f"rollback did not restore the checkpoint: {len(missing)} missing, {len(extra)} extra, "
                    f"{len(differ)} different (e.g. {sorted(missing or extra or differ)[:3]})"
                )
            if not (repo / "agent.log").exists():
                raise RuntimeError("rollback removed an ignored file")
            (repo / "agent.log").unlink()  # the next repetition's mess writes it again
    finally:
        await backend.close()
    return {
        "checkpoint_s": round(statistics.median(checkpoints), 3),
        "checkpoint_first_s": round(checkpoints[0], 3),
        "rollback_s": round(statistics.median(rollbacks), 3),
        "rollback_max_s": round(max(rollbacks), 3),
    }


def measure(quick: bool) -> dict[str, float | str]:
    files, total_mb = (500, 2.5) if quick else (10_000, 50.0)
    mess = Mess(changed=25, deleted=5, added=5) if quick else Mess(changed=500, deleted=100, added=100)
    repetitions = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-rollback-") as tmp:
        repo = Path(tmp) / "workspace"
        build(repo, files=files, total_bytes=int(total_mb * 1024 * 1024))
        figures: dict[str, float | str] = dict(
            asyncio.run(_repetitions(Path(tmp) / "state", repo, mess, repetitions))
        )
    figures["workspace_files"] = files
    figures["workspace_mb"] = total_mb
    figures["note"] = (
        f"{files} files, {total_mb:g} MB; per repetition {mess.changed} edited, {mess.deleted} deleted, "
        f"{mess.added} added; median of {repetitions}; verified by sha256 of every file"
    )
    return figures
