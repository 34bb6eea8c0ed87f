"""A real program in a real pseudo-terminal: spawn it at a fixed size, watch what it draws, type keys.

What the startup benchmark needs to time ``fleetdeck demo`` to its first frame the way a user sees it: the
program gets a tty on stdin/stdout/stderr (so Textual runs its real driver, not the headless one), a window
size set with TIOCSWINSZ, and TERM=xterm-256color. The screen is matched as text with the escape sequences
taken out; a frame's words are written whole between style changes, so a name on screen is a name in it.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence

# CSI (cursor moves, styles, mode switches), OSC (titles, colour queries) and two-byte escapes.
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def _without_size(environ: Mapping[str, str]) -> dict[str, str]:
    # COLUMNS and LINES, where a shell exports them, would win over the pty's size (shutil.get_terminal_size).
    return {k: v for k, v in environ.items() if k not in ("COLUMNS", "LINES")}


class TerminalProcess:
    """A child process on the slave side of a pty; this object reads and writes the master side."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        size: tuple[int, int] = (120, 40),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self._master, slave = os.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.raw = bytearray()
        self.started = time.perf_counter()
        # A session of its own makes the pty its controlling terminal, as a login shell's would be.
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**_without_size(os.environ), "TERM": "xterm-256color", **(env or {})},
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)

    def text(self) -> str:
        """Everything drawn so far, escape sequences removed."""
        return _ESCAPES.sub(b"", bytes(self.raw)).decode("utf-8", "replace")

    def read(self, timeout: float) -> bool:
        """Read what the program has written within ``timeout`` s; False once the terminal is closed."""
        ready, _, _ = select.select([self._master], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self._master, 1 << 16)
        except OSError:  # EIO: every slave side is closed, the program is gone
            return False
        self.raw += chunk
        return bool(chunk)

    def wait_for(self, needles: Sequence[str], timeout: float) -> float:
        """Seconds from the spawn until every one of ``needles`` is on screen; TimeoutError if not."""
        deadline = time.perf_counter() + timeout
        while True:
            text = self.text()
            if all(n in text for n in needles):
                return time.perf_counter() - self.started
            left = deadline - time.perf_counter()
            if left <= 0 or (not self.read(min(left, 0.05)) and self.process.poll() is not None):
                tail = text[-300:].replace("\n", " ")
                raise TimeoutError(
                    f"{needles} not on screen after {timeout} s (exit {self.process.poll()}): {tail!r}"
                )

    def send(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def close(self, *, quit_keys: str = "q", timeout: float = 5.0) -> int:
        """Quit with ``quit_keys``, reading on so the program never blocks on a full pty; kill if it hangs."""
        try:
            if self.process.poll() is None and quit_keys:
                self.send(quit_keys)
            deadline = time.perf_counter() + timeout
            while self.process.poll() is None and time.perf_counter() < deadline:
                if not self.read(0.05):
                    break
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what it started
            return self.process.wait(timeout=timeout)
        finally:
            os.close(self._master)
