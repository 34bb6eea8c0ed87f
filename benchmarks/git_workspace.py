"""A large git workspace for the rollback benchmark: built, committed, messed up the way an agent does, and
fingerprinted so a rollback can be checked against the checkpoint it restored.

The files look like a source tree (nested directories, text of varied sizes, a few big ones) rather than
random bytes, so git's hashing and compression see what they would see in a real workspace.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The benchmark's own commits need an identity whatever the machine's git config says.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass(frozen=True)
class Mess:
    """What an agent did to the workspace after the checkpoint."""

    changed: int
    deleted: int
    added: int


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        ["git", *args], cwd=repo, env={**env, **_GIT_ENV}, capture_output=True, text=True, check=True
    )
    return done.stdout


def _text(rng: random.Random, size: int) -> bytes:
    """``size`` bytes of printable lines: compressible like source code, never identical between files."""
    raw = base64.b64encode(rng.randbytes(size * 3 // 4 + 3))[:size]
    return b"\n".join(raw[i : i + 79] for i in range(0, len(raw), 80))[:size]


def _sizes(rng: random.Random, files: int, total_bytes: int) -> list[int]:
    # Log-normal, like a real tree: most files a few KB, a few hundreds of KB; scaled to the total.
    weights = [rng.lognormvariate(0.0, 1.2) for _ in range(files)]
    scale = total_bytes / sum(weights)
    return [max(1, int(w * scale)) for w in weights]


def _paths(rng: random.Random, files: int) -> list[str]:
    # About 30 files a directory, up to four levels deep.
    dirs = max(1, files // 30)
    tops = [f"pkg{i:02d}" for i in range(max(1, dirs // 20))]
    directories = []
    for i in range(dirs):
        depth = rng.randint(1, 3)
        parts = [rng.choice(tops), *(f"mod{rng.randrange(40):02d}" for _ in range(depth - 1)), f"d{i:04d}"]
        directories.append("/".join(parts))
    return [f"{rng.choice(directories)}/file{i:05d}.py" for i in range(files)]


def build(repo: Path, *, files: int, total_bytes: int, seed: int = 1) -> None:
    """A committed repository at ``repo`` holding ``files`` files of ``total_bytes`` in all."""
    rng = random.Random(seed)
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for path, size in zip(_paths(rng, files), _sizes(rng, files, total_bytes), strict=True):
        full = repo / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(_text(rng, size))
    (repo / ".gitignore").write_text("*.log\n__pycache__/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")


def tracked_files(repo: Path) -> list[str]:
    """Every file under ``repo`` but ``.git`` and ignored ones, relative, sorted."""
    out = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted(p for p in dict.fromkeys(out.split("\0")) if p and (repo / p).exists())


def fingerprint(repo: Path) -> dict[str, str]:
    """path -> sha256 of every non-ignored file: what a rollback must bring back exactly."""
    return {p: hashlib.sha256((repo / p).read_bytes()).hexdigest() for p in tracked_files(repo)}


def make_mess(repo: Path, mess: Mess, *, seed: int) -> None:
    """Edit, delete and add files the way an agent's task does; also leaves an ignored log behind."""
    rng = random.Random(seed)
    # .gitignore stays as it is: the ignored log below must stay ignored for the check after the rollback.
    existing = [p for p in tracked_files(repo) if p != ".gitignore"]
    picked = rng.sample(existing, mess.changed + mess.deleted)
    for path in picked[: mess.changed]:
        full = repo / path
        data = full.read_bytes()
        cut = rng.randrange(len(data) + 1)
        full.write_bytes(data[:cut] + b"\n# edited by the agent\n" + _text(rng, rng.randint(10, 2000)))
    for path in picked[mess.changed :]:
        (repo / path).unlink()
    directories = sorted({str(Path(p).parent) for p in existing})
    for i in range(mess.added):
        # Some into existing directories, some into new ones.
        parent = rng.choice(directories) if i % 2 else f"generated/run{seed}/part{i % 7}"
        full = repo / parent / f"new{seed}_{i:04d}.py"
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(_text(rng, rng.randint(100, 20_000)))
    (repo / "agent.log").write_text("ignored: a rollback leaves it alone\n")
