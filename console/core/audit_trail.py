"""What the console holds of one node's audit trail: the entries fetched so far, the resume cursor, when the
last fetch finished, and why the last one failed.

Plain Python (no Textual), like :mod:`console.core.node_link`: the Audit screen's workers and the headless
snapshot call :meth:`AuditTrail.fetch`; screens read the fields. Fetching is incremental (only entries after
the last seq), so refreshing every few seconds costs one small call per node, however long the trail is.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from backends.base import Backend
from backends.model import AuditEntry
from console.core.describe_error import describe_error

AUDIT_CAPACITY = 20_000  # entries kept per node; the backend keeps the whole trail, the console a window
AUDIT_REFRESH_S = 5.0  # how often a visible Audit screen asks each node for newer entries


@dataclass(frozen=True)
class AuditAge:
    kind: str  # live | stale | offline | connecting | unsupported
    text: str


class AuditTrail:
    def __init__(self, capacity: int = AUDIT_CAPACITY) -> None:
        self.entries: deque[AuditEntry] = deque(maxlen=capacity)
        self.error: str | None = None
        self.fetched_at: float | None = None  # when the last successful fetch finished
        self.attempted_at: float | None = None  # when the last one began, failed or not: paces retries
        self.unsupported: str | None = None  # why this node has no trail to show, when it has none
        self._busy = False
        self._again = False

    @property
    def last_seq(self) -> int:
        return self.entries[-1].seq if self.entries else 0

    @property
    def fetching(self) -> bool:
        return self._busy

    async def fetch(self, backend: Backend, *, timeout: float, clock: Callable[[], float]) -> int:
        """Fetch entries newer than :attr:`last_seq`; returns how many arrived. Never raises.

        A call made while another is in flight does not start a second request (they would race on the
        cursor); it makes the running one ask again once it is done, so an entry written just after the
        first request began (an operator's action) is still picked up now rather than at the next refresh.
        """
        if not backend.supports("audit"):
            self.unsupported = f"the {backend.name} backend keeps no audit trail"
            return 0
        if self._busy:
            self._again = True
            return 0
        self._busy = True
        self.attempted_at = clock()
        added = 0
        try:
            while True:
                self._again = False
                added += await self._fetch_once(backend, timeout, clock)
                if not self._again or self.error is not None:
                    return added
        finally:
            self._busy = False

    async def _fetch_once(self, backend: Backend, timeout: float, clock: Callable[[], float]) -> int:
        try:
            batch = await asyncio.wait_for(backend.audit(since_seq=self.last_seq), timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a backend may fail in any way; the console must stay up
            self.error = describe_error(exc)
            return 0
        self.error = None
        self.fetched_at = clock()
        # A backend should send only newer entries in seq order; sorting and dropping repeats here keeps
        # the cursor right (and the table free of duplicates) even when one does not.
        last = self.last_seq
        newer = sorted((e for e in batch if e.seq > last), key=lambda e: e.seq)
        self.entries.extend(newer)
        return len(newer)

    def age(self, now: float, *, frozen: bool = False) -> AuditAge:
        """How fresh the trail is, in words for the panel border: data age is shown on every panel."""
        if self.unsupported:
            return AuditAge("unsupported", "no audit trail")
        if self.error:
            return AuditAge("offline", f"error: {self.error}")
        if self.fetched_at is None:
            return AuditAge("connecting", "loading…")
        if frozen:
            return AuditAge("live", "live")
        seconds = now - self.fetched_at
        if seconds > 3 * AUDIT_REFRESH_S:
            return AuditAge("stale", f"stale {seconds:.0f}s")
        return AuditAge("live", "live")
