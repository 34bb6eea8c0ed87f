"""Git checkpoints with real git in tmp_path: snapshot, changed_since, restore byte for byte, refusals."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from backends.errors import BackendError
from backends.local import gitsnap
from backends.local.gitsnap import GitSnapError

# The fixture repos set user.useConfigOnly, so a module call that needed a configured identity would fail.
_TEST_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_EDITOR": "true",
}


@pytest.fixture(autouse=True)
def no_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in [*_TEST_IDENTITY, "EMAIL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"]:
        monkeypatch.delenv(var, raising=False)


def g(repo: Path, *args: str, check: bool = True) -> str:
    """The tests' own git, with an identity the module never sees."""
    proc = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **_TEST_IDENTITY}, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr.decode()}")
    return proc.stdout.decode()


def init(repo: Path) -> Path:
    repo.mkdir(parents=True)
    g(repo, "init", "-q", "-b", "main")
    g(repo, "config", "user.useConfigOnly", "true")
    return repo


def write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    if mode is not None:
        path.chmod(mode)


def worktree(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, tuple[bytes | str, int]]:
    """Every file under root except .git and ``skip``: path → (bytes, mode) or (link target, 0)."""
    state: dict[str, tuple[bytes | str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if d != ".git" and (rel_dir / d).as_posix() not in skip]
        for name in [*dirnames, *filenames]:
            rel = (rel_dir / name).as_posix()
            full = Path(dirpath) / name
            if rel in skip:
                continue
            if full.is_symlink():
                state[rel] = (os.readlink(full), 0)
            elif full.is_file():
                state[rel] = (full.read_bytes(), stat.S_IMODE(full.lstat().st_mode))
    return state


def git_state(repo: Path) -> dict[str, str]:
    """Everything a checkpoint operation must leave alone."""
    return {
        "head": g(repo, "rev-parse", "--verify", "-q", "HEAD", check=False),
        "branch": g(repo, "symbolic-ref", "-q", "HEAD", check=False),  # detached mid-rebase
        "index": g(repo, "ls-files", "-s"),
        "cached": g(repo, "diff", "--cached", "--name-only"),
        "stash": g(repo, "stash", "list"),
        "refs": g(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/stash"),
    }


IGNORED = frozenset({"build.log", "cache"})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Commits, a stash, staged and unstaged edits, untracked and ignored files, modes, odd names."""
    repo = init(tmp_path / "ws")
    write(repo / ".gitignore", "*.log\ncache/\n")
    write(repo / "README.md", "# readme\n")
    write(repo / "src/app.py", "print('v1')\n")
    write(repo / "src/util/helpers.py", "def h():\n    return 1\n")
    write(repo / "run.sh", "#!/bin/sh\necho run\n", 0o755)
    write(repo / "notes with spaces.txt", "spaces\n")
    write(repo / "ünïcødé.txt", "unicode ✓\n")
    write(repo / "staged.txt", "staged v1\n")
    write(repo / "vendor.log", "tracked although ignored\n")
    (repo / "link").symlink_to("src/app.py")
    g(repo, "add", "-A")
    g(repo, "add", "-f", "vendor.log")
    g(repo, "commit", "-qm", "init")
    write(repo / "src/app.py", "print('v2')\n")
    g(repo, "commit", "-qam", "second")
    write(repo / "README.md", "# stashed edit\n")
    g(repo, "stash", "-q")
    write(repo / "staged.txt", "staged v2\n")
    g(repo, "add", "staged.txt")
    write(repo / "staged.txt", "staged v3, not staged\n")  # index and worktree now differ
    write(repo / "src/util/helpers.py", "def h():\n    return 2\n")
    write(repo / "untracked dir/new.txt", "untracked\n")
    write(repo / "draft.md", "draft\n")
    write(repo / "build.log", "ignored\n")
    write(repo / "cache/blob.bin", "ignored too\n")
    return repo


def tree_of(repo: Path, sha: str) -> dict[str, str]:
    """path → mode in a commit's tree."""
    out = g(repo, "ls-tree", "-r", "-z", sha)
    return {entry.split("\t", 1)[1]: entry.split(" ", 1)[0] for entry in out.split("\0") if entry}


def test_snapshot_records_the_working_tree_and_touches_nothing_else(repo: Path) -> None:
    before, status = git_state(repo), g(repo, "status", "--porcelain")
    sha = gitsnap.snapshot(repo, "cp1", "before the agent's task")

    assert g(repo, "rev-parse", "refs/fleetdeck/checkpoints/cp1").strip() == sha
    assert git_state(repo) == before
    assert g(repo, "status", "--porcelain") == status
    files = tree_of(repo, sha)
    assert set(files) == {
        ".gitignore", "README.md", "src/app.py", "src/util/helpers.py", "run.sh", "notes with spaces.txt",
        "ünïcødé.txt", "staged.txt", "vendor.log", "link", "untracked dir/new.txt", "draft.md",
    }  # fmt: skip
    assert (files["run.sh"], files["link"], files["README.md"]) == ("100755", "120000", "100644")
    # what is on disk, not what is staged
    assert g(repo, "show", f"{sha}:staged.txt") == "staged v3, not staged\n"
    assert g(repo, "show", f"{sha}:README.md") == "# readme\n"  # the stashed edit is not in the worktree
    assert g(repo, "rev-parse", f"{sha}^").strip() == before["head"].strip()
    assert g(repo, "log", "-1", "--format=%an <%ae>|%cn|%s", sha).strip() == (
        "fleetdeck <fleetdeck@localhost>|fleetdeck|before the agent's task"
    )
    assert gitsnap.list_checkpoints(repo) == ["cp1"]


def _agent_works(repo: Path) -> set[str]:
    """What an agent does after the checkpoint; the paths that are then changed."""
    write(repo / "src/app.py", "print('agent')\n")
    (repo / "README.md").unlink()
    write(repo / "new file.txt", "new\n")
    write(repo / "newdir/deep/x.txt", "deep\n")
    write(repo / "notes with spaces.txt", "spaces, edited and staged\n")
    g(repo, "add", "notes with spaces.txt")
    (repo / "run.sh").chmod(0o644)
    (repo / "link").unlink()
    (repo / "link").symlink_to("README.md")
    (repo / "draft.md").unlink()
    write(repo / "ünïcødé.txt", "unicode ✗\n")
    write(repo / "vendor.log", "tracked, ignored, edited\n")
    write(repo / "build.log", "ignored, edited\n")  # ignored: never listed, never restored
    return {
        "src/app.py", "README.md", "new file.txt", "newdir/deep/x.txt", "notes with spaces.txt",
        "run.sh", "link", "draft.md", "ünïcødé.txt", "vendor.log",
    }  # fmt: skip


def test_changed_since_lists_exactly_the_changed_paths(repo: Path) -> None:
    gitsnap.snapshot(repo, "cp1", "m")
    assert gitsnap.changed_since(repo, "cp1") == []
    expected = _agent_works(repo)
    assert gitsnap.changed_since(repo, "cp1") == sorted(expected)


def test_restore_is_byte_for_byte_and_can_itself_be_undone(repo: Path) -> None:
    at_checkpoint = worktree(repo, IGNORED)
    staged_at_checkpoint = git_state(repo)
    gitsnap.snapshot(repo, "cp1", "m")
    changed = _agent_works(repo)
    after_agent = worktree(repo, IGNORED)
    state = git_state(repo)
    untouched_mtime = (repo / "src/util/helpers.py").stat().st_mtime_ns
    ignored_before = ((repo / "build.log").read_bytes(), (repo / "build.log").stat().st_mtime_ns)

    gitsnap.snapshot(repo, "safety", "before rollback")
    assert gitsnap.restore(repo, "cp1") == sorted(changed)

    assert worktree(repo, IGNORED) == at_checkpoint
    assert not (repo / "newdir").exists()  # emptied directories go too
    assert ((repo / "build.log").read_bytes(), (repo / "build.log").stat().st_mtime_ns) == ignored_before
    assert (repo / "cache/blob.bin").read_bytes() == b"ignored too\n"
    assert (repo / "src/util/helpers.py").stat().st_mtime_ns == untouched_mtime  # not rewritten
    # HEAD, branch and stash stay; the real index is the checkpoint's again (the staged notes edit is gone)
    assert git_state(repo) == staged_at_checkpoint
    assert gitsnap.changed_since(repo, "cp1") == []

    assert gitsnap.restore(repo, "safety") == sorted(changed)
    assert worktree(repo, IGNORED) == after_agent
    assert git_state(repo) == state


def test_restore_handles_type_changes(tmp_path: Path) -> None:
    repo = init(tmp_path / "ws")
    write(repo / "a", "file a\n")
    write(repo / "b/inner.txt", "in dir b\n")
    write(repo / "c", "file c\n")
    g(repo, "add", "-A")
    g(repo, "commit", "-qm", "init")
    at_checkpoint = worktree(repo)
    gitsnap.snapshot(repo, "cp", "m")
    (repo / "a").unlink()
    write(repo / "a/now/a/dir.txt", "dir\n")
    (repo / "b/inner.txt").unlink()
    (repo / "b").rmdir()
    write(repo / "b", "b is a file now\n")
    (repo / "c").unlink()
    (repo / "c").symlink_to("b")

    assert gitsnap.restore(repo, "cp") == ["a", "a/now/a/dir.txt", "b", "b/inner.txt", "c"]
    assert worktree(repo) == at_checkpoint


def _conflicting_repo(tmp_path: Path) -> Path:
    repo = init(tmp_path / "ws")
    write(repo / "a.txt", "base\n")
    g(repo, "add", "-A")
    g(repo, "commit", "-qm", "base")
    g(repo, "checkout", "-qb", "other")
    write(repo / "a.txt", "other side\n")
    g(repo, "commit", "-qam", "other")
    g(repo, "checkout", "-q", "main")
    write(repo / "a.txt", "main side\n")
    g(repo, "commit", "-qam", "main")
    return repo


def _assert_refused(repo: Path, reason: str) -> None:
    files, state = worktree(repo), git_state(repo)
    with pytest.raises(GitSnapError) as refused:
        gitsnap.restore(repo, "cp")
    assert reason in str(refused.value) and str(repo) in str(refused.value)
    assert isinstance(refused.value, BackendError)
    assert worktree(repo) == files
    assert git_state(repo) == state


def test_restore_refused_during_a_merge_conflict(tmp_path: Path) -> None:
    repo = _conflicting_repo(tmp_path)
    gitsnap.snapshot(repo, "cp", "m")
    g(repo, "merge", "other", check=False)  # fails: the conflict is the point
    assert (repo / ".git/MERGE_HEAD").exists() and "<<<<<<<" in (repo / "a.txt").read_text()
    assert gitsnap.conflicting_operation(repo) == "merge in progress"
    _assert_refused(repo, "merge in progress")
    assert (repo / ".git/MERGE_HEAD").exists()

    g(repo, "merge", "--abort")
    write(repo / "a.txt", "edited\n")
    assert gitsnap.conflicting_operation(repo) is None
    assert gitsnap.restore(repo, "cp") == ["a.txt"]
    assert (repo / "a.txt").read_text() == "main side\n"


def test_restore_refused_during_a_rebase(tmp_path: Path) -> None:
    repo = _conflicting_repo(tmp_path)
    g(repo, "checkout", "-q", "other")
    gitsnap.snapshot(repo, "cp", "m")
    g(repo, "rebase", "main", check=False)
    assert (repo / ".git/rebase-merge").is_dir()
    assert gitsnap.conflicting_operation(repo) == "rebase in progress"
    _assert_refused(repo, "rebase in progress")

    g(repo, "rebase", "--abort")
    assert gitsnap.conflicting_operation(repo) is None
    assert gitsnap.restore(repo, "cp") == []


def test_restore_refused_while_the_index_is_locked_or_the_checkpoint_is_missing(repo: Path) -> None:
    gitsnap.snapshot(repo, "cp", "m")
    write(repo / "src/app.py", "changed\n")
    (repo / ".git/index.lock").touch()
    _assert_refused(repo, "another git process is running (index.lock)")
    (repo / ".git/index.lock").unlink()
    gitsnap.delete(repo, "cp")
    _assert_refused(repo, "no checkpoint 'cp'")


def test_unborn_branch(tmp_path: Path) -> None:
    repo = init(tmp_path / "ws")
    write(repo / "first.txt", "first\n")
    write(repo / "staged.txt", "staged\n")
    g(repo, "add", "staged.txt")
    state = git_state(repo)
    at_checkpoint = worktree(repo)

    sha = gitsnap.snapshot(repo, "cp", "m")
    assert g(repo, "rev-list", "--parents", "-n1", sha).split() == [sha]  # no parent
    write(repo / "first.txt", "edited\n")
    write(repo / "later.txt", "later\n")
    assert gitsnap.changed_since(repo, "cp") == ["first.txt", "later.txt"]
    assert gitsnap.restore(repo, "cp") == ["first.txt", "later.txt"]
    assert worktree(repo) == at_checkpoint
    assert git_state(repo) == state and state["head"] == ""  # still unborn, index as it was


def test_empty_repository(tmp_path: Path) -> None:
    repo = init(tmp_path / "ws")
    sha = gitsnap.snapshot(repo, "cp", "")
    assert g(repo, "rev-parse", f"{sha}^{{tree}}").strip() == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    assert g(repo, "log", "-1", "--format=%s", sha).strip() == "fleetdeck checkpoint cp"
    write(repo / "d/e/f.txt", "x\n")
    assert gitsnap.restore(repo, "cp") == ["d/e/f.txt"]
    assert [p.name for p in repo.iterdir()] == [".git"]


def test_list_delete_and_ids(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
    gitsnap.snapshot(repo, "z", "m")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-02T00:00:00Z")
    gitsnap.snapshot(repo, "b", "m")
    first_a = gitsnap.snapshot(repo, "a", "m")
    assert gitsnap.list_checkpoints(repo) == ["z", "a", "b"]  # oldest first, then by id
    write(repo / "draft.md", "changed\n")
    with pytest.raises(GitSnapError, match="checkpoint 'a' already exists in"):
        gitsnap.snapshot(repo, "a", "m")
    assert g(repo, "rev-parse", "refs/fleetdeck/checkpoints/a").strip() == first_a
    for bad in ["", "has space", "dots..", "x.lock"]:
        with pytest.raises(GitSnapError, match="not a valid checkpoint id"):
            gitsnap.snapshot(repo, bad, "m")
    gitsnap.delete(repo, "a")
    gitsnap.delete(repo, "a")  # already gone: fine
    assert gitsnap.list_checkpoints(repo) == ["z", "b"]
    with pytest.raises(GitSnapError, match="no checkpoint 'a'"):
        gitsnap.changed_since(repo, "a")


def test_is_git_workspace(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert gitsnap.is_git_workspace(repo)
    assert not gitsnap.is_git_workspace(plain)
    assert not gitsnap.is_git_workspace(tmp_path / "missing")
    assert not gitsnap.is_git_workspace(repo / "src")  # inside one, not the top of one
    assert not gitsnap.is_git_workspace(repo / ".git")
    with pytest.raises(GitSnapError, match="not a git repository"):
        gitsnap.snapshot(plain, "cp", "m")
    with pytest.raises(GitSnapError, match="not the top"):
        gitsnap.snapshot(repo / "src", "cp", "m")


def test_git_not_installed(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert not gitsnap.is_git_workspace(repo)
    with pytest.raises(GitSnapError, match=r"^git is not installed$"):
        gitsnap.snapshot(repo, "cp", "m")


def _fresh_tree(repo: Path, checkpoint_id: str) -> str:
    """The tree a snapshot records with no stat cache left from earlier snapshots."""
    (repo / ".git" / gitsnap.INDEX_CACHE).unlink()
    return g(repo, "rev-parse", gitsnap.snapshot(repo, checkpoint_id, "m") + "^{tree}").strip()


def _tree(repo: Path, sha: str) -> str:
    return g(repo, "rev-parse", sha + "^{tree}").strip()


def test_the_stat_cache_records_the_same_trees_as_a_fresh_index(repo: Path) -> None:
    # Each case is one a cached index would get wrong if `add -A` were simply run on it again.
    gitsnap.snapshot(repo, "warm", "m")
    assert (repo / ".git" / gitsnap.INDEX_CACHE).is_file()
    write(repo / ".gitignore", "*.log\ncache/\ndraft.md\n")  # an untracked file becomes ignored
    write(repo / "src/app.py", "print('edited')\n")
    cached = _tree(repo, gitsnap.snapshot(repo, "ignored", "m"))
    files = tree_of(repo, cached)
    assert "draft.md" not in files and "vendor.log" in files  # tracked although ignored: kept
    assert cached == _fresh_tree(repo, "ignored-fresh")

    # A directory of plain files becomes a repository, and a repository becomes plain files.
    write(repo / "sub/a.txt", "plain files first\n")
    write(repo / "later/b.txt", "a repository first\n")
    g(repo / "later", "init", "-q")
    g(repo / "later", "add", "-A")
    g(repo / "later", "commit", "-qm", "inner")
    gitsnap.snapshot(repo, "before", "m")
    g(repo / "sub", "init", "-q")
    g(repo / "sub", "add", "-A")
    g(repo / "sub", "commit", "-qm", "inner")
    shutil.rmtree(repo / "later/.git")
    cached = _tree(repo, gitsnap.snapshot(repo, "repos", "m"))
    files = tree_of(repo, cached)
    assert files["sub"] == "160000" and files["later/b.txt"] == "100644"
    assert cached == _fresh_tree(repo, "repos-fresh")


def test_an_unreadable_stat_cache_is_rebuilt(repo: Path) -> None:
    gitsnap.snapshot(repo, "first", "m")
    (repo / ".git" / gitsnap.INDEX_CACHE).write_bytes(b"not an index")
    write(repo / "src/app.py", "print('edited')\n")
    sha = gitsnap.snapshot(repo, "second", "m")
    assert g(repo, "show", f"{sha}:src/app.py") == "print('edited')\n"
    assert _tree(repo, sha) == _fresh_tree(repo, "fresh")
