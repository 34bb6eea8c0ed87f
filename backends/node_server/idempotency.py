"""``Idempotency-Key`` for the action POSTs: a retried request gets the first answer back, and acts once.

A client that lost an answer (timeout, dropped connection) cannot know whether its dispatch happened; it
retries with the same key and gets the same task back instead of a second task. The first answer is kept
per (caller name, path, key) for 24 hours in a bounded LRU of 10,000 entries:

- same key, same body: the stored answer is replayed with ``Idempotency-Replayed: true``; nothing is done;
- same key, another body: 422 (the client reused a key for different work, a bug worth hearing about);
- same key while the first request is still running: the second waits for the first's answer;
- a 5xx answer (or an exception) is not kept, so a retry after a failure can act.

The store is in memory: a restarted server forgets its keys. That is acceptable because a retry across a
restart is rare and the backends' own state (a dispatched task, an audit entry) shows what happened; a
store shared between processes would need the backend's cooperation, which the protocol does not ask for.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from backends.node_api import IDEMPOTENCY_KEY_HEADER

from .problems import fail

TTL_S = 24 * 3600.0
MAX_ENTRIES = 10_000
MAX_KEY_LENGTH = 255

Scope = tuple[str, str, str]  # (caller name, path, key)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    media_type: str


@dataclass
class Claim:
    """What :meth:`IdempotencyStore.claim` hands the handler: a stored answer to replay, or the right to act
    (then the handler sets ``answer``)."""

    replay: Answer | None = None
    answer: Answer | None = None


@dataclass
class _Entry:
    fingerprint: bytes
    expires: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    answer: Answer | None = None


class IdempotencyStore:
    def __init__(
        self,
        *,
        max_entries: int = MAX_ENTRIES,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[Scope, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def claim(self, scope: Scope, body: bytes) -> AsyncIterator[Claim]:
        fingerprint = hashlib.sha256(body).digest()
        while True:
            entry = self._live(scope)
            if entry is None:
                break
            if entry.fingerprint != fingerprint:
                raise fail(
                    422,
                    "invalid",
                    f"{IDEMPOTENCY_KEY_HEADER} {scope[2]!r} was already used with a different body",
                    field=IDEMPOTENCY_KEY_HEADER,
                )
            if entry.answer is not None:
                self._entries.move_to_end(scope)
                yield Claim(replay=entry.answer)
                return
            await entry.done.wait()  # the first request with this key is still running: take its answer

        entry = _Entry(fingerprint, self.clock() + self.ttl_s)
        self._entries[scope] = entry
        self._evict()
        claim = Claim()
        try:
            yield claim
        finally:
            answer = claim.answer
            if answer is not None and answer.status < 500 and self._entries.get(scope) is entry:
                entry.answer = answer
                entry.expires = self.clock() + self.ttl_s
                self._evict()
            elif self._entries.get(scope) is entry:
                del self._entries[scope]  # failed: forget, so a retry acts
            entry.done.set()

    def _live(self, scope: Scope) -> _Entry | None:
        entry = self._entries.get(scope)
        if entry is not None and entry.answer is not None and entry.expires <= self.clock():
            del self._entries[scope]
            return None
        return entry

    def _evict(self) -> None:
        """Drop the least recently used finished entries beyond the bound (running ones are kept)."""
        excess = len(self._entries) - self.max_entries
        if excess <= 0:
            return
        for scope in [s for s, e in self._entries.items() if e.answer is not None][:excess]:
            del self._entries[scope]


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
