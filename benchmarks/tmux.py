"""A tmux server of our own for running terminal programs side by side at a fixed size.

The server listens on a socket named for this process (``tmux -L``) and reads no config (``-f /dev/null``),
so nothing here can touch anyone else's sessions, and ``kill`` ends only this server and what runs in it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence


class TmuxServer:
    def __init__(self, label: str = "fleetdeck-bench") -> None:
        self.socket = f"{label}-{os.getpid()}"
        self._socket_path: str | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("tmux") is not None

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def start(
        self,
        session: str,
        argv: Sequence[str],
        *,
        size: tuple[int, int],
        env: Mapping[str, str] | None = None,
    ) -> int:
        """Run ``argv`` alone in a new detached session of ``size`` (columns, rows); the program's pid."""
        # `exec` makes the program the pane's process itself, not a child of a shell; COLUMNS and LINES,
        # where exported, would win over the pane's size.
        assignments = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in {"TERM": "xterm-256color", **(env or {})}.items()
        )
        command = f"exec env -u COLUMNS -u LINES {assignments} {shlex.join(argv)}"
        columns, rows = size
        self._tmux("new-session", "-d", "-s", session, "-x", str(columns), "-y", str(rows), command)
        self._socket_path = self._socket_path or self._tmux("display-message", "-p", "#{socket_path}").strip()
        return int(self._tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])

    def screen(self, session: str) -> str:
        """What the session's pane shows now, as text."""
        return self._tmux("capture-pane", "-p", "-t", session)

    def server_pid(self) -> int:
        return int(self._tmux("display-message", "-p", "#{pid}").strip())

    def stop(self, session: str) -> None:
        """End the session: tmux hangs up on its program."""
        self._tmux("kill-session", "-t", session)

    def kill(self) -> None:
        """End this server and every session in it, and remove its socket; a server already gone is fine."""
        subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", "kill-server"], capture_output=True, timeout=10
        )
        if self._socket_path:
            with contextlib.suppress(OSError):
                os.unlink(self._socket_path)  # tmux leaves it behind
