"""How many connections the node server holds, and which one gives way when it is full.

Every connection is a file descriptor. Past the process's fd limit, ``accept`` fails (EMFILE) and nobody
gets in, the node's own store and ``/proc`` reads included. So the server:

- raises its soft ``RLIMIT_NOFILE`` to the hard limit at start (the soft one is often 1,024);
- keeps connections below that limit, less a reserve: twice the listen backlog (asyncio accepts up to
  that many sockets in one go, before any of them is seen here, and the fds of connections closed to make
  room are only freed on a later turn of the loop, after the next batch may have been accepted) and fds for
  the store, logs and TLS files;
- when full, closes the oldest connection that has not yet sent complete request headers (a slow client:
  the slowloris defence) with a 503 problem, and only when there is none refuses the new one with a 503.

A connection that has sent its headers is never evicted: it is a request being served.
"""

from __future__ import annotations

import logging
import resource
from typing import Protocol

RESERVE_FDS = 64  # the store (SQLite and its WAL), logs, /proc reads, the TLS files, the idempotency file
MAX_CONNECTIONS = 10_000  # a node server's clients are consoles and scrapers; more is an attack

log = logging.getLogger("fleetdeck.node_server")


class Guarded(Protocol):
    """What the guard needs of a connection."""

    def evict(self) -> None: ...


def raise_fd_limit() -> int:
    """Raise the soft fd limit to the hard one (as far as the OS lets us); return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft if soft != resource.RLIM_INFINITY else target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_limit(fd_limit: int, backlog: int) -> int:
    return max(16, min(MAX_CONNECTIONS, fd_limit - 2 * backlog - RESERVE_FDS))


class ConnectionGuard:
    """The registry of open connections. ``admit`` on connect, ``awaiting_headers`` whenever a connection
    waits for a request's headers (new, or idle between requests), ``headers_done`` when they arrived,
    ``release`` when it closed."""

    def __init__(self, max_connections: int, *, header_timeout_s: float, body_timeout_s: float) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self._open: set[Guarded] = set()
        self._waiting: dict[Guarded, None] = {}  # insertion-ordered: the oldest waiter first
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._open)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(self, connection: Guarded) -> bool:
        while len(self._open) >= self.max_connections and self._waiting:
            oldest = next(iter(self._waiting))
            self.release(oldest)
            self.evicted += 1
            log.warning(
                "at the connection limit (%d): closed the oldest connection that had not sent its request "
                "headers, to let a new one in",
                self.max_connections,
            )
            oldest.evict()
        if len(self._open) >= self.max_connections:
            self.refused += 1
            log.warning(
                "at the connection limit (%d), every one busy with a request: refused a new one",
                self.max_connections,
            )
            return False
        self._open.add(connection)
        return True

    def awaiting_headers(self, connection: Guarded) -> None:
        if connection in self._open:
            self._waiting.pop(connection, None)
            self._waiting[connection] = None  # to the back: it starts waiting now

    def headers_done(self, connection: Guarded) -> None:
        self._waiting.pop(connection, None)

    def release(self, connection: Guarded) -> None:
        self._open.discard(connection)
        self._waiting.pop(connection, None)

    def timed_out_one(self, what: str) -> None:
        self.timed_out += 1
        log.warning("closed a connection: %s", what)
