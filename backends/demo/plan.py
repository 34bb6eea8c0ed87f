"""The demo fleet's plan: five phases of weekly milestones, success criteria and go/no-go gates.

Times are offsets from the fleet's genesis, so every node of one fleet shows the same schedule. The first
two phases are done (their gates signed), "Scale-out" is active (due in under two days, its progress
creeping forward with the clock), and the last two are pending. Its live milestone, W7, is judged from each
node's own agents' KPIs (``judging.py``), so its criteria and gate move with the figures. Only the active
phase depends on time, so the rest is built once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from backends.model import Criterion, Gate, GateSignoff, Milestone, Phase

from .signals import clamp

DAY = 86400.0
HOUR = 3600.0

ACTIVE_PHASE_ID = "p3-scale-out"
NEXT_PHASE_ID = "p4-hardening"

# Offsets from genesis, in days: start, finish (None while unfinished), due.
_SCHEDULE: dict[str, tuple[float | None, float | None, float]] = {
    "p1-foundation": (-49.0, -35.0, -35.0),
    "p2-pilot": (-35.0, -19.0, -20.0),  # finished a day late: plans slip
    ACTIVE_PHASE_ID: (-19.0, None, 1.75),  # due in 42 hours: the deadline the demo is about
    NEXT_PHASE_ID: (None, None, 16.0),
    "p5-ga": (None, None, 30.0),
}


def _passed(*rows: tuple[str, str, str]) -> tuple[Criterion, ...]:
    return tuple(Criterion(name=n, target=t, actual=a, passed=True) for n, t, a in rows)


def _open(*rows: tuple[str, str]) -> tuple[Criterion, ...]:
    return tuple(Criterion(name=n, target=t) for n, t in rows)


def _done_milestone(ident: str, name: str, *rows: tuple[str, str, str]) -> Milestone:
    return Milestone(id=ident, name=name, status="passed", criteria=_passed(*rows))


def _pending_milestone(ident: str, name: str, *rows: tuple[str, str]) -> Milestone:
    return Milestone(id=ident, name=name, status="pending", criteria=_open(*rows))


@dataclass(frozen=True, slots=True)
class Judgement:
    """The live milestone's criteria and the gate they decide, as ``judging.py`` found them at a minute."""

    criteria: tuple[Criterion, ...]
    gate: Gate
    all_passed: bool


class Plan:
    """The plan of one fleet; ``phases_at(t)`` is a pure function of (seed, genesis, t)."""

    def __init__(self, seed: int, genesis: float) -> None:
        self.seed = seed
        self.genesis = genesis
        self._static = self._build_static()

    def _at(self, days: float | None) -> float | None:
        return None if days is None else self.genesis + days * DAY

    def _shell(self, ident: str, name: str, order: int) -> Phase:
        start, finish, due = _SCHEDULE[ident]
        return Phase(
            id=ident,
            name=name,
            order=order,
            started_at=self._at(start),
            finished_at=self._at(finish),
            due_at=self._at(due),
        )

    def open_phase_ids(self) -> tuple[str, ...]:
        """The phases not yet done, in plan order."""
        return tuple(ident for ident, (_, finish, _) in _SCHEDULE.items() if finish is None)

    def _signed_gate(self, ident: str, criteria: int, operator: str, reason: str) -> Gate:
        finished = self._at(_SCHEDULE[ident][1])
        assert finished is not None
        return Gate(
            decision="go",
            reasons=(f"all {criteria} criteria passed",),
            since=finished,
            signed=GateSignoff(decision="go", operator=operator, at=finished, reason=reason),
        )

    def _build_static(self) -> dict[str, Phase]:
        foundation = self._shell("p1-foundation", "Foundation", 1)
        pilot = self._shell("p2-pilot", "Pilot rollout", 2)
        hardening = self._shell(NEXT_PHASE_ID, "Hardening", 4)
        ga = self._shell("p5-ga", "General availability", 5)
        return {
            foundation.id: _replace(
                foundation,
                status="done",
                progress=1.0,
                milestones=(
                    _done_milestone(
                        "p1-w1",
                        "W1 Wire model and state store",
                        ("Schema round trip", "100% exact", "100% exact"),
                        ("Store write latency", "P99 < 10 ms", "P99 = 4.2 ms"),
                    ),
                    _done_milestone(
                        "p1-w2",
                        "W2 Supervisor and heartbeats",
                        ("Heartbeat interval", "<= 5 s", "5 s"),
                        ("Restart after crash", "< 10 s", "6.8 s"),
                    ),
                ),
                gate=self._signed_gate("p1-foundation", 4, "alice", "store and supervisor ready"),
            ),
            pilot.id: _replace(
                pilot,
                status="done",
                progress=1.0,
                milestones=(
                    _done_milestone(
                        "p2-w3",
                        "W3 Pilot on gpu-stage-02",
                        ("Agents healthy", ">= 95%", "98.2%"),
                        ("Rollback time", "< 5 s", "3.1 s"),
                    ),
                    _done_milestone(
                        "p2-w4",
                        "W4 Ten-agent pilot",
                        ("Agent uptime", ">= 99.0%", "99.4%"),
                        ("P95 latency", "P95 < 150 ms", "P95 = 118 ms"),
                        ("Error rate", "< 1%", "0.42%"),
                    ),
                ),
                gate=self._signed_gate("p2-pilot", 5, "bob", "pilot stable for a week on gpu-stage-02"),
            ),
            hardening.id: _replace(
                hardening,
                status="pending",
                progress=0.0,
                milestones=(
                    _pending_milestone(
                        "p4-w9",
                        "W9 Chaos and failover tests",
                        ("Node loss recovery", "< 60 s"),
                        ("Log lines lost in failover", "0"),
                    ),
                    _pending_milestone(
                        "p4-w10",
                        "W10 Security review",
                        ("Critical findings open", "0"),
                        ("Actions audited", "100%"),
                    ),
                ),
                gate=Gate(decision="pending", reasons=("waiting for the Scale-out gate",)),
            ),
            ga.id: _replace(
                ga,
                status="pending",
                progress=0.0,
                milestones=(
                    _pending_milestone(
                        "p5-w11",
                        "W11 Runbooks and on-call",
                        ("Runbooks reviewed", "12 of 12"),
                        ("On-call drill", "MTTA < 5 min"),
                    ),
                    _pending_milestone(
                        "p5-w12",
                        "W12 General availability",
                        ("Availability SLO", "99.9% over 14 days"),
                        ("Go-live sign-off", "ops + security"),
                    ),
                ),
                gate=Gate(decision="pending", reasons=("waiting for the Hardening gate",)),
            ),
        }

    def milestone_progress(self, t: float) -> float:
        """How far W7 is: rises from 40% at genesis towards 95%, never backwards as the clock moves on."""
        return clamp(0.40 + 0.55 * (1.0 - math.exp(-(t - self.genesis) / (3 * HOUR))), 0.0, 0.95)

    def phases_at(self, t: float, load_test: Judgement) -> tuple[Phase, ...]:
        """The plan at ``t``, its live milestone (W7) and gate as ``load_test`` judged them from the node's
        figures."""
        active = _replace(
            self._shell(ACTIVE_PHASE_ID, "Scale-out", 3),
            status="active",
            progress=round((2 + self.milestone_progress(t)) / 4, 3),
            milestones=(
                _done_milestone(
                    "p3-w5",
                    "W5 Multi-node scheduler",
                    ("Placement time", "< 2 s", "0.8 s"),
                    ("Nodes joined", "3 of 3", "3 of 3"),
                ),
                _done_milestone(
                    "p3-w6",
                    "W6 80 agents on 3 nodes",
                    ("Agents healthy", ">= 95%", "96.3%"),
                    ("Host memory", "< 85%", "71%"),
                ),
                Milestone(
                    id="p3-w7",
                    name="W7 Load test at 2x traffic",
                    status="passed" if load_test.all_passed else "active",
                    criteria=load_test.criteria,
                ),
                _pending_milestone(
                    "p3-w8", "W8 Failover drill", ("Rollback time", "< 5 s"), ("Agent recovery", "< 60 s")
                ),
            ),
            gate=load_test.gate,
        )
        s = self._static
        return (s["p1-foundation"], s["p2-pilot"], active, s[NEXT_PHASE_ID], s["p5-ga"])


def _replace(phase: Phase, **changes: object) -> Phase:
    return msgspec.structs.replace(phase, **changes)
