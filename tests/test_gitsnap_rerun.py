"""gitsnap.restore is re-runnable: from any state a restore stopped half-way can leave, restoring again to the
same checkpoint gives exactly its tree, and no temporary index outlives the process that made it."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import psutil
import pytest

from backends.local import git_scratch, gitsnap

from .test_gitsnap import g, init, no_git_config, worktree, write

__all__ = ["no_git_config"]  # the autouse fixture, imported so it applies here too

ROOT = Path(__file__).resolve().parent.parent


def directories(root: Path) -> set[str]:
    found: set[str] = set()
    for top, dirs, _ in os.walk(root):
        dirs[:] = [d for d in dirs if not (top == str(root) and d == ".git")]
        found.update(Path(top, d).relative_to(root).as_posix() for d in dirs)
    return found


def implied_dirs(files: Iterable[str]) -> set[str]:
    return {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}


def two_states(repo: Path, files: int) -> tuple[dict[str, tuple[bytes | str, int]], str, str]:
    """Checkpoint "a", then change the tree (edits, deletions, additions, mode changes, a file that becomes
    a directory and one that stops being one) and checkpoint that as "b". Returns a's tree and both ids."""
    init(repo)
    for i in range(files):
        write(repo / f"d{i % 9}" / f"f{i}.txt", f"a {i}\n" * (1 + i % 20), 0o755 if i % 13 == 0 else None)
    write(repo / "was-a-file", "a file in a\n")
    write(repo / "was-a-dir" / "inner.txt", "in a directory in a\n")
    os.symlink("d0/f0.txt", repo / "link")
    g(repo, "add", "-A")
    g(repo, "commit", "-q", "-m", "a")
    gitsnap.snapshot(repo, "a", "a")
    a_tree = worktree(repo)
    for i in range(0, files, 2):
        write(repo / f"d{i % 9}" / f"f{i}.txt", f"b {i}\n" * (3 + i % 7))
    for i in range(1, files, 5):
        (repo / f"d{i % 9}" / f"f{i}.txt").unlink()
    for i in range(0, files, 10):
        (repo / f"d{i % 9}" / f"f{i}.txt").chmod(0o755)
    for j in range(files // 4):
        write(repo / "added" / f"x{j % 5}" / f"n{j}.txt", f"new {j}\n")
    (repo / "was-a-file").unlink()
    write(repo / "was-a-file" / "now-inside.txt", "b made it a directory\n")
    (repo / "was-a-dir" / "inner.txt").unlink()
    (repo / "was-a-dir").rmdir()
    write(repo / "was-a-dir", "b made it a file\n")
    (repo / "link").unlink()
    os.symlink("d1/f1.txt", repo / "link")
    gitsnap.snapshot(repo, "b", "b")
    return a_tree, "a", "b"


def scramble(repo: Path, a_tree: dict[str, tuple[bytes | str, int]], rng: random.Random) -> None:
    """Leave the tree as a restore from b to a stopped anywhere could: each differing path as in b, as in a,
    gone, or cut short mid-write, and directories emptied but not yet removed."""
    for path in sorted(gitsnap.changed_since(repo, "a")):
        target = repo / path
        choice = rng.choice(("keep", "restored", "gone", "torn"))
        if choice == "keep":
            continue
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            continue  # b's directory in the way of a's file: its files are handled one by one
        if choice == "gone" or path not in a_tree:
            continue
        content, mode = a_tree[path]
        if mode == 0:
            if target.is_symlink():
                continue
            os.symlink(str(content), target)
            continue
        for parent in reversed(Path(path).parents[:-1]):  # removals come first: b's file in a's way
            if (repo / parent).is_file():
                (repo / parent).unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content if isinstance(content, bytes) else content.encode()
        target.write_bytes(data if choice == "restored" else data[: len(data) // 2])
        target.chmod(mode)


@pytest.mark.parametrize("seed", range(6))
def test_restore_again_from_any_half_way_state_gives_the_exact_tree(tmp_path: Path, seed: int) -> None:
    repo = tmp_path / "repo"
    a_tree, a, b = two_states(repo, files=300)
    scramble(repo, a_tree, random.Random(seed))
    gitsnap.restore(repo, a, previous=b)
    assert worktree(repo) == a_tree
    # Directories b had and a has not are gone too, even those the stopped restore had already emptied.
    assert directories(repo) == implied_dirs(a_tree)
    assert gitsnap.changed_since(repo, a) == []
    assert gitsnap.restore(repo, a, previous=b) == [], "a restore to the tree already there changes nothing"


def git_children_in(repo: Path) -> list[psutil.Process]:
    """Every live process working in ``repo`` (git runs with the workspace as its cwd)."""
    found = []
    for candidate in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if candidate.cwd() == str(repo) and candidate.status() != psutil.STATUS_ZOMBIE:
                found.append(candidate)
    return found


def test_restore_killed_at_random_moments_then_run_again_gives_the_exact_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    a_tree, a, b = two_states(repo, files=1_500)
    b_tree = worktree(repo)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    code = f"from backends.local import gitsnap; gitsnap.restore({str(repo)!r}, {a!r})"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)

    started = time.monotonic()
    whole = start()
    assert whole.wait(timeout=120) == 0, whole.stderr.read() if whole.stderr else ""
    span = time.monotonic() - started
    rng = random.Random(7)
    for _ in range(6):
        gitsnap.restore(repo, b)
        assert worktree(repo) == b_tree
        process = start()
        time.sleep(rng.uniform(0.1 * span, span))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        # A git child outlives the killed process and may still be writing files. A rollback's recovery
        # waits for it (the child holds rollback.lock); restore alone does not, so wait as recovery would.
        # Found by its working directory after the kill, not as a child before it: one started in between
        # was missed that way and wrote into the tree after the second restore.
        psutil.wait_procs(git_children_in(repo), timeout=60)
        gitsnap.restore(repo, a, previous=b)
        assert worktree(repo) == a_tree
        assert directories(repo) == implied_dirs(a_tree)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("fleetdeck")], "temp index in TMPDIR"
    left = repo / ".git" / "fleetdeck-tmp"

    def cleaned() -> bool:
        # A git child of the last killed process may still be working in its scratch index (it holds the
        # lock): the next clean removes it once that child is done, never while it works.
        git_scratch.clean(left)
        return not left.exists() or not list(left.iterdir())

    deadline = time.monotonic() + 60
    while not cleaned():
        assert time.monotonic() < deadline, "a killed process's temporary index was never cleaned"
        time.sleep(0.1)
