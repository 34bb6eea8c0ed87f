"""The console's memory of alerts over time: since when each has been on, how often it flapped, and what the
operator acknowledged or snoozed, kept across restarts of the console in ``state_dir()/console-alerts.json``.

:func:`console.core.alerts.node_alerts` says what is wrong *now*; this book turns those snapshots into
episodes:

- An alert's episode starts the first time its key (node, subject, rule) fires. If it clears and comes back
  within ``flap_window_s`` (10 min) it is the same episode with one more flap, not a new alert: a GPU hovering
  around its temperature threshold is one line with a count of 7, not seven lines. Only a clear that was
  seen counts: a console starting again, before a node has answered, knows nothing of it yet, so what the
  last run left open stays open rather than closing and reopening as a flap.
- An acknowledgement covers the episode at the severity acknowledged: it ends when the episode ends (the alert
  stayed clear for longer than the flap window) or when the severity rises above it. A flap within the
  window keeps it, for the same reason a flap is folded: otherwise a flapping alert would nag on every flap.
- A snooze hides the alert until a time, across episodes (it is "not this, for an hour"), but a rise in
  severity ends it: a snoozed warning that turns critical must be seen.

Acks and snoozes only change what the console draws attention to; ``fleetdeck status`` ignores them, since
a script asking "is the fleet healthy?" must hear the truth, not one operator's triage.

This is plain Python (no Textual), so it can be tested with an injected clock and a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import msgspec

from console.core.alerts import SEVERITY_RANK, Alert, Severity, attention_rank

FILE_NAME: Final = "console-alerts.json"
FLAP_WINDOW_S: Final = 600.0
FORGET_AFTER_S: Final = 86_400.0  # an alert not seen for a day is history, not state
DEFAULT_SNOOZE_S: Final = 3_600.0
# A hundred nodes polled each second change some alert every second: the episodes they change are written at
# most this often (acks and snoozes at once, and whatever is pending when the console closes), and entries
# forgotten (episodes over, or not seen for a day) are looked for once a minute, not on every poll.
SAVE_EVERY_S: Final = 5.0
PRUNE_EVERY_S: Final = 60.0
FILE_VERSION: Final = 1


class TrackedAlert(msgspec.Struct, kw_only=True):
    """One alert key's current episode (mutable: the book updates it in place)."""

    key: str
    node: str
    subject: str
    rule: str
    severity: Severity
    reason: str
    since: float  # when this episode began
    last_seen: float
    cleared_at: float | None = None  # set while the alert is off; None while it fires
    flaps: int = 0  # how often it came back within the flap window in this episode
    acked_severity: Severity | None = None  # the severity acknowledged; a rise above it takes the ack back
    snoozed_until: float | None = None
    snoozed_severity: Severity | None = None  # likewise for a snooze

    @property
    def firing(self) -> bool:
        return self.cleared_at is None

    @property
    def acked(self) -> bool:
        return self.acked_severity is not None

    @property
    def times(self) -> int:
        """How many times the alert fired in this episode: the first time plus each flap."""
        return self.flaps + 1

    def snoozed(self, now: float) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    def needs_attention(self, now: float) -> bool:
        return self.firing and not self.acked and not self.snoozed(now)


class _BookFile(msgspec.Struct, kw_only=True):
    version: int = FILE_VERSION
    alerts: list[TrackedAlert] = msgspec.field(default_factory=list)


def _rises(new: Severity, old: Severity | None) -> bool:
    return old is not None and SEVERITY_RANK[new] < SEVERITY_RANK[old]


def default_path() -> Path:
    from console.core import paths

    return paths.state_dir() / FILE_NAME


class AlertBook:
    """Alerts over time, per node. ``path`` None keeps it in memory only (frozen snapshots, tests)."""

    def __init__(
        self,
        path: Path | None,
        clock: Callable[[], float],
        *,
        flap_window_s: float = FLAP_WINDOW_S,
        forget_after_s: float = FORGET_AFTER_S,
    ) -> None:
        self.path = path
        self.clock = clock
        self.flap_window_s = flap_window_s
        self.forget_after_s = forget_after_s
        self.warnings: list[str] = []  # one line each, for the app to show; drained by take_warnings()
        self._entries: dict[str, TrackedAlert] = {}
        self._keys_by_node: dict[str, set[str]] = {}  # each node's keys: an update touches its node alone
        # Each node's firing keys: a poll clears what of these it no longer sees, and never walks the
        # episodes that cleared earlier (a day of a 5,000-agent fleet's comings and goings).
        self._firing_by_node: dict[str, set[str]] = {}
        # Keys confirmed by an update since this book was made. A loaded entry stays hidden until its node
        # is polled again: the file may hold nodes no longer configured, or alerts that cleared meanwhile.
        self._confirmed: set[str] = set()
        self._dirty = False
        self._saved_at = -float("inf")
        self._next_prune = -float("inf")
        self._load()

    # --- the alerts' lifecycle ---------------------------------------------------------------------------

    def update(
        self, node: str, alerts: Iterable[Alert], now: float | None = None, *, judged: bool = True
    ) -> None:
        """``alerts`` is everything firing on ``node`` at ``now``; whatever of the node is missing cleared.

        ``judged`` False: the node has not been seen yet (no snapshot), so ``alerts`` (an unreachable one,
        say) is all that is known and nothing the book remembers of it has cleared. A console starting up
        must not clear what the last run left open, or the first poll would count each as a flap."""
        now = self.clock() if now is None else now
        current: dict[str, Alert] = {}
        for alert in alerts:
            if alert.node != node:
                continue
            other = current.get(alert.key)
            if other is None or SEVERITY_RANK[alert.severity] < SEVERITY_RANK[other.severity]:
                current[alert.key] = alert
        changed = False
        firing = self._firing_by_node.setdefault(node, set())
        for key, alert in current.items():
            entry = self._entries.get(key)
            if entry is None or self._episode_over(entry, now):
                self._entries[key] = self._start(alert, now, entry)
                self._keys_by_node.setdefault(node, set()).add(key)
                changed = True
                entry = self._entries[key]
            elif entry.cleared_at is not None:  # back within the window: the same episode, flapping
                entry.cleared_at = None
                entry.flaps += 1
                changed = True
            firing.add(key)
            if entry.severity != alert.severity:
                changed = True
            if _rises(alert.severity, entry.acked_severity):
                entry.acked_severity = None
            if _rises(alert.severity, entry.snoozed_severity):
                entry.snoozed_until = entry.snoozed_severity = None
            entry.severity, entry.reason, entry.last_seen = alert.severity, alert.reason, now
            self._confirmed.add(key)
        if judged:
            for key in firing.difference(current):
                self._entries[key].cleared_at = now
                firing.discard(key)
                changed = True
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            changed |= self._prune(now)
        self._dirty |= changed
        if self._dirty and now - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def _episode_over(self, entry: TrackedAlert, now: float) -> bool:
        return entry.cleared_at is not None and now - entry.cleared_at > self.flap_window_s

    @staticmethod
    def _start(alert: Alert, now: float, old: TrackedAlert | None) -> TrackedAlert:
        # The data may know the condition began earlier than this console saw it (a last heartbeat).
        since = min(now, alert.since) if alert.since is not None else now
        snoozed = old is not None and old.snoozed(now)
        return TrackedAlert(
            key=alert.key,
            node=alert.node,
            subject=alert.subject,
            rule=alert.rule,
            severity=alert.severity,
            reason=alert.reason,
            since=since,
            last_seen=now,
            snoozed_until=old.snoozed_until if snoozed and old else None,
            snoozed_severity=old.snoozed_severity if snoozed and old else None,
        )

    def _prune(self, now: float) -> bool:
        # An episode that is over holds nothing the next firing needs (that is a new episode), unless a
        # snooze spans it; one not seen for a day is history (a node no longer configured, say).
        gone = [
            key
            for key, entry in self._entries.items()
            if (self._episode_over(entry, now) or now - entry.last_seen > self.forget_after_s)
            and not entry.snoozed(now)
        ]
        for key in gone:
            entry = self._entries.pop(key)
            self._keys_by_node.get(entry.node, set()).discard(key)
            self._firing_by_node.get(entry.node, set()).discard(key)
            self._confirmed.discard(key)
        return bool(gone)

    # --- what the console shows ----------------------------------------------------------------------------

    def get(self, key: str) -> TrackedAlert | None:
        return self._entries.get(key)

    def active(self, node: str | None = None) -> list[TrackedAlert]:
        """Firing alerts (acked and snoozed included: the view decides): what needs a person first, then worst
        first, then oldest first."""
        if node is None:
            keys: Iterable[str] = (key for keys in self._firing_by_node.values() for key in keys)
        else:
            keys = self._firing_by_node.get(node, ())
        firing = [entry for entry in map(self._entries.__getitem__, keys) if entry.key in self._confirmed]
        firing.sort(key=lambda e: (attention_rank(e.severity, e.rule), e.since, e.node, e.subject, e.rule))
        return firing

    def counts(self, node: str | None = None, now: float | None = None) -> tuple[int, int]:
        """(critical, warning) among the firing alerts that are neither acknowledged nor snoozed."""
        now = self.clock() if now is None else now
        return open_counts(self.active(node), now)

    # --- the operator's triage ---------------------------------------------------------------------------

    def acknowledge(self, key: str) -> bool:
        """Acknowledge a firing alert at its current severity. False if there is no such alert."""
        entry = self._entries.get(key)
        if entry is None or not entry.firing:
            return False
        entry.acked_severity = entry.severity
        self.save()
        return True

    def unacknowledge(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None or not entry.acked:
            return False
        entry.acked_severity = None
        self.save()
        return True

    def snooze(self, key: str, seconds: float = DEFAULT_SNOOZE_S) -> bool:
        """Hide the alert for ``seconds`` from now (a rise in severity shows it again)."""
        entry = self._entries.get(key)
        if entry is None or seconds <= 0:
            return False
        entry.snoozed_until = self.clock() + seconds
        entry.snoozed_severity = entry.severity
        self.save()
        return True

    def unsnooze(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None or entry.snoozed_until is None:
            return False
        entry.snoozed_until = entry.snoozed_severity = None
        self.save()
        return True

    def take_warnings(self) -> list[str]:
        warnings, self.warnings = self.warnings, []
        return warnings

    # --- the file -------------------------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        if message not in self.warnings:  # a disk that stays full must not repeat itself every second
            self.warnings.append(message)

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as error:
            self._warn(f"{self.path}: cannot read saved alerts ({error.strerror or error}); starting empty")
            return
        try:
            book = msgspec.json.decode(data, type=_BookFile)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            # A half-written or hand-edited file must never stop the console: start afresh (the next save
            # replaces it) and say so, since acks and snoozes were lost.
            self._warn(f"{self.path}: saved alerts unreadable ({error}); starting empty")
            return
        if book.version != FILE_VERSION:
            self._warn(f"{self.path}: saved alerts have version {book.version}; starting empty")
            return
        self._entries = {entry.key: entry for entry in book.alerts}
        for entry in book.alerts:
            self._keys_by_node.setdefault(entry.node, set()).add(entry.key)
            if entry.firing:
                self._firing_by_node.setdefault(entry.node, set()).add(entry.key)

    def flush(self) -> None:
        """Write what changed since the last save (the console calls this as it closes)."""
        if self._dirty:
            self.save()

    def save(self) -> None:
        """Write the book atomically (temp file + rename), so a crash never leaves half a file."""
        self._dirty = False
        self._saved_at = self.clock()
        if self.path is None:
            return
        body = msgspec.json.encode(_BookFile(alerts=list(self._entries.values())))
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "wb") as file:
                file.write(body)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as error:
            self._warn(f"{self.path}: cannot save alerts ({error.strerror or error}); acks may not persist")
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def open_counts(entries: Iterable[TrackedAlert], now: float) -> tuple[int, int]:
    """(critical, warning) among ``entries`` (firing ones) that are neither acknowledged nor snoozed."""
    open_ = [e for e in entries if e.needs_attention(now)]
    critical = sum(1 for e in open_ if e.severity == "critical")
    return critical, len(open_) - critical
