"""Each change of a criterion's verdict or a gate's decision, recorded once, with an audit entry.

Every reader of the plan (console, node server, ``fleetdeck phases``) sees the same change at about the
same time; the verdicts table is the compare-and-set that lets exactly one of them record it: inside a
write transaction the stored verdict is read again, and only a reader that still finds the old one
writes the new one and the audit entry (operator "node", action ``criterion.verdict`` or
``gate.decision``, target ``phase:ID``).

A phase that became done (or stopped being done) through live passes alone had no write to stamp its
``finished_at``: the same transaction stamps it (``phase.times``, not audited: the verdicts that made it
are), so a phase's times follow the status every reader shows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backends.model import Phase

from . import store_logs
from .store_phases import gate_subject
from .store_plan import criterion_subject, verdict_word

OPERATOR = "node"
_FIRST = {"criterion.verdict": "none", "gate.decision": "pending"}  # what a subject with no history reads


@dataclass(frozen=True, slots=True)
class Change:
    subject: str
    action: str  # criterion.verdict | gate.decision | phase.times
    phase_id: str
    verdict: str
    reason: str


def current(phases: Sequence[Phase]) -> list[Change]:
    """Every criterion's verdict and gate's decision as ``phases`` show them."""
    found = []
    for phase in phases:
        for milestone in phase.milestones:
            for c in milestone.criteria:
                actual = c.actual if c.actual is not None else "not measured"
                found.append(
                    Change(
                        criterion_subject(milestone.id, c.name),
                        "criterion.verdict",
                        phase.id,
                        verdict_word(c.verdict),
                        f"{milestone.id}/{c.name}: {verdict_word(c.verdict).upper()} — {actual} "
                        f"(target {c.target})",
                    )
                )
        reasons = "; ".join(phase.gate.reasons)
        found.append(
            Change(
                gate_subject(phase.id),
                "gate.decision",
                phase.id,
                phase.gate.decision,
                f"{phase.gate.decision.upper()}: {reasons}" if reasons else phase.gate.decision.upper(),
            )
        )
    return found


def pending(phases: Sequence[Phase], stored: Mapping[str, str]) -> list[Change]:
    """The changes not recorded yet: ``stored`` maps subject to its recorded verdict; then each phase
    whose ``finished_at`` disagrees with the status it shows."""
    found = [c for c in current(phases) if stored.get(c.subject, _FIRST[c.action]) != c.verdict]
    for phase in phases:
        done = phase.status == "done"
        if done != (phase.finished_at is not None):
            found.append(Change(f"phase:{phase.id}", "phase.times", phase.id, "done" if done else "open", ""))
    return found


def stored_verdicts(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(r[0]): str(r[1]) for r in conn.execute("SELECT subject, verdict FROM verdicts")}


def record(conn: sqlite3.Connection, now: float, changes: Sequence[Change]) -> int:
    """Record ``changes`` inside the caller's write transaction, each only if no one else did; returns how
    many this call recorded."""
    recorded = 0
    for change in changes:
        if change.action == "phase.times":
            _stamp(conn, now, change.phase_id, change.verdict == "done")
            continue
        row = conn.execute("SELECT verdict FROM verdicts WHERE subject = ?", (change.subject,)).fetchone()
        before = str(row[0]) if row is not None else _FIRST[change.action]
        if before == change.verdict:
            continue  # someone else recorded it first
        conn.execute(
            """INSERT INTO verdicts (subject, verdict, since, reason) VALUES (?, ?, ?, ?)
               ON CONFLICT (subject) DO UPDATE SET verdict = excluded.verdict, since = excluded.since,
                   reason = excluded.reason""",
            (change.subject, change.verdict, now, change.reason),
        )
        store_logs.add_audit(
            conn,
            now,
            operator=OPERATOR,
            action=change.action,
            target=f"phase:{change.phase_id}",
            params={"subject": change.subject, "from": before, "to": change.verdict},
            reason=None,
            outcome="ok",
            detail=change.reason,
            request_id=None,
        )
        recorded += 1
    return recorded


def _stamp(conn: sqlite3.Connection, now: float, phase_id: str, done: bool) -> None:
    """finished_at from now while done (kept if another reader stamped it first), none while not; a phase
    done has started, by then at the latest."""
    conn.execute(
        """UPDATE phases SET
               finished_at = CASE WHEN ? THEN COALESCE(finished_at, ?) ELSE NULL END,
               started_at = CASE WHEN ? THEN COALESCE(started_at, ?) ELSE started_at END
           WHERE id = ?""",
        (done, now, done, now, phase_id),
    )
