"""``fleetdeck node serve`` as a child process, exactly as an operator starts it, for the benchmarks.

    with ServedNode("--state-dir", str(state_dir), env=isolated_env(tmp)) as node:
        httpx.get(f"{node.url}/v1/snapshot")
        node.cpu_seconds()            # the server's own CPU time so far (user + system)

The node listens on an ephemeral 127.0.0.1 port (``--listen 127.0.0.1:0``); the URL is read from its
startup line. On exit it gets SIGTERM (a clean shutdown), then SIGKILL if it hangs, and is always reaped.
Stdout is drained and stderr (the access log) goes to a temporary file, so no pipe can fill and stall it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

STARTUP_LINE = re.compile(r"^fleetdeck node serve: (?P<name>.+) on (?P<url>https?://\S+)$")
STARTUP_TIMEOUT_S = 30.0
ROOT = Path(__file__).resolve().parent.parent


def isolated_env(home: Path) -> dict[str, str]:
    """This environment with config and state under ``home``: a run never reads the user's config or
    writes the user's node, and inherits no FLEETDECK_* setting."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLEETDECK_")}
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = home / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    return env


class ServedNode:
    """``python -m console node serve --listen 127.0.0.1:0 ARGS...``; ``url`` once it is listening."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self.url = ""
        self.name = ""
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    def __enter__(self) -> ServedNode:
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        command = [sys.executable, "-m", "console", "node", "serve", "--listen", "127.0.0.1:0", *self.args]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        try:
            line = self._startup_line()
            match = STARTUP_LINE.match(line or "")
            if match is None:
                raise RuntimeError(
                    f"`fleetdeck node serve {' '.join(self.args)}` did not start "
                    f"(first line {line!r}); stderr:\n{self.stderr_text()[-2000:]}"
                )
        except BaseException:
            self._stop()
            raise
        self.name, self.url = match["name"], match["url"]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far, every thread (user + system)."""
        import psutil

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def auth(self) -> dict[str, str]:
        """The owner's credential (a server without --tokens admits only its local operator token)."""
        token_file = Path(self.env["XDG_STATE_HOME"]) / "fleetdeck" / "local-operator.token"
        return {"Authorization": f"Bearer {token_file.read_text().strip()}"}

    def stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def _startup_line(self) -> str | None:
        """The first stdout line (then stdout is drained for good); None if it never comes."""
        process = self.process
        assert process is not None and process.stdout is not None
        box: list[str] = []
        got = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            first = process.stdout.readline()
            if first:
                box.append(first.rstrip("\r\n"))
            got.set()
            for _ in process.stdout:
                pass

        threading.Thread(target=read, name="served-node-stdout", daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not got.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                return None
        return box[0] if box else None

    def _stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
