"""A flooding node in a process of its own: the real node server (``create_app`` under uvicorn, as
``fleetdeck node serve`` runs it) serving a :class:`~benchmarks.flood_backend.FloodBackend`.

    python -m benchmarks.flood_node --rate 10000 --total 300000

prints ``fleetdeck node serve: NAME on http://127.0.0.1:PORT`` once listening, then reads its stdin:
``begin EPOCH`` starts the flood at that time; end of input (the parent gone) shuts the node down.
:class:`FloodNode` is the parent's side: start, begin, stop and reap.
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.flood_backend import FloodBackend

STARTUP_LINE = re.compile(r"^fleetdeck node serve: (?P<name>\S+) on (?P<url>http://\S+)$")
STARTUP_TIMEOUT_S = 30.0
ROOT = Path(__file__).resolve().parent.parent


class FloodNode:
    """The node process, from the parent: ``with FloodNode(rate, total, env=...) as node: node.begin(t0)``."""

    def __init__(self, rate: float, total: int, *, env: dict[str, str]) -> None:
        self.rate = rate
        self.total = total
        self.env = env
        self.url = ""
        self.name = ""
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    def __enter__(self) -> FloodNode:
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        command = [sys.executable, "-m", "benchmarks.flood_node", "--rate", str(self.rate)]
        command += ["--total", str(self.total)]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        line = self._first_line()
        match = STARTUP_LINE.match(line or "")
        if match is None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the flood node did not start (printed {line!r}): {self.stderr_text()}")
        self.name, self.url = match["name"], match["url"]
        return self

    def _first_line(self) -> str | None:
        """The startup line; stdout is drained after it so the node never blocks on a full pipe."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        box: list[str] = []
        done = threading.Event()

        def read() -> None:
            box.append(stdout.readline().rstrip("\n"))
            done.set()
            for _ in stdout:
                pass

        threading.Thread(target=read, name="flood-node-stdout", daemon=True).start()
        done.wait(STARTUP_TIMEOUT_S)
        return box[0] if box else None

    def begin(self, at: float) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"begin {at!r}\n")
        self.process.stdin.flush()

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the node process has used so far."""
        import psutil

        assert self.process is not None
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process = self.process
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # the node shuts down at the end of its input
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()


# --- the node's side ------------------------------------------------------------------------------------


def _read_commands(backend: FloodBackend) -> None:
    """``begin EPOCH`` lines start the flood; end of input stops the server (SIGTERM: a clean shutdown)."""
    for line in sys.stdin:
        word, _, value = line.strip().partition(" ")
        if word == "begin":
            backend.begin(float(value))  # one float set from this thread, read by the server's loop
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--total", type=int, required=True)
    args = parser.parse_args()

    from backends.node_server.app import create_app
    from backends.node_server.server import Listen, bind, serve
    from benchmarks.flood_backend import FloodBackend

    backend = FloodBackend(rate=args.rate, total=args.total, clock=time.time)
    sock = bind(Listen("127.0.0.1", 0))
    threading.Thread(target=_read_commands, args=(backend,), name="commands", daemon=True).start()
    asyncio.run(serve(create_app(backend), sock, name=backend.info.name, access_log=False))


if __name__ == "__main__":
    main()
