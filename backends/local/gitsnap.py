"""Checkpoint and roll back an agent's git workspace with real git; the user's branch and stash stay.

A checkpoint is an ordinary commit whose tree is the working tree as it was — tracked files and untracked
ones, staged or not — kept under ``refs/fleetdeck/checkpoints/<id>``. Its parent is ``HEAD`` (none on an
unborn branch) and it is on no branch. The ref is what keeps it: ``git gc`` will not prune it, and
``git branch``/``git log`` do not show it.

What was staged is recorded beside it, as a commit (parent ``HEAD`` too) whose tree is the real index's,
under ``refs/fleetdeck/index/<id>``: a rollback restores the index with it, so what is staged afterwards is
what was staged at the checkpoint — never the version that was being rolled back, ready for the next
``git commit``. Both refs are created in one ref transaction. A checkpoint whose index could not be
written as a tree (unmerged entries), or one taken before the index was recorded, has no index ref, and a
rollback to it leaves the index as it is (its preview says so).

Every tree is built in a throw-away index (``GIT_INDEX_FILE`` pointing into a scratch directory under the
git dir, see git_scratch, so that one a killed process left behind is found and removed), never the user's,
so ``HEAD``, the branch and the stash are never touched, and the real index only by ``restore``, which
puts back the one the checkpoint recorded. That index starts as a copy of the one the previous snapshot of the
workspace left behind (kept as ``fleetdeck-index`` in the git dir, our file alone): git then re-hashes only
the files whose stat data changed since, instead of every file of the tree on every checkpoint and twice
on every rollback. It is only a cache: missing or unreadable, the tree is built from scratch.

What a checkpoint holds and what it does not:

* Files git ignores (``.gitignore``, ``.git/info/exclude``, ``core.excludesFile``) are not part of it,
  and a rollback neither restores nor removes them. Tracked files that happen to match an ignore pattern
  are tracked, so they are included.
* Content and git's notion of mode: regular, executable (100755) or symlink. Other permission bits,
  owners, timestamps and empty directories are not recorded.
* A nested repository (submodule or embedded repo) is recorded as the commit it has checked out; its
  files are not, and a rollback never deletes one.
* Of the index, the staged content and mode of every path. Not its flags: a path added with
  ``git add -N`` (intent to add) is untracked again after a rollback, and skip-worktree/assume-unchanged
  bits are not restored.
* "Byte for byte" holds for every file git stores as-is. Line-ending conversion from ``core.autocrlf``
  is switched off for our calls, but in-tree ``.gitattributes`` (``text``/``eol``/``filter``, e.g. LFS)
  still apply both ways; a file whose bytes do not survive its own attributes' round trip may differ.

Linked worktrees of one repository share its refs, so two agents in worktrees of the same repository
must use distinct checkpoint ids; ``snapshot`` refuses an id that already exists rather than overwrite it.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path

from . import git_scratch
from .gitcmd import IDENTITY, RAW, GitSnapError, git, split_z

__all__ = ["GitSnapError"]  # raised by every call here; tests and callers catch it from this module

REF_PREFIX = "refs/fleetdeck/checkpoints/"
#: what was staged at each checkpoint: a commit whose tree is the real index's, named like the checkpoint
INDEX_REF_PREFIX = "refs/fleetdeck/index/"

#: the stat cache of the working tree, per work tree (``git rev-parse --git-path`` resolves it)
INDEX_CACHE = "fleetdeck-index"

# Marker (relative to the git dir, resolved with `git rev-parse --git-path`) → why a rollback must wait.
# Order matters: rebase-apply is also used by `git am`, told apart by its "applying" file.
_MARKERS: tuple[tuple[str, str], ...] = (
    ("rebase-merge", "rebase in progress"),
    ("rebase-apply/applying", "am in progress"),
    ("rebase-apply", "rebase in progress"),
    ("MERGE_HEAD", "merge in progress"),
    ("CHERRY_PICK_HEAD", "cherry-pick in progress"),
    ("REVERT_HEAD", "revert in progress"),
    ("sequencer", "cherry-pick or revert sequence in progress"),
    ("BISECT_LOG", "bisect in progress"),
    ("index.lock", "another git process is running (index.lock)"),
)


def _toplevel(workspace: Path | str) -> Path:
    """The workspace, checked to be the top of a git work tree."""
    ws = Path(workspace)
    top = git(ws, "rev-parse", "--show-toplevel").strip()
    # A checkpoint covers a whole work tree; taken from a subdirectory it would capture, and a rollback
    # would rewrite, siblings that belong to someone else.
    if not top or not os.path.samefile(top, ws):
        raise GitSnapError(f"{ws} is inside the git work tree {top}, not the top of one")
    return ws


def _ref(workspace: Path, checkpoint_id: str) -> str:
    ref = REF_PREFIX + checkpoint_id
    try:
        git(workspace, "check-ref-format", ref)
    except GitSnapError as exc:
        if exc.returncode != 1:
            raise
        raise GitSnapError(f"{checkpoint_id!r} is not a valid checkpoint id (git ref name rules)") from None
    return ref


def _rev(workspace: Path, rev: str) -> str | None:
    """The commit ``rev`` names, or None where it does not exist (missing ref, unborn branch)."""
    try:
        return git(workspace, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}").strip()
    except GitSnapError as exc:
        if exc.returncode == 1:
            return None
        raise


def _checkpoint(workspace: Path, checkpoint_id: str, doing: str) -> str:
    sha = _rev(workspace, _ref(workspace, checkpoint_id))
    if sha is None:
        raise GitSnapError(f"{doing} {workspace} refused: it has no checkpoint {checkpoint_id!r}")
    return sha


def _git_paths(workspace: Path) -> tuple[Path, Path]:
    """The workspace's stat cache and the directory its scratch indexes live in (both in its git dir)."""
    out = git(workspace, "rev-parse", "--git-path", INDEX_CACHE, "--git-path", git_scratch.SCRATCH_DIR)
    cache, scratch = out.splitlines()
    return workspace / cache, workspace / scratch


def clean_scratch(workspace: Path) -> list[str]:
    """Remove the scratch indexes that processes killed mid-operation left in the workspace; their names."""
    return git_scratch.clean(_git_paths(_toplevel(workspace))[1])


def _worktree_tree(workspace: Path) -> str:
    """Write the working tree (tracked + untracked, not ignored) as a tree object; its sha."""
    cache, scratch = _git_paths(workspace)
    if not cache.is_file():
        return _tree_in_index(workspace, seed=None, cache=cache, scratch=scratch)
    try:
        return _tree_in_index(workspace, seed=cache, cache=cache, scratch=scratch)
    except GitSnapError:
        # Only a cache: one git cannot read (a torn copy, another git's index version) must not stop a
        # checkpoint. A real failure fails again below, with git's complaint.
        return _tree_in_index(workspace, seed=None, cache=cache, scratch=scratch)


def _index_tree(workspace: Path) -> str | None:
    """The tree of what is staged in the real index; None where it has no tree (unmerged entries).

    Written from a copy: ``write-tree`` on the index itself would rewrite it (its cache-tree) under the
    user's feet, and a copy of a file git replaces by rename is always a whole one.
    """
    real = workspace / git(workspace, "rev-parse", "--git-path", "index").strip()
    with git_scratch.scratch_index(_git_paths(workspace)[1]) as (_, env):
        with suppress(FileNotFoundError):  # nothing ever staged: git reads a missing index as empty
            shutil.copy2(real, env["GIT_INDEX_FILE"])
        try:
            return git(workspace, "write-tree", env=env).strip()
        except GitSnapError:
            return None


def _tree_in_index(workspace: Path, *, seed: Path | None, cache: Path, scratch: Path) -> str:
    with git_scratch.scratch_index(scratch) as (directory, env):
        index = env["GIT_INDEX_FILE"]
        if seed is not None:
            try:
                # copy2 keeps the mtime git gave the index: its racy-git check compares files against it.
                shutil.copy2(seed, index)
            except OSError:
                seed = None  # gone meanwhile: build from scratch
        if seed is not None and _repos_moved(workspace, env):
            os.unlink(index)
            seed = None
        git(workspace, *RAW, "add", "-A", env=env)
        # The user's index says which tracked files match an ignore pattern: a fresh index knows nothing
        # tracked, so `add -A` skips those, and a seeded one may hold files that have become ignored
        # since, which `add -A` keeps.
        tracked_ignored = set(split_z(git(workspace, "ls-files", "-z", "-c", "-i", "--exclude-standard")))
        if seed is not None:
            ours = split_z(git(workspace, "ls-files", "-z", "-c", "-i", "--exclude-standard", env=env))
            stale = [p for p in dict.fromkeys(ours) if p not in tracked_ignored]
            if stale:
                git(
                    workspace,
                    "update-index",
                    "--force-remove",
                    "-z",
                    "--stdin",
                    env=env,
                    input="\0".join(stale) + "\0",
                )
        present = [p for p in sorted(tracked_ignored) if _is_file_or_link(workspace / p)]
        if present:
            literal = {**env, "GIT_LITERAL_PATHSPECS": "1"}  # a name with * or ? is a name, not a glob
            git(
                workspace,
                *RAW,
                "add",
                "-f",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                env=literal,
                input="\0".join(present),
            )
        tree = git(workspace, "write-tree", env=env).strip()
        _keep_cache(index, cache, directory)
        return tree


def _repos_moved(workspace: Path, env: Mapping[str, str]) -> bool:
    """Whether a nested repository appeared or went away where the index holds files or a gitlink.

    `add -A` keeps what an index already tracks: files inside a directory that has since become a
    repository would stay files, and a gitlink whose repository is gone would stay a gitlink, where a
    fresh index records the repository's commit, or the plain files. Rare, so then we start afresh.
    """
    directories: set[str] = set()
    for entry in split_z(git(workspace, "ls-files", "-z", "-s", env=env)):
        mode, path = entry.partition(" ")[0], entry.split("\t", 1)[1]
        if mode == "160000" and not os.path.lexists(workspace / path / ".git"):
            return True
        parent = os.path.dirname(path)
        while parent and parent not in directories:
            directories.add(parent)
            parent = os.path.dirname(parent)
    return any(os.path.lexists(workspace / d / ".git") for d in directories)


def _keep_cache(index: str, cache: Path, directory: Path) -> None:
    """Put ``index`` in place as the workspace's stat cache, atomically; a failure only costs speed."""
    # The copy is made in our scratch directory, so a copy cut short by a kill is cleaned with it.
    partial = directory / "cache"
    try:
        shutil.copy2(index, partial)
        # Two snapshots at once each replace the whole file: the last one wins, and both are valid.
        os.replace(partial, cache)
    except OSError:
        pass


def _is_file_or_link(path: Path) -> bool:
    try:
        return not stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _diff(workspace: Path, old_tree: str, new_tree: str) -> list[tuple[str, str]]:
    """(status, path) for every path that differs; status is git's A/D/M/T going from old to new."""
    # diff-tree is plumbing: no user diff config (renames, external drivers) changes its output.
    out = git(workspace, "diff-tree", "-r", "-z", "--no-renames", "--name-status", old_tree, new_tree)
    fields = out.split("\0")
    return [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]


def is_git_workspace(path: Path | str) -> bool:
    """Whether ``path`` is the top of a git work tree (not a subdirectory of one, not a bare repo).

    False also where git is not installed: with no git there is no git workspace we could checkpoint.
    """
    try:
        _toplevel(path)
    except (GitSnapError, OSError):
        return False
    return True


def snapshot(workspace: Path, checkpoint_id: str, message: str) -> str:
    """Record the working tree as ``refs/fleetdeck/checkpoints/<checkpoint_id>``; the commit's sha.

    Tracked and untracked files are captured as they are on disk (not as staged); ignored ones are not.
    What is staged is recorded too, under ``refs/fleetdeck/index/<checkpoint_id>``. HEAD, the branch, the
    index and the stash are untouched. An existing id is refused, not overwritten.
    """
    ws = _toplevel(workspace)
    ref = _ref(ws, checkpoint_id)
    if _rev(ws, ref) is not None:
        raise GitSnapError(f"checkpoint {checkpoint_id!r} already exists in {ws}")
    tree = _worktree_tree(ws)
    staged = _index_tree(ws)
    head = _rev(ws, "HEAD")
    parents = ["-p", head] if head else []  # an unborn branch has nothing to hang the checkpoint on
    body = message.strip() or f"fleetdeck checkpoint {checkpoint_id}"
    # commit-tree runs no hooks; --no-gpg-sign because a signing prompt or agent must not block us.
    sha = git(ws, "commit-tree", "--no-gpg-sign", tree, *parents, env=IDENTITY, input=body + "\n").strip()
    # `create` refuses if the checkpoint's ref appeared meanwhile (linked worktrees share refs); the index
    # ref is only ever written with it, so one a failed delete left behind is simply replaced.
    updates = f"create {ref} {sha}\n"
    if staged is not None:
        index_body = f"fleetdeck index at checkpoint {checkpoint_id}\n"
        index_sha = git(ws, "commit-tree", "--no-gpg-sign", staged, *parents, env=IDENTITY, input=index_body)
        updates += f"update {INDEX_REF_PREFIX}{checkpoint_id} {index_sha.strip()}\n"
    git(ws, "update-ref", "-m", f"fleetdeck checkpoint {checkpoint_id}", "--stdin", input=updates)
    return sha


def changed_since(workspace: Path, checkpoint_id: str) -> list[str]:
    """Paths (sorted, relative to the workspace) that differ between the checkpoint and the working tree now.

    Added, deleted, edited and mode-changed files all count; ignored files never do.
    """
    ws = _toplevel(workspace)
    sha = _checkpoint(ws, checkpoint_id, "comparing")
    return sorted(path for _, path in _diff(ws, f"{sha}^{{tree}}", _worktree_tree(ws)))


def staged_since(workspace: Path, checkpoint_id: str) -> tuple[list[str], bool] | None:
    """What a restore does to the index: the paths whose staged content it changes (sorted) and whether
    HEAD has moved since the checkpoint; None when the checkpoint recorded no index (it is left as it is).
    """
    ws = _toplevel(workspace)
    _checkpoint(ws, checkpoint_id, "comparing")
    recorded = _rev(ws, INDEX_REF_PREFIX + checkpoint_id)
    if recorded is None:
        return None
    now = _index_tree(ws)
    then = f"{recorded}^{{tree}}"
    # An index with unmerged entries has no tree: every path it holds would be replaced.
    changed = [path for _, path in _diff(ws, now, then)] if now else split_z(git(ws, "ls-files", "-z"))
    head_then = _rev(ws, f"{recorded}^")
    return sorted(set(changed)), head_then != _rev(ws, "HEAD")


def conflicting_operation(workspace: Path) -> str | None:
    """Why the workspace's git state forbids a rollback now (a rebase, merge, ... in progress), or None."""
    ws = Path(workspace)
    args = [a for marker, _ in _MARKERS for a in ("--git-path", marker)]
    paths = git(ws, "rev-parse", *args).splitlines()
    for (_, reason), path in zip(_MARKERS, paths, strict=True):
        if os.path.lexists(ws / path):  # relative paths are relative to our cwd, the workspace
            return reason
    return None


def restore(workspace: Path, checkpoint_id: str, *, previous: str | None = None) -> list[str]:
    """Make the working tree equal to the checkpoint; the paths it changed (sorted).

    Files in the checkpoint are written (content and mode); tracked or untracked files that are not in
    it are removed, and directories emptied by that too. Ignored files, ``.git`` and nested repositories
    are left alone, and so are files that already match (their timestamps included, so builds are not
    invalidated needlessly).

    Refused with GitSnapError, changing nothing, while a rebase/merge/cherry-pick/revert/bisect is in
    progress, while another git process holds the index lock, or when the checkpoint does not exist.

    The real index is then set to what was staged at the checkpoint (git's own ``read-tree``, under its
    index lock, keeping the stat data of entries that did not change), so ``git status`` shows what it
    showed then, and ``git diff --cached`` what was staged then — never what was staged for the version
    rolled back. HEAD, the branch and the stash are not modified: where HEAD moved since the checkpoint,
    the restored index stages the checkpoint's content against the new HEAD. A checkpoint that recorded
    no index (see the module docstring) leaves the index as it is.

    Not atomic, but re-runnable: a restore stopped anywhere (git failed, the process was killed) leaves
    some files restored and some not, and restoring again to the same checkpoint then gives exactly its
    tree, because every run compares what is on disk now (a file cut short mid-write included) with the
    checkpoint and writes only the difference. A directory the stopped run had emptied but not yet removed
    is invisible to that comparison (git records no directories): name the checkpoint the tree was
    restored from as ``previous`` and the directories its files had are removed too, once empty. Take a
    checkpoint first (the console's safety checkpoint) so that a failed or unwanted rollback can itself be
    undone.
    """
    ws = _toplevel(workspace)
    reason = conflicting_operation(ws)
    if reason is not None:
        raise GitSnapError(f"rollback of {ws} refused: {reason}; finish or abort it first")
    sha = _checkpoint(ws, checkpoint_id, "rollback of")
    changes = _diff(ws, _worktree_tree(ws), f"{sha}^{{tree}}")
    # Removals go first: where a file becomes a directory, or a directory a file, the old one must be
    # out of the way before git writes the new.
    _remove(ws, [path for status, path in changes if status == "D"])
    if previous is not None:
        before = _checkpoint(ws, previous, "rollback of")
        gone = [path for status, path in _diff(ws, f"{before}^{{tree}}", f"{sha}^{{tree}}") if status == "D"]
        _prune_parents(ws, gone)
    to_write = [path for status, path in changes if status != "D"]
    if to_write:
        with git_scratch.scratch_index(_git_paths(ws)[1]) as (_, env):
            git(ws, "read-tree", sha, env=env)
            # Only the differing paths: checkout-index -a would rewrite (and re-date) every file.
            git(ws, *RAW, "checkout-index", "-f", "-z", "--stdin", env=env, input="\0".join(to_write) + "\0")
    staged = _rev(ws, INDEX_REF_PREFIX + checkpoint_id)
    if staged is not None:
        # Last, so a restore stopped before it runs it again; -m keeps the stat data of unchanged entries
        # (git re-reads only the files it rewrote) and, like every run of it, is idempotent.
        git(ws, "read-tree", "--reset", f"{staged}^{{tree}}")
    return sorted(path for _, path in changes)


def _remove(workspace: Path, paths: list[str]) -> None:
    root = os.path.realpath(workspace)
    for rel in paths:
        if rel.split("/", 1)[0] == ".git":  # git never records these; never risk the repository itself
            continue
        target = os.path.join(root, rel)
        parent = os.path.dirname(target)
        # Git does not record paths beneath a symlink, but the tree is live: never follow one out of it.
        if os.path.realpath(parent) != parent:
            continue
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(mode):  # a nested repository recorded as a gitlink: its content is not ours
            continue
        os.unlink(target)
        _prune_empty_dirs(root, parent)


def _prune_parents(workspace: Path, paths: Iterable[str]) -> None:
    """Remove the directories that held ``paths`` where they are empty now; never a file."""
    root = os.path.realpath(workspace)
    for directory in sorted({os.path.dirname(os.path.join(root, rel)) for rel in paths}, reverse=True):
        if os.path.realpath(directory) == directory:  # never through a symlink out of the tree
            _prune_empty_dirs(root, directory)


def _prune_empty_dirs(root: str, directory: str) -> None:
    while directory != root and directory.startswith(root + os.sep):
        try:
            os.rmdir(directory)  # fails, as intended, on a directory still holding anything (ignored files)
        except OSError:
            return
        directory = os.path.dirname(directory)


def delete(workspace: Path, checkpoint_id: str) -> None:
    """Drop the checkpoint's refs (git gc may then prune its commits); a missing one is a no-op."""
    ws = _toplevel(workspace)
    ref = _ref(ws, checkpoint_id)
    git(ws, "update-ref", "--stdin", input=f"delete {ref}\ndelete {INDEX_REF_PREFIX}{checkpoint_id}\n")


def list_checkpoints(workspace: Path) -> list[str]:
    """The workspace's checkpoint ids, oldest first (ties by id)."""
    ws = _toplevel(workspace)
    # The last --sort key is the primary one.
    out = git(ws, "for-each-ref", "--sort=refname", "--sort=committerdate", "--format=%(refname)", REF_PREFIX)
    return [line[len(REF_PREFIX) :] for line in out.splitlines() if line.startswith(REF_PREFIX)]
