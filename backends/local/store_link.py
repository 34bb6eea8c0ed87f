"""A supervisor's writes to the store, made so that the store can never take the agent down.

The store may be busy, locked by a stuck process, on a full disk, or briefly unreadable. None of that is the
agent's fault, so none of it may stop the agent: every write the supervisor makes goes through this link,
which never raises. While the store is out, the agent's output is kept in memory (bounded: past the bound the
oldest lines go, and are counted), the latest registration and state are remembered, and the store is
tried again with backoff. When it answers, the row is written again, the kept lines follow, and one line
says what happened ("the store was unavailable for 12 s ...") both in the log and in the agent's message,
from which its health reason is judged.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from backends.errors import BackendError

from .schema import StoreError
from .store import LogTuple, Store
from .store_health import STORE_OUTAGE_NOTE

if TYPE_CHECKING:
    from backends.model import Kpi

T = TypeVar("T")

MAX_KEPT_LINES = 50_000  # about 10 MB of ordinary log lines
MAX_KEPT_KPIS = 10_000  # KPI figures held while the store is out; past this the oldest go
RETRY_S = (0.25, 5.0)  # first and longest wait between tries while the store is out
NOTE_S = 60.0  # how long the outage stays in the agent's message after the store is back


class StoreLink:
    def __init__(self, store: Store, agent_id: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.agent_id = agent_id
        self.clock = clock
        self.kept: deque[LogTuple] = deque()
        self.kept_kpis: deque[Kpi] = deque(maxlen=MAX_KEPT_KPIS)
        self.dropped = 0
        self.out_since: float | None = None
        self.out_reason = ""
        self._next_try = 0.0
        self._delay = RETRY_S[0]
        self._registration: dict[str, Any] | None = None
        self._state: tuple[str, dict[str, Any]] | None = None  # the last state written or to write
        self.note: str | None = None
        self._note_until = 0.0

    @property
    def out(self) -> bool:
        return self.out_since is not None

    # --- the writes ----------------------------------------------------------------------------------

    def register(self, **fields: Any) -> None:
        self._registration = fields
        self._state = None  # a new registration starts the row afresh
        self._call(lambda: self.store.register_agent(self.agent_id, **fields))

    def set_state(self, state: str, **fields: Any) -> None:
        """Write the agent's state; while the store is out, the last one asked for is written on return."""
        self._state = (state, fields)
        self._call(lambda: self.store.set_agent_state(self.agent_id, state, **fields))

    def current_note(self) -> str | None:
        """What the last outage was, while it is recent enough to be worth saying."""
        if self.note is not None and self.clock() >= self._note_until:
            self.note = None
        return self.note

    def heartbeat(self, **fields: Any) -> None:
        self._call(lambda: self.store.heartbeat(self.agent_id, **fields))

    def take_commands(self) -> list[tuple[int, str]]:
        return self._call(lambda: self.store.take_commands(self.agent_id)) or []

    def log(self, records: Sequence[LogTuple]) -> None:
        """Keep ``records`` and write whatever is kept, if the store will take it now."""
        self.kept.extend(records)
        excess = len(self.kept) - MAX_KEPT_LINES
        for _ in range(max(0, excess)):
            self.kept.popleft()
        self.dropped += max(0, excess)
        self.flush()

    def record_kpis(self, kpis: Sequence[Kpi]) -> None:
        """Keep ``kpis`` (validated) and write whatever is kept, if the store will take it now."""
        self.kept_kpis.extend(kpis)
        self.flush()

    def flush(self) -> None:
        def write() -> None:
            # read at call time: a return from an outage may have written the kept lines already
            if self.kept:
                self.store.append_logs(list(self.kept))
                self.kept.clear()
            self._write_kpis()

        if self.kept or self.kept_kpis:
            self._call(write)

    def _write_kpis(self) -> None:
        if self.kept_kpis:
            self.store.record_kpis(self.agent_id, list(self.kept_kpis))
            self.kept_kpis.clear()

    def close_state(self, state: str, deadline_s: float = 30.0, **fields: Any) -> None:
        """The last word when the agent has ended: tried until ``deadline_s``, since nothing comes after."""
        self.set_state(state, **fields)
        give_up = time.monotonic() + deadline_s
        while self.out and time.monotonic() < give_up:
            time.sleep(min(self._delay, max(0.0, give_up - time.monotonic())))
            self._next_try = 0.0
            self.flush()  # recovering writes the remembered state too
        if self.out:
            print(
                f"fleetdeck run: {self.agent_id} ended ({state}) but the store stayed unavailable: "
                f"{self.out_reason}; {len(self.kept)} line(s) not written",
                file=sys.stderr,
            )

    # --- outage and return ---------------------------------------------------------------------------

    def _call(self, write: Callable[[], T]) -> T | None:
        now = self.clock()
        if self.out and (now < self._next_try or not self._recover(now)):
            return None
        try:
            return write()
        except (StoreError, BackendError, OSError) as exc:
            self._failed(now, exc)
            return None

    def _failed(self, now: float, exc: Exception) -> None:
        if self.out_since is None:
            self.out_since = now
            self._delay = RETRY_S[0]
        else:
            self._delay = min(self._delay * 2, RETRY_S[1])
        self.out_reason = str(exc)
        self._next_try = now + self._delay

    def _recover(self, now: float) -> bool:
        """Put back what the outage held up, in order: the row, its state, the kept lines, then the note."""
        assert self.out_since is not None
        try:
            # the row first: the store may have been replaced or restored while it was out
            if self._registration is not None:
                self.store.register_agent(self.agent_id, **self._registration)
            if self._state is not None:
                state, fields = self._state
                self.store.set_agent_state(self.agent_id, state, **fields)
            kept = len(self.kept)
            if self.kept:
                self.store.append_logs(list(self.kept))
                self.kept.clear()
            self._write_kpis()
            dropped = f", {self.dropped} dropped (over {MAX_KEPT_LINES:,} kept)" if self.dropped else ""
            note = (
                f"{STORE_OUTAGE_NOTE} for {now - self.out_since:.0f} s ({self.out_reason}); "
                f"{kept} line(s) kept and written{dropped}"
            )
            line = (now, "warning", self.agent_id, f"[fleetdeck] {note}", {"supervisor": True})
            self.store.append_logs([line])
            self.store.heartbeat(self.agent_id, message=note)
        except (StoreError, BackendError, OSError) as exc:
            self._failed(now, exc)
            return False
        self.out_since = None
        self.dropped = 0
        self.note, self._note_until = note, now + NOTE_S
        return True
