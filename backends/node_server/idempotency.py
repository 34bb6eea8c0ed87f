"""``Idempotency-Key`` for the action POSTs: a retried request gets the first answer back, and acts once.

A client that lost an answer (timeout, dropped connection, a restarted node) cannot know whether its
dispatch happened; it retries with the same key and gets the same task back instead of a second task. The
first answer is kept per (caller name, path, key) for 24 hours, in a file beside the node's state
(``idempotency_db.py``), so a retry after the server restarted is a replay too:

- same key, same body: the stored answer is replayed with ``Idempotency-Replayed: true``; nothing is done;
- same key, another body: 422 (the client reused a key for different work, a bug worth hearing about);
- same key while the first request is still running here: the second waits for the first's answer;
- same key whose first request was cut off before it answered (the server was killed mid-action, or it
  ran in another server process): 409, since whether it acted is unknown - acting again could do it twice;
- a 5xx answer (or an exception) is not kept, so a retry after a failure can act.

Bounded: 10,000 answers and 64 MiB of bodies, least recently used dropped first; expired ones pruned.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from backends.node_api import IDEMPOTENCY_KEY_HEADER

from .idempotency_db import Answer, AnswerTable, IdempotencyFileError, Scope, idempotency_file
from .problems import fail

__all__ = [
    "Answer",
    "Claim",
    "IdempotencyFileError",
    "IdempotencyStore",
    "idempotency_file",
    "idempotency_key",
]

TTL_S = 24 * 3600.0
MAX_ENTRIES = 10_000
MAX_BYTES = 64 * 1024 * 1024
MAX_KEY_LENGTH = 255

log = logging.getLogger("fleetdeck.node_server")
T = TypeVar("T")


@dataclass
class Claim:
    """What :meth:`IdempotencyStore.claim` hands the handler: a stored answer to replay, or the right to act
    (then the handler sets ``answer``)."""

    replay: Answer | None = None
    answer: Answer | None = None


class IdempotencyStore:
    """``path`` None: in memory only (an app built in a test, or embedded); the serve command gives a file."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.time,  # wall clock: expiry must mean the same after a restart
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self._table = AnswerTable(path)
        self._owner = uuid.uuid4().hex  # this server process: rows it is acting on carry it
        self._running: dict[Scope, asyncio.Event] = {}
        self._table.prune(clock(), max_entries, max_bytes)

    @property
    def path(self) -> Path | None:
        return self._table.path

    def __len__(self) -> int:
        return len(self._table)

    def close(self) -> None:
        self._table.close()

    @asynccontextmanager
    async def claim(self, scope: Scope, body: bytes) -> AsyncIterator[Claim]:
        fingerprint = hashlib.sha256(body).digest()
        while True:
            now = self.clock()
            row = self._db(self._table.get, scope, now)
            if row is None:
                if self._db(self._table.reserve, scope, fingerprint, self._owner, now, now + self.ttl_s):
                    break
                continue  # another server process reserved it a moment ago: look at its row
            if row.fingerprint != fingerprint:
                raise fail(
                    422,
                    "invalid",
                    f"{IDEMPOTENCY_KEY_HEADER} {scope[2]!r} was already used with a different body",
                    field=IDEMPOTENCY_KEY_HEADER,
                )
            if row.answer is not None:
                self._db(self._table.touch, scope)
                yield Claim(replay=row.answer)
                return
            running = self._running.get(scope)
            if row.owner != self._owner or running is None:
                raise fail(
                    409,
                    "conflict",
                    f"{IDEMPOTENCY_KEY_HEADER} {scope[2]!r}: the first request with this key was cut off "
                    "before it answered (the node server stopped, or another one is acting on it), so "
                    "whether it acted is unknown; look at the audit trail, and use a new key to act again",
                    field=IDEMPOTENCY_KEY_HEADER,
                )
            await running.wait()  # the first request with this key is still running here: take its answer

        done = self._running[scope] = asyncio.Event()
        claim = Claim()
        cut_off = False
        try:
            yield claim
        except asyncio.CancelledError:
            cut_off = True  # stopped mid-action: the row stays "acting", so a retry is told, not re-run
            raise
        finally:
            try:
                self._settle(scope, claim.answer, cut_off)
            finally:
                del self._running[scope]
                done.set()

    def _settle(self, scope: Scope, answer: Answer | None, cut_off: bool) -> None:
        try:
            if answer is not None and answer.status < 500:
                now = self.clock()
                self._table.finish(scope, self._owner, answer, now + self.ttl_s)
                self._table.prune(now, self.max_entries, self.max_bytes)
            elif not cut_off:
                self._table.forget(scope, self._owner)  # failed: forget, so a retry acts
        except sqlite3.Error as exc:
            # the action is done and answered; its row stays "acting", so a retry gets a 409, never a rerun
            log.error("idempotency file %s: cannot keep an answer: %s", self._table.path or ":memory:", exc)

    def _db(self, call: Callable[..., T], *args: object) -> T:
        try:
            return call(*args)
        except sqlite3.Error as exc:
            log.error("idempotency file %s: %s", self._table.path or ":memory:", exc)
            raise fail(
                503, "unavailable", "the node's idempotency store cannot be used; nothing was done"
            ) from None


def idempotency_key(raw: str | None) -> str | None:
    """The request's key, or None; a malformed one is a 400 naming the header."""
    if raw is None:
        return None
    key = raw.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise fail(
            400,
            "bad-request",
            f"{IDEMPOTENCY_KEY_HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
            field=IDEMPOTENCY_KEY_HEADER,
        )
    return key
