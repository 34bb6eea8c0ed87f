"""A rollback puts back what git had staged at the checkpoint, and its undo puts back what was staged before.

Real git repositories, a real local node with a supervised agent working in the repository, driven through
the real command line (`checkpoint`, `rollback --yes`) and through the console (r, the preview in the
confirmation, ctrl+z). What is checked is what the user's git says: ``git status --porcelain``,
``git diff --cached`` and ``git ls-files -s``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from console.app import FleetDeckApp
from console.core.config import Config
from console.core.fleet_setup import local_link
from console.dialogs.confirm import ConfirmDialog
from console.dialogs.rollback import RollbackPicker
from console.snapshot import screen_text

from .agents.local_node import LocalNode
from .test_local_cli import git as run_git  # git with no user or system config, a fixed identity

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local node reads /proc")

BROKEN = "def main():\n    return 1 / 0  # broken\n"


def git(repo: Path, *args: str) -> str:
    return run_git(repo, *args).stdout


def staged(repo: Path) -> dict[str, str]:
    """What the user's git says about the index: the whole of it, and how it differs from HEAD and disk."""
    return {
        "status": git(repo, "status", "--porcelain"),
        "cached": git(repo, "diff", "--cached"),
        "index": git(repo, "ls-files", "-s"),
    }


def repo_with_v1(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "main.py").write_text("def main():\n    return 1\n")
    (repo / "README.md").write_text("v1\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def agent_in(node: LocalNode, repo: Path) -> None:
    node.start_python("coder", "sleeper.py", options=("--workspace", str(repo)))
    node.wait_running("coder")


def rollback(node: LocalNode, checkpoint: str) -> str:
    """Roll back through the CLI; the id of the safety checkpoint that undoes it."""
    result = node.cli("rollback", checkpoint, "--yes")
    assert result.returncode == 0, result.stderr
    undo = re.search(r"undo with: fleetdeck rollback (\S+)", result.stdout)
    assert undo, result.stdout
    return undo[1]


def test_a_rollback_unstages_the_broken_version_and_its_undo_stages_it_again(
    node: LocalNode, tmp_path: Path
) -> None:
    repo = repo_with_v1(tmp_path)
    agent_in(node, repo)
    checkpoint = node.json("checkpoint", "--label", "v1, clean")["id"]
    assert staged(repo)["status"] == ""

    (repo / "src" / "main.py").write_text(BROKEN)
    git(repo, "add", "src/main.py")
    broken = staged(repo)
    assert broken["status"] == "M  src/main.py\n" and "broken" in broken["cached"]

    undo = rollback(node, checkpoint)
    after = staged(repo)
    assert after["status"] == "", "nothing staged or changed: the next git commit commits nothing broken"
    assert after["cached"] == ""
    assert (repo / "src" / "main.py").read_text() == "def main():\n    return 1\n"

    rollback(node, undo)
    assert staged(repo) == broken, "the undo stages the broken version again, exactly"
    assert (repo / "src" / "main.py").read_text() == BROKEN


def test_what_was_staged_at_the_checkpoint_is_staged_again(node: LocalNode, tmp_path: Path) -> None:
    repo = repo_with_v1(tmp_path)
    agent_in(node, repo)
    (repo / "README.md").write_text("v2, staged\n")
    git(repo, "add", "README.md")
    (repo / "README.md").write_text("v3, not staged\n")  # staged and unstaged changes to one file
    (repo / "new.txt").write_text("a new file, staged\n")
    git(repo, "add", "new.txt")
    (repo / "notes.txt").write_text("untracked\n")
    at_checkpoint = staged(repo)
    assert at_checkpoint["status"] == "MM README.md\nA  new.txt\n?? notes.txt\n"
    checkpoint = node.json("checkpoint", "--label", "mid-work")["id"]

    # the agent stages everything and goes on
    (repo / "src" / "main.py").write_text(BROKEN)
    (repo / "new.txt").unlink()
    git(repo, "add", "-A")
    (repo / "later.txt").write_text("later\n")
    before_rollback = staged(repo)

    undo = rollback(node, checkpoint)
    assert staged(repo) == at_checkpoint
    assert (repo / "README.md").read_text() == "v3, not staged\n"
    assert git(repo, "show", ":README.md") == "v2, staged\n"

    rollback(node, undo)
    assert staged(repo) == before_rollback


async def test_the_console_says_what_the_rollback_stages_before_it_is_confirmed(
    node: LocalNode, tmp_path: Path
) -> None:
    repo = repo_with_v1(tmp_path)
    agent_in(node, repo)
    node.ok("checkpoint", "--label", "v1, clean")
    (repo / "src" / "main.py").write_text(BROKEN)
    git(repo, "add", "src/main.py")
    broken = staged(repo)

    link = local_link(time.time, state_dir=str(node.state_dir))
    app = FleetDeckApp([link], config=Config(operator="tester"), clock=time.time)
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 30
        while link.snapshot is None or not link.snapshot.checkpoints:
            assert time.monotonic() < deadline, "the console never saw the checkpoint"
            await pilot.pause(0.1)
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RollbackPicker)
        await pilot.press("enter")
        deadline = time.monotonic() + 30
        while not isinstance(app.screen, ConfirmDialog):
            assert time.monotonic() < deadline, "no confirmation"
            await pilot.pause(0.1)
        dialog = app.screen
        said = "git index restored: 1 staged path(s) as at the checkpoint (src/main.py)"
        assert any(line.endswith(f"changed since (src/main.py); {said}") for line in dialog.touched)
        assert "what git has staged go back" in " ".join(screen_text(app).split())
        await pilot.click("#confirm")
        deadline = time.monotonic() + 60
        while link.name not in app.actions.undo:
            assert time.monotonic() < deadline, "the rollback never finished"
            await pilot.pause(0.2)
    assert staged(repo)["status"] == ""

    undo = app.actions.undo[link.name].id
    rollback(node, undo)
    assert staged(repo) == broken
