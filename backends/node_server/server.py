"""Running the app under uvicorn, as ``fleetdeck node serve`` does: listen, TLS, startup line, shutdown.

The socket is bound here, before uvicorn starts, so a port in use is one clear line rather than uvicorn's
log, and the port actually bound (``--listen 127.0.0.1:0`` picks a free one) is known for the startup line:

    fleetdeck node serve: <node-name> on <scheme>://<host>:<port>

printed to stdout (flushed) once uvicorn is accepting - tests and scripts wait for exactly this line.
SIGTERM and ctrl-c stop the server cleanly: open log streams end first (they would otherwise hold the
shutdown until the graceful timeout), then uvicorn closes connections and the caller closes the backend.

Under hostile load (``protocol.py``, ``connections.py``): request headers must arrive within
``header_timeout_s`` (also the TLS handshake's limit), a stalled body is cut after ``body_timeout_s``, the
connection count stays below the fd limit (raised to the hard limit at start), and stderr is rate-limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import signal
import socket
import ssl
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from . import log_limits
from .connections import ConnectionGuard, connection_limit, raise_fd_limit
from .protocol import guarded_protocol
from .service import NodeService

GRACEFUL_S = 5
# The listen backlog, which is also how many sockets asyncio accepts in one go before any is seen by the
# connection guard: the guard keeps fds in reserve for it (connections.py). 128 queued connects is plenty
# for a node's consoles and scrapers, and keeps the reserve small under a 1,024-fd limit.
BACKLOG = 128
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0


class ServeError(Exception):
    """The server cannot start; one line for the operator, with the CLI's exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """``HOST:PORT`` or ``[IPv6]:PORT``; port 0 picks a free one."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ServeError(f"--listen must look like HOST:PORT (e.g. 127.0.0.1:8765), not {text!r}")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ServeError(f"--listen {text!r}: an IPv6 address goes in brackets, e.g. [::1]:8765")
        host = host[1:-1]
    elif ":" in host:
        raise ServeError(f"--listen {text!r}: put an IPv6 address in brackets, e.g. [::1]:8765")
    port = int(port_text)
    if port > 65535:
        raise ServeError(f"--listen {text!r}: port {port} is out of range (0..65535)")
    return Listen(host, port)


def bind(listen: Listen) -> socket.socket:
    """A listening socket on ``listen``, or a ServeError saying why not (in use, no such address...)."""
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {listen}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # a restarted node must get its port back at once, not after TIME_WAIT (clients reconnect to it)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        why = "the address is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {listen}: {why}") from None
    sock.setblocking(False)
    return sock


def check_tls(certfile: str | None, keyfile: str | None) -> None:
    """Both or neither, and loadable: found now, rather than as a traceback from uvicorn."""
    if (certfile is None) != (keyfile is None):
        raise ServeError("TLS needs both --certfile and --keyfile")
    if certfile is None or keyfile is None:
        return
    for option, file in (("--certfile", certfile), ("--keyfile", keyfile)):
        if not Path(file).is_file():
            raise ServeError(f"{option} {file}: no such file")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise ServeError(f"cannot load the TLS certificate {certfile} with key {keyfile}: {exc}") from None


def startup_line(name: str, sock: socket.socket, tls: bool) -> str:
    return f"fleetdeck node serve: {name} on {url_of(sock, tls)}"


def url_of(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn.Server that announces itself once accepting, ends log streams first on shutdown, and does
    not re-raise the signal that stopped it (uvicorn does, which would turn SIGTERM into exit -15)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        node: NodeService | None,
        handshake_timeout_s: float,
        peers: Sequence[uvicorn.Server] = (),
        *,
        peer: bool = False,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._node = node
        self._handshake_timeout_s = handshake_timeout_s
        self.peers = list(peers)  # served beside it in this process: a signal stops them all
        self.peer = peer  # one of those: the first server's signal handlers stop it

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        if self.config.ssl is not None:
            # uvicorn passes no TLS handshake timeout, so asyncio's 60 s applies, and a connection still in
            # its handshake is not yet seen by the connection guard: bound it like the headers. Shadowing the
            # method on our own loop, for the one call uvicorn makes here, is the only way to pass it.
            loop.create_server = functools.partial(  # type: ignore[method-assign]
                loop.create_server, ssl_handshake_timeout=self._handshake_timeout_s
            )
        try:
            await super().startup(sockets=sockets)
        finally:
            vars(loop).pop("create_server", None)
        if self.started and not self.should_exit:
            self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._node is not None:
            self._node.stopping.set()  # as app.begin_shutdown
            await asyncio.sleep(0)  # let the streams see it and send their last bytes
        await super().shutdown(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        for peer in self.peers:
            peer.handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if self.peer:
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def serve(
    app: Any,
    sock: socket.socket,
    *,
    name: str,
    certfile: str | None = None,
    keyfile: str | None = None,
    access_log: bool = True,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    body_timeout_s: float = BODY_TIMEOUT_S,
    beside: Sequence[Beside] = (),
    line: str | None = None,
) -> None:
    """Serve ``app`` on the bound ``sock`` until SIGTERM/SIGINT; print the startup line when accepting.

    ``beside``: more apps served by this process on their own sockets (the OTLP receiver), each announced
    with its own line; one signal stops all, and all start or none is said to. ``line``: the startup line,
    when ``app`` is not the node API (default ``fleetdeck node serve: NAME on URL``)."""
    guard = ConnectionGuard(
        connection_limit(raise_fd_limit(), BACKLOG),
        header_timeout_s=header_timeout_s,
        body_timeout_s=body_timeout_s,
    )

    def configured(app: Any) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            http=guarded_protocol(guard),
            log_config=None,  # log_limits.configure below: rate-limited errors, our own access log
            log_level="warning",
            access_log=False,  # uvicorn's would log the query string as sent (access_log.py writes ours)
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_S,
            server_header=False,
            backlog=BACKLOG,
        )

    log_limits.configure(access_log)
    line = line or startup_line(name, sock, certfile is not None)
    # Lines in a fixed order, the first server's first: scripts and tests wait for that one line.
    lines = [line, *(other.line for other in beside)]
    started = [asyncio.Event() for _ in lines]

    async def announce() -> None:
        for text, event in zip(lines, started, strict=True):
            await event.wait()
            print(text, flush=True)

    peers = [
        _Server(configured(other.app), event.set, None, header_timeout_s, peer=True)
        for other, event in zip(beside, started[1:], strict=True)
    ]
    node = getattr(app.state, "node", None)
    server = _Server(configured(app), started[0].set, node, header_timeout_s, peers)
    announcer = asyncio.create_task(announce())

    async def serve_peer(peer: _Server, peer_sock: socket.socket) -> None:
        await peer.serve(sockets=[peer_sock])
        if not peer.started:
            server.should_exit = True  # half a server is not what was asked for

    served = [server.serve(sockets=[sock])]
    served += [serve_peer(peer, other.sock) for peer, other in zip(peers, beside, strict=True)]
    try:
        await asyncio.gather(*served)
    finally:
        announcer.cancel()
    if not server.started or not all(peer.started for peer in peers):
        raise ServeError("the node server did not start (see the lines above)", exit_code=1)


@dataclass(frozen=True)
class Beside:
    """Another app one ``serve`` runs: on its own bound socket, announced with ``line`` once accepting."""

    app: Any
    sock: socket.socket
    line: str
