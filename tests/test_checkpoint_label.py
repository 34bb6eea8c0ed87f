"""Checkpoint labels on a real local node with a real git workspace: text is kept exactly as written (escape
sequences and markup included: showing it safely is the display's job), but a NUL is refused up front,
naming the field, since the label becomes each workspace's commit message and git refuses a NUL there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from backends.errors import Invalid
from backends.local.backend import LocalBackend

from .agents.local_node import LocalNode
from .hostile import ARGV_PAYLOAD

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses signals")


def _git_repo(path: Path) -> Path:
    path.mkdir()
    (path / "README").write_text("hello\n")
    ident = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", *ident, "-C", str(path), "add", "."], check=True)
    subprocess.run(["git", *ident, "-C", str(path), "commit", "-q", "-m", "init"], check=True)
    return path


async def test_a_nul_in_a_label_is_refused_and_any_other_text_is_kept(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    workspace = _git_repo(tmp_path / "ws")
    node = LocalNode(tmp_path, cli_env)
    try:
        run = node.start("ws-agent", sys.executable, "-c", "pass", options=("--workspace", str(workspace)))
        assert run.wait(timeout=60) == 0
        backend = LocalBackend(state_dir=node.state_dir)
        await backend.open()
        try:
            with pytest.raises(Invalid, match=r"^label: must not contain NUL"):
                await backend.checkpoint("before\x00after", operator="tester")
            kept = await backend.checkpoint(ARGV_PAYLOAD, operator="tester")
            assert kept.label == ARGV_PAYLOAD
            snapshot = await backend.snapshot()
            assert [c.label for c in snapshot.checkpoints] == [ARGV_PAYLOAD]  # the refused one left nothing
            assert f"workspace:{workspace}" in kept.covers
        finally:
            await backend.close()
    finally:
        node.reap()
