"""Real servers for tests: the ``fleetdeck node serve`` subprocess, and any ASGI app on a uvicorn thread.

Both listen on an ephemeral 127.0.0.1 port (DESIGN.md §7: a real uvicorn, real httpx, no mocks).

    with ServedNode("--demo", env=cli_env) as node:      # the real CLI, as an operator would run it
        httpx.get(f"{node.url}/healthz")
        node.kill(); node.restart()                       # same URL again: clients can reconnect

    with serve_asgi(create_app(backend)) as base_url:     # an app built in the test (or a hand-made one)
        httpx.get(f"{base_url}/healthz")
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import uvicorn

# The one line ``fleetdeck node serve`` prints to stdout once its socket is bound (IPv6 hosts in brackets).
STARTUP_LINE = re.compile(
    r"^fleetdeck node serve: (?P<name>.+) on (?P<url>(?P<scheme>https?)://(?P<host>\[[^\]]+\]|[^\s:]+):(?P<port>\d+))$"
)
STARTUP_TIMEOUT_S = 20.0


class ServerStartError(RuntimeError):
    """The server exited, or never printed its startup line; the message carries its stderr."""


class ServedNode:
    """``python -m console node serve ARGS...`` as a subprocess, with its URL once it is listening.

    ``env`` is the whole environment of the child: pass the test's isolated XDG dirs (the ``cli_env``
    fixture) so the server never reads or writes the real user's state. Stdout is read for the startup
    line (and drained after it); stderr goes to a file, read back in errors and by :meth:`stderr_text`,
    so an access log can never fill a pipe and stall the server.
    """

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str],
        cwd: str | Path | None = None,
        timeout: float = STARTUP_TIMEOUT_S,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        if "XDG_STATE_HOME" not in env:
            # a test must never serve (or write into) the state of the machine running it: the node's
            # store, and the local operator token the server keeps in the state home
            raise ValueError("ServedNode needs env with XDG_STATE_HOME (e.g. the cli_env fixture)")
        self.args: tuple[str, ...] = args
        self.env = dict(env)
        self.cwd = str(cwd) if cwd is not None else None
        self.timeout = timeout
        self.preexec_fn = preexec_fn  # runs in the child before exec (e.g. to lower its fd limit)
        self.process: subprocess.Popen[str] | None = None
        self.name = ""
        self.url = ""
        self.scheme = ""
        self.host = ""
        self.port = 0
        self._stderr: IO[str] | None = None
        self._stderr_chunks: list[str] = []  # stderr of earlier runs (before restart)

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self, args: Sequence[str] | None = None) -> ServedNode:
        """Start the server and wait for its startup line; raise :class:`ServerStartError` if it fails."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the server is already running")
        self._collect_stderr()
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        command = [sys.executable, "-m", "console", "node", "serve", *(self.args if args is None else args)]
        self.process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            preexec_fn=self.preexec_fn,
        )
        line = self._read_startup_line(self.process)
        match = STARTUP_LINE.match(line) if line is not None else None
        if match is None:
            self._terminate(signal.SIGKILL)
            why = "exited" if line is None else f"printed {line!r} instead of its startup line"
            raise ServerStartError(
                f"`fleetdeck node serve {' '.join(self.args)}` {why} (rc={self.process.returncode}); "
                f"stderr:\n{self.stderr_text()}"
            )
        self.name, self.url, self.scheme = match["name"], match["url"], match["scheme"]
        self.host, self.port = match["host"], int(match["port"])
        return self

    def _read_startup_line(self, process: subprocess.Popen[str]) -> str | None:
        """The first stdout line, or None when the process exits or the timeout passes without one."""
        assert process.stdout is not None
        box: list[str] = []
        got_line = threading.Event()

        def read() -> None:
            stdout = process.stdout
            assert stdout is not None
            first = stdout.readline()
            if first:
                box.append(first.rstrip("\r\n"))
            got_line.set()
            for _ in stdout:  # keep draining: a full pipe must not block the server
                pass

        threading.Thread(target=read, name="served-node-stdout", daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while not got_line.wait(0.05):
            if time.monotonic() > deadline:
                return None
        return box[0] if box else None

    def kill(self) -> int:
        """SIGKILL: the node dies without any cleanup, as in a crash. Returns the exit status."""
        return self._terminate(signal.SIGKILL)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: a clean shutdown. Returns the exit status."""
        return self._terminate(signal.SIGTERM, timeout=timeout)

    def restart(self, *, attempts: int = 20) -> ServedNode:
        """Start again with the same arguments, but ``--listen`` pinned to the port it got the first time.

        The old process is killed first if it still runs. A port just freed by a killed process may be
        briefly unavailable, so the start is retried a few times on failure.
        """
        if not self.port:
            raise RuntimeError("restart() needs a server that started once")
        if self.process is not None and self.process.poll() is None:
            self.kill()
        args = _pin_listen(self.args, self.host, self.port)
        for attempt in range(attempts):
            try:
                return self.start(args)
            except ServerStartError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.25)
        raise AssertionError("unreachable")

    def _terminate(self, sig: int, timeout: float = 15.0) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stderr_text(self) -> str:
        """Everything the server wrote to stderr so far, over all its runs."""
        return "".join(self._stderr_chunks) + _read_all(self._stderr)

    def _collect_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr_chunks.append(_read_all(self._stderr))
            self._stderr.close()
            self._stderr = None

    @property
    def local_token_file(self) -> Path:
        """Where a server without --tokens keeps the owner's local operator token (README: Remote nodes)."""
        return Path(self.env["XDG_STATE_HOME"]) / "fleetdeck" / "local-operator.token"

    def auth(self) -> dict[str, str]:
        """The owner's credential for a server without --tokens: its local operator token ({}: none yet)."""
        try:
            token = self.local_token_file.read_text().strip()
        except FileNotFoundError:
            return {}
        return {"Authorization": f"Bearer {token}"}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> ServedNode:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self._collect_stderr()


def _read_all(file: IO[str] | None) -> str:
    if file is None or file.closed:
        return ""
    file.flush()
    file.seek(0)
    return file.read()


def _pin_listen(args: Sequence[str], host: str, port: int) -> tuple[str, ...]:
    """``args`` with ``--listen`` replaced by (or extended with) ``host:port``."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--listen":
            skip = True
            continue
        if arg.startswith("--listen="):
            continue
        out.append(arg)
    return (*out, "--listen", f"{host}:{port}")


# --- any ASGI app, in this process ----------------------------------------------------------------------


@contextlib.contextmanager
def serve_asgi(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    graceful_s: int = 3,
    on_shutdown: Callable[[], None] | None = None,
) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on an ephemeral port (or ``port``: to serve again where a stopped
    server was) in a background thread; yield the base URL.

    The socket is bound before the thread starts, so the URL is known (and accepting) at once; the app's
    lifespan runs in the server's own event loop. On exit the server shuts down and the thread is joined;
    open streams get ``graceful_s`` seconds before they are cut. ``on_shutdown`` runs in the server's loop
    as the shutdown begins (e.g. ``lambda: begin_shutdown(app)`` ends a node server's log streams at once).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=graceful_s,
    )
    server = _HookedServer(config, on_shutdown)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="serve-asgi", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise ServerStartError(f"uvicorn did not start: {failure[0] if failure else 'timed out'!r}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(graceful_s + 10)
        sock.close()
        if failure:
            raise ServerStartError(f"uvicorn failed: {failure[0]!r}")


class _HookedServer(uvicorn.Server):
    """uvicorn.Server that runs a hook (in its loop) as the shutdown begins."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._on_shutdown is not None:
            self._on_shutdown()
        await super().shutdown(sockets=sockets)


# --- the owner's credential, for apps made in the test without tokens ---------------------------------------


def owner_auth() -> dict[str, str]:
    """What ``create_app(backend)`` without tokens admits: this user's local operator token, from the test's
    isolated state home (the ``isolated_dirs`` fixture), made if the app has not made it yet."""
    from backends.local_token import ensure_token

    return {"Authorization": f"Bearer {ensure_token()}"}


def same_state_home(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` (e.g. ``cli_env``) with this test process's state home, so a server started with it makes
    the local operator token where this process's http backend looks for it: the same user, as in life."""
    import os

    return {**env, "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"]}


def _as_owner(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "headers": {**owner_auth(), **dict(kwargs.get("headers") or {})}}


class _AsOwner:
    """httpx's request functions, sending :func:`owner_auth` besides any headers given (the owner's CLI)."""

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(url, **_as_owner(kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(url, **_as_owner(kwargs))

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return httpx.delete(url, **_as_owner(kwargs))

    def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> contextlib.AbstractContextManager[httpx.Response]:
        return httpx.stream(method, url, **_as_owner(kwargs))


as_owner = _AsOwner()


def free_port() -> int:
    """A port that was free a moment ago (for tests that need a number before anything listens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = [
    "STARTUP_LINE",
    "ServedNode",
    "ServerStartError",
    "as_owner",
    "free_port",
    "owner_auth",
    "same_state_home",
    "serve_asgi",
]
