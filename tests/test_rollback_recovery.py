"""A rollback killed half-way is found by the next command and recovered, with nothing left frozen or lost.

A real git workspace of a few thousand files, a real agent supervised by ``fleetdeck run`` in it, a real
``fleetdeck checkpoint``; then ``fleetdeck rollback CKPT --yes`` as a subprocess, killed with SIGKILL at
seeded random moments across the time one whole rollback takes here, and at each named step (through the
test hook ``FLEETDECK_ROLLBACK_HOLD_AT``, inert unless set). After each kill ``fleetdeck rollback
--recover --yes`` must leave: the workspace byte for byte either as it was before or as the checkpoint
holds it, the agent running (never SIGSTOPped, never left "paused"), an audit trail that says the
rollback was interrupted and how it ended, no temporary index left behind, and an undo id that exists.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from backends.errors import Conflict
from backends.local.gitsnap import GitSnapError
from backends.local.rollback_journal import JOURNAL
from backends.local.store import Store

from .agents.local_node import LocalNode, proc_state, wait_for
from .test_local_cli import git

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses signals")

FILES = 2_000
STEP_FILES = 400  # at a named step what counts is the step, not the size
KILLS = 20
SEED = 20261201
#: the steps a rollback goes through, in order, each one a moment the hook can hold it at
STEPS = ("journaled", "paused", "safety-refs", "safety-recorded", "restored", "state-restored", "resumed")

Digest = dict[str, tuple[str, bool, bool]]


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    # Every temporary file the commands make lands here, so the test can see that none is left behind.
    (tmp_path / "tmp").mkdir()
    local.env["TMPDIR"] = str(tmp_path / "tmp")
    yield local
    local.reap()


# --- the workspace ---------------------------------------------------------------------------------------


def make_workspace(repo: Path, files: int) -> None:
    for i in range(files):
        path = repo / f"d{i % 40}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {i}\n".encode() * (1 + i % 50))
        if i % 97 == 0:
            path.chmod(0o755)
    (repo / "link").symlink_to("d0/f0.txt")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    (repo / "untracked.txt").write_text("not committed, still part of a checkpoint\n")


def change_workspace(repo: Path, files: int) -> None:
    """From the checkpoint's state to the 'before' state: always the same edits, so always the same tree."""
    for i in range(0, files, 5):
        (repo / f"d{i % 40}" / f"f{i}.txt").write_bytes(f"changed {i}\n".encode() * (2 + i % 30))
    for i in range(0, files, 101):
        (repo / f"d{i % 40}" / f"f{i}.txt").chmod(0o700)
    for i in range(1, files, 9):
        (repo / f"d{i % 40}" / f"f{i}.txt").unlink()
    for j in range(files // 10):
        path = repo / "new" / f"n{j % 10}" / f"g{j}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"new {j}\n".encode() * 20)
    (repo / "untracked.txt").unlink()


def digest(repo: Path) -> Digest:
    """path -> (sha256, executable, symlink) for every file, .git left out."""
    found: Digest = {}
    for top, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if not (top == str(repo) and d == ".git")]
        for name in files:
            path = Path(top) / name
            mode = path.lstat().st_mode
            data = os.readlink(path).encode() if stat.S_ISLNK(mode) else path.read_bytes()
            rel = path.relative_to(repo).as_posix()
            found[rel] = (hashlib.sha256(data).hexdigest(), bool(mode & stat.S_IXUSR), stat.S_ISLNK(mode))
    return found


def temp_leftovers(node: LocalNode, repo: Path) -> list[str]:
    """Temporary indexes (or their directories) any fleetdeck command left behind."""
    left = [str(p) for p in (node.tmp_path / "tmp").iterdir()]
    for entry in (repo / ".git").iterdir():
        if entry.name == "fleetdeck-tmp":
            left += [str(p) for p in entry.iterdir()]
        elif entry.name.startswith("fleetdeck") and entry.name != "fleetdeck-index":
            left.append(str(entry))
    return left


# --- the node --------------------------------------------------------------------------------------------


class Scene:
    """One node with a supervised agent in a git workspace, a checkpoint, and the workspace changed since."""

    def __init__(self, node: LocalNode, files: int = FILES) -> None:
        self.node = node
        self.files = files
        self.repo = node.tmp_path / "repo"
        make_workspace(self.repo, files)
        node.start_python("coder", "sleeper.py", options=("--workspace", str(self.repo)))
        self.pid = int(node.wait_running("coder")["pid"])
        self.checkpoint = node.json("checkpoint", "--label", "good")["id"]
        self.target = digest(self.repo)
        change_workspace(self.repo, files)
        self.before = digest(self.repo)
        assert self.before != self.target
        self.store = Store(node.state_dir, verify=False)
        self.journal = node.state_dir / JOURNAL
        self.undo_ids: list[str] = []

    def rollback(self, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "console", "rollback", self.checkpoint, "--yes"],
            env={**self.node.env, **(env or {})},
            cwd=self.node.tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def hold_at(self, step: str) -> None:
        """Start a rollback, let it reach ``step`` and kill it there."""
        flag = self.node.tmp_path / f"held-{step}"
        process = self.rollback({"FLEETDECK_ROLLBACK_HOLD_AT": f"{step}:{flag}"})
        wait_for(lambda: flag.exists() or process.poll() is not None, f"the rollback to reach {step}")
        assert process.poll() is None, f"the rollback ended before {step}: {process.communicate()}"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        flag.unlink()

    def timed_rollback(self) -> tuple[float, float, float]:
        """A whole rollback, timed from its start: when its journal appeared (the first change is after
        that), when it went (the rollback is done), and when the process ended."""
        journal = self.journal
        started = time.monotonic()
        process = self.rollback()
        began = ended = None
        while process.poll() is None:
            now = time.monotonic() - started
            if journal.exists():
                began = now if began is None else began
            elif began is not None and ended is None:
                ended = now
            time.sleep(0.005)
        span = time.monotonic() - started
        assert process.returncode == 0 and began is not None, process.communicate()
        return began, ended or span, span

    def audit_seq(self) -> int:
        return self.store.last_audit_seq()

    def recover_and_check(self, since_seq: int, what: str) -> str:
        """Recover; check the workspace, the agent, the audit and the leftovers; returns how it ended:
        "untouched" (killed before it began), "finished" (before the kill) or "recovered". Then put the
        workspace back as it was before, for the next try."""
        result = self.node.cli("rollback", "--recover", "--yes")
        assert result.returncode == 0, f"{what}: recover -> {result.returncode}: {result.stderr}"
        now = digest(self.repo)
        assert now in (self.before, self.target), f"{what}: the workspace is neither before nor checkpoint"
        # not frozen, and not left paused by the rollback
        assert proc_state(self.pid) not in ("T", None), f"{what}: the agent is SIGSTOPped, or gone"
        assert self.store.agent_record("coder").state == "running", f"{what}: the agent's row"
        assert not temp_leftovers(self.node, self.repo), f"{what}: {temp_leftovers(self.node, self.repo)}"
        trail = [
            (e.outcome, e.detail or "")
            for e in self.store.audit_since(since_seq)
            if e.action == "rollback" and e.target == f"checkpoint:{self.checkpoint}"
        ]
        ending = self._ending(trail, now, result.stdout, what)
        if now == self.target:
            change_workspace(self.repo, self.files)
        return ending

    def _ending(self, trail: Sequence[tuple[str, str]], now: Digest, out: str, what: str) -> str:
        if not trail:
            assert now == self.before, f"{what}: no audit entry, yet the workspace changed"
            assert "nothing to recover" in out, out
            return "untouched"
        assert now == self.target, f"{what}: a rollback on record must end at its checkpoint"
        if len(trail) == 1:
            assert trail[0][0] == "ok" and "recovered" not in trail[0][1], f"{what}: {trail}"
            assert "nothing to recover" in out, out
            return "finished"
        (first, first_detail), (last, last_detail) = trail[0], trail[-1]
        assert len(trail) == 2 and first == "failed" and "interrupted" in first_detail, f"{what}: {trail}"
        assert last == "ok" and "recovered" in last_detail, f"{what}: {trail}"
        undo = re.search(r"undo with: fleetdeck rollback (\S+)", out)
        assert undo, f"{what}: recovery must print the undo id: {out}"
        assert undo[1] in last_detail
        self.undo_ids.append(undo[1])
        return "recovered"

    def close(self) -> None:
        self.store.close()


def test_rollback_killed_at_random_moments_is_recovered(node: LocalNode) -> None:
    scene = Scene(node)
    try:
        # Two whole rollbacks first: they must work, and the second (git's object store and stat cache
        # warm, as for the ones after it) says when a rollback here begins to change things and when it
        # is done.
        for _ in range(2):
            seq = scene.audit_seq()
            began, ended, span = scene.timed_rollback()
            assert scene.recover_and_check(seq, "a whole rollback") == "finished"

        # Killed at random moments across it, from a little before it begins to change things to its very
        # end. The moments are counted from when its journal appears, as the interpreter's start-up before
        # that varies more, from run to run, than the rest of the rollback takes.
        rng = random.Random(SEED)
        window = ended - began
        endings: list[str] = []
        for _ in range(KILLS):
            moment = rng.uniform(-0.1, 1.0) * window
            seq = scene.audit_seq()
            process = scene.rollback()
            if moment < 0:
                time.sleep(began + moment)
            else:
                wait_for(
                    lambda p=process: scene.journal.exists() or p.poll() is not None,  # type: ignore[misc]
                    "the journal",
                    interval=0.005,
                )
                time.sleep(moment)
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
            what = f"killed {moment:+.2f} s after the journal appeared (a rollback takes {window:.2f} s more)"
            endings.append(scene.recover_and_check(seq, what))
        print(f"rollback: changes from {began:.2f} s to {ended:.2f} s of {span:.2f} s; kills: {endings}")
        assert endings.count("recovered") >= KILLS // 2, f"too few kills landed mid-rollback: {endings}"

        # Every undo id recovery printed is a real checkpoint, and the last one undoes the rollback exactly.
        assert set(scene.undo_ids) <= {c["id"] for c in node.json("checkpoints")}
        node.ok("rollback", scene.checkpoint, "--yes")
        node.ok("rollback", scene.undo_ids[-1], "--yes")
        assert digest(scene.repo) == scene.before
    finally:
        scene.close()


def test_rollback_killed_at_each_step_is_found_and_recovered(node: LocalNode) -> None:
    scene = Scene(node, files=STEP_FILES)
    try:
        for step in STEPS:
            scene.hold_at(step)
            if step in ("journaled", "paused"):
                assert digest(scene.repo) == scene.before, f"no file may change before {step} is done"
            if step in ("journaled", "restored"):
                # the next command on the node says so, and says what to run; no new rollback meanwhile
                agents = node.cli("agents")
                assert agents.returncode == 0, agents.stderr
                assert "interrupted" in agents.stderr and "fleetdeck rollback --recover" in agents.stderr
                refused = node.cli("rollback", scene.checkpoint, "--yes")
                assert refused.returncode == 1 and "--recover" in refused.stderr
            if step == "restored":
                status = node.cli("status")
                assert status.returncode == 2 and "interrupted" in status.stdout, status.stdout
                wait_for(lambda: supervisor_said(scene.store), "the supervisor's warning in the agent's log")
            seq = scene.audit_seq()  # a refusal is on record too: the story starts after it
            assert scene.recover_and_check(seq, f"held at {step}") == "recovered"
        assert "interrupted" not in node.cli("agents").stderr
        assert set(scene.undo_ids) <= {c["id"] for c in node.json("checkpoints")}
    finally:
        scene.close()


def supervisor_said(store: Store) -> bool:
    return any(
        "interrupted" in r.message and "fleetdeck rollback --recover" in r.message
        for r in store.logs_since(0, source="coder")
    )


async def test_the_console_offers_recovery_through_the_confirm_dialog(node: LocalNode) -> None:
    from backends.local.backend import LocalBackend
    from console.app import FleetDeckApp
    from console.core.config import Config
    from console.core.node_link import NodeLink
    from console.dialogs.confirm import ConfirmDialog

    scene = Scene(node, files=200)
    try:
        seq = scene.audit_seq()
        scene.hold_at("safety-recorded")

        link = NodeLink("local", LocalBackend(state_dir=node.state_dir), clock=time.time)
        app = FleetDeckApp([link], config=Config(operator="alice", refresh_s=0.5), clock=time.time)
        async with app.run_test(size=(120, 40)) as pilot:

            async def notified() -> bool:
                for _ in range(100):
                    await pilot.pause(0.05)
                    if any("fleetdeck rollback --recover" in str(n.message) for n in app._notifications):
                        return True
                return False

            assert await notified(), [str(n.message) for n in app._notifications]
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            recover = next(c for title, c in commands.items() if title.startswith("Recover"))
            recover.callback()
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog)
            assert any(scene.checkpoint in line for line in dialog.touched)
            await pilot.click("#confirm")
            for _ in range(200):
                await pilot.pause(0.05)
                if link.name in app.actions.undo:
                    break
            assert link.name in app.actions.undo, [str(n.message) for n in app._notifications]
        await link.backend.close()
        trail = [e for e in scene.store.audit_since(seq) if e.action == "rollback"]
        assert [e.outcome for e in trail] == ["failed", "ok"] and trail[-1].operator == "alice"
        assert "interrupted" in (trail[0].detail or "") and "recovered" in (trail[-1].detail or "")
        assert digest(scene.repo) == scene.target
        assert proc_state(scene.pid) != "T" and scene.store.agent_record("coder").state == "running"
    finally:
        scene.close()


# --- a step that fails (git refuses, the disk is full) rather than a kill --------------------------------


def _in_process_node(tmp_path: Path) -> tuple[Any, Store, Path]:
    from backends.local.actions import Actions

    repo = tmp_path / "repo"
    make_workspace(repo, 30)
    store = Store(tmp_path / "node")
    store.register_agent("planner", kind="reporting", state="running", workspace=str(repo))
    actions = Actions(store, tmp_path / "node", node="local", read_only=False, python=sys.executable)
    return actions, store, repo


def test_a_rollback_failing_before_any_file_changed_resumes_its_agents_and_forgets_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.local import gitsnap

    actions, store, repo = _in_process_node(tmp_path)
    checkpoint = actions.checkpoint("good", "alice", None)
    change_workspace(repo, 30)
    before = digest(repo)
    real = gitsnap.snapshot
    monkeypatch.setattr(gitsnap, "snapshot", lambda *a, **k: (_ for _ in ()).throw(GitSnapError("disk full")))
    with pytest.raises(GitSnapError, match="disk full"):
        actions.rollback(checkpoint.id, "alice", None)
    monkeypatch.setattr(gitsnap, "snapshot", real)
    assert digest(repo) == before
    assert store.agent_record("planner").state == "running", "the pause it took is undone"
    assert actions.interrupted_rollback() is None and not (tmp_path / "node" / JOURNAL).exists()
    assert actions.rollback(checkpoint.id, "alice", None).automatic  # nothing is left in its way
    store.close()


def test_a_rollback_failing_half_way_keeps_its_journal_and_recovery_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.local import gitsnap

    actions, store, repo = _in_process_node(tmp_path)
    checkpoint = actions.checkpoint("good", "alice", None)
    target = digest(repo)
    change_workspace(repo, 30)
    real = gitsnap.restore

    def half(workspace: Path, checkpoint_id: str, **kwargs: Any) -> list[str]:
        for path in sorted(gitsnap.changed_since(workspace, checkpoint_id))[::2]:
            (workspace / path).unlink(missing_ok=True)  # some of the work done, then git fails
        raise GitSnapError("checkout-index failed: No space left on device")

    monkeypatch.setattr(gitsnap, "restore", half)
    with pytest.raises(Conflict, match="fleetdeck rollback --recover"):
        actions.rollback(checkpoint.id, "alice", "drill")
    monkeypatch.setattr(gitsnap, "restore", real)
    assert store.agent_record("planner").state == "paused", "not to work on a half-restored tree"
    notice = actions.interrupted_rollback()
    assert notice and checkpoint.id in notice
    with pytest.raises(Conflict, match="--recover"):
        actions.checkpoint("meanwhile", "alice", None)

    safety = actions.recover_rollback("bob", None)
    assert safety is not None and digest(repo) == target
    assert store.agent_record("planner").state == "running"
    trail = [(e.operator, e.outcome) for e in store.audit_since(0) if e.action == "rollback"]
    assert trail == [("alice", "failed"), ("bob", "ok")], "failed half-way (said once), then recovered"
    assert actions.recover_rollback("bob", None) is None
    store.close()
