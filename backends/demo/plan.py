"""The demo fleet's plan: five phases of weekly milestones, success criteria and go/no-go gates.

Times are offsets from the fleet's genesis, so every node of one fleet shows the same plan. The first two
phases are done, "Scale-out" is active (due in under two days, its progress creeping forward with the clock,
its gate NO-GO on two failing criteria), and the last two are pending. Only the active phase depends on
time, so the rest is built once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from backends.model import Criterion, Gate, Milestone, Phase

from .signals import clamp, mix, phase_of, smooth_noise, wave

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
class LiveCriteria:
    """The numbers the active milestone is judged on at one moment; shared with the log generator."""

    p95_ms: int
    error_rate_pct: float
    headroom_pct: int
    throughput_rps: int


class Plan:
    """The plan of one fleet; ``phases_at(t)`` is a pure function of (seed, genesis, t)."""

    def __init__(self, seed: int, genesis: float) -> None:
        self.seed = seed
        self.genesis = genesis
        self._key = mix(seed, 0x91A4)
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
                gate=Gate(decision="go", reasons=("all 4 criteria passed", "signed off by alice")),
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
                gate=Gate(decision="go", reasons=("all 5 criteria passed", "signed off by bob")),
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

    def live_criteria(self, t: float) -> LiveCriteria:
        """The load test's numbers at time ``t``: P95 hovers around 131 ms, always over its 120 ms target,
        so the gate stays NO-GO whatever the moment a snapshot is taken."""
        k = self._key
        p95 = 131 + 5 * wave(t, 900, phase_of(mix(k, 1))) + 2 * smooth_noise(mix(k, 2), t / 7)
        errors = 0.31 + 0.08 * wave(t, 1300, phase_of(mix(k, 3)))
        headroom = 11 + 1.2 * wave(t, 2400, phase_of(mix(k, 4)))
        rps = 1340 + 60 * wave(t, 700, phase_of(mix(k, 5))) + 15 * smooth_noise(mix(k, 6), t / 5)
        return LiveCriteria(round(p95), round(errors, 2), round(headroom), round(rps))

    def milestone_progress(self, t: float) -> float:
        """How far W7 is: rises from 40% at genesis towards 95%, never backwards as the clock moves on."""
        return clamp(0.40 + 0.55 * (1.0 - math.exp(-(t - self.genesis) / (3 * HOUR))), 0.0, 0.95)

    def phases_at(self, t: float) -> tuple[Phase, ...]:
        live = self.live_criteria(t)
        load_test = (
            Criterion(
                name="P95 latency",
                target="P95 < 120 ms",
                actual=f"P95 = {live.p95_ms} ms",
                passed=live.p95_ms < 120,
            ),
            Criterion(
                name="Error rate",
                target="< 0.5%",
                actual=f"{live.error_rate_pct:.2f}%",
                passed=live.error_rate_pct < 0.5,
            ),
            Criterion(
                name="GPU memory headroom",
                target=">= 15%",
                actual=f"{live.headroom_pct}%",
                passed=live.headroom_pct >= 15,
            ),
            Criterion(
                name="Throughput",
                target=">= 1,200 req/s",
                actual=f"{live.throughput_rps:,} req/s",
                passed=live.throughput_rps >= 1200,
            ),
        )
        failing = tuple(f"{c.name}: {c.actual} (target {c.target})" for c in load_test if c.passed is False)
        gate = (
            Gate(decision="no-go", reasons=failing)
            if failing
            else Gate(
                decision="pending", reasons=("all load-test criteria pass; waiting for W8 failover drill",)
            )
        )
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
                Milestone(id="p3-w7", name="W7 Load test at 2x traffic", status="active", criteria=load_test),
                _pending_milestone(
                    "p3-w8", "W8 Failover drill", ("Rollback time", "< 5 s"), ("Agent recovery", "< 60 s")
                ),
            ),
            gate=gate,
        )
        s = self._static
        return (s["p1-foundation"], s["p2-pilot"], active, s[NEXT_PHASE_ID], s["p5-ga"])


def _replace(phase: Phase, **changes: object) -> Phase:
    return msgspec.structs.replace(phase, **changes)
