"""Running git for the checkpoint code: one call, git's own complaint on failure, nothing inherited that
would point it at another repository, and no prompt that could block it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from backends.errors import BackendError

from .git_scratch import inherited_fds

#: generous: hashing a large working tree into a fresh index reads every file
GIT_TIMEOUT_S = 300.0

# Checkpoint commits must be possible on a machine with no git identity configured, and should say who
# made them; this also keeps their metadata independent of whoever runs the console.
IDENTITY = {
    "GIT_AUTHOR_NAME": "fleetdeck",
    "GIT_AUTHOR_EMAIL": "fleetdeck@localhost",
    "GIT_COMMITTER_NAME": "fleetdeck",
    "GIT_COMMITTER_EMAIL": "fleetdeck@localhost",
}

# Inherited from a parent git process (a hook, `git rebase --exec`), these would point our calls at another
# repository, index, object store or ref namespace than the workspace's own.
_REDIRECTING_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
    }
)

# Our trees must hold the files' bytes as they are, not as autocrlf would normalise them, and a mixed-
# line-ending file must not make `git add` die under core.safecrlf.
RAW = ("-c", "core.autocrlf=false", "-c", "core.safecrlf=false")


class GitSnapError(BackendError):
    """A git checkpoint operation failed or was refused; the message names the workspace and the reason."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        #: git's exit status when git itself failed, else None
        self.returncode = returncode


def git(
    workspace: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
) -> str:
    """Run ``git *args`` in ``workspace``; its stdout, or GitSnapError carrying git's own complaint."""
    full_env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_VARS}
    full_env["GIT_TERMINAL_PROMPT"] = "0"  # nobody is there to answer a prompt
    if env:
        full_env.update(env)
    data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
    command = next((a for a in args if not a.startswith("-") and "=" not in a), "")
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=workspace,
            env=full_env,
            input=data,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=True,
            pass_fds=inherited_fds(),  # the locks a git child of ours must hold as long as it runs
        )
    except FileNotFoundError as exc:
        # Popen reports a missing cwd the same way as a missing executable.
        if not Path(workspace).is_dir():
            raise GitSnapError(f"{workspace}: no such directory") from exc
        raise GitSnapError("git is not installed") from exc
    except NotADirectoryError as exc:
        raise GitSnapError(f"{workspace}: not a directory") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitSnapError(f"git {command} timed out after {GIT_TIMEOUT_S:.0f}s in {workspace}") from exc
    except subprocess.CalledProcessError as exc:
        lines = [ln.strip() for ln in decode(exc.stderr or b"").splitlines() if ln.strip()]
        # fatal:/error: lines say why; the last one is usually the summary an operator needs
        detail = next((ln for ln in reversed(lines) if ln.startswith(("fatal:", "error:"))), "")
        detail = detail or (lines[-1] if lines else f"exit status {exc.returncode}")
        raise GitSnapError(f"git {command} failed in {workspace}: {detail}", exc.returncode) from exc
    return decode(proc.stdout)


def decode(raw: bytes) -> str:
    # Paths are bytes to git; surrogateescape lets a non-UTF-8 name survive the round trip to the filesystem.
    return raw.decode("utf-8", "surrogateescape")


def split_z(out: str) -> list[str]:
    return [p for p in out.split("\0") if p]
