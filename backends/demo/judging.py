"""The demo plan's live milestone: criteria bound to KPIs, judged from the node's own agents' figures, and
the gate they decide together with its no-go triggers.

Each criterion aggregates one KPI over the matched agents' one-minute samples of the last ten minutes
("131 ms (p95 of 4 agents, 10 min)") and passes or fails against its target. The gate is NO-GO while any
criterion fails or any trigger fires ("No-Go: any agent crash-looping — TRIGGERED (...)"), GO when all pass
and none fires. Verdicts are judged on the minute, so ``since`` (when a verdict last changed) is found by
judging the minutes before, up to ``LOOKBACK_S``; the whole judgement is kept until the minute or the
operator's holds change.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from backends.kpis import aggregate, format_value
from backends.model import Criterion, Gate, GateDecision

from .catalog import MIB
from .figures import SERVER_ROLES, kpi_unit
from .kpi_history import grid_points
from .plan import Judgement
from .roster import AgentSpec
from .state import Hold
from .world import CRASH_LOOP_WINDOW_S, World

STEP_S = 60.0
WINDOW_S = 600.0
LOOKBACK_S = 3 * 3600.0  # how far back a verdict's "since" is looked for; beyond it, not known
CRASH_LOOP_CRASHES = 3  # crashes within CRASH_LOOP_WINDOW_S that make an agent crash-looping
ERROR_RATIO_TRIGGER = 0.01

_OPS: dict[str, Callable[[float, float], bool]] = {"<": operator.lt, ">=": operator.ge}


@dataclass(frozen=True, slots=True)
class Bound:
    """A criterion bound to a KPI: ``how`` of ``kpi`` over the agents of ``roles``, compared by ``op``."""

    name: str
    target: str
    kpi: str
    roles: frozenset[str]
    how: str  # an aggregate of backends.kpis
    op: str
    limit: float


RETRIEVERS = frozenset({"retriever"})
LOAD_TEST: tuple[Bound, ...] = (
    Bound("P95 latency", "P95 < 120 ms", "latency_p95_ms", RETRIEVERS, "p95", "<", 120.0),
    Bound("Success rate", "≥ 99.9%", "success_ratio", SERVER_ROLES, "mean", ">=", 0.999),
    Bound("Index cache memory", "< 80 MiB", "index_cache_bytes", RETRIEVERS, "max", "<", 80.0 * MIB),
    Bound("Throughput", "≥ 1000 ops/h per retriever", "ops_per_hour", RETRIEVERS, "mean", ">=", 1000.0),
)
CRASH_TRIGGER = "No-Go: any agent crash-looping"
ERROR_TRIGGER = "No-Go: error rate > 1% on any agent"


@dataclass(slots=True)
class _Known:
    """One agent's figures for one KPI on the minute grid over ``[start, end)``: minute -> figure, with no
    entry where it measured nothing."""

    start: float
    end: float
    points: dict[float, float]


# One bound's samples: minute -> (agent ids, their figures), in roster order.
_ByMinute = dict[float, tuple[list[str], list[float]]]


@dataclass(frozen=True, slots=True)
class _Minute:
    """What was judged at one minute: each criterion's (figure, agents) or None, the triggers fired."""

    figures: tuple[tuple[float, int] | None, ...]
    fired: tuple[str | None, str | None]  # crash-loop detail, error-rate detail


class Judge:
    """Judges the live milestone of one node; keeps the latest judgement until the minute or holds move."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._cached: tuple[object, Judgement] | None = None
        # (agent, KPI) -> its figures on the minute grid: a sample is a pure function of its minute, so
        # those judged a minute ago are kept, not redone; only the newest minute is sampled afresh.
        self._memo: dict[tuple[str, str], _Known] = {}
        # End minute -> what was judged over the window ending there, under the holds of ``_minutes_held``.
        self._minutes: dict[float, _Minute] = {}
        self._minutes_held: tuple[tuple[str, Hold], ...] = ()

    def judge(self, t: float, holds: Mapping[str, Hold]) -> Judgement:
        minute = (t // STEP_S) * STEP_S
        key = (minute, tuple(sorted(holds.items())))
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        judgement = self._judge(minute, holds)
        self._cached = (key, judgement)
        return judgement

    def _judge(self, minute: float, holds: Mapping[str, Hold]) -> Judgement:
        timeline = self._timeline(minute, holds)
        now = timeline[0]

        criteria: list[Criterion] = []
        verdicts: list[bool | None] = []
        for index, bound in enumerate(LOAD_TEST):
            verdict = _verdict(bound, now.figures[index])
            verdicts.append(verdict)
            changed = _since(minute, [_verdict(bound, m.figures[index]) for m in timeline])
            criteria.append(
                Criterion(
                    name=bound.name,
                    target=bound.target,
                    actual=_actual(bound, now.figures[index]),
                    passed=verdict,
                    kpi=bound.kpi,
                    since=changed,
                )
            )
        decisions = [
            _decision([_verdict(b, m.figures[i]) for i, b in enumerate(LOAD_TEST)], m) for m in timeline
        ]
        decision = decisions[0]
        return Judgement(
            criteria=tuple(criteria),
            gate=Gate(
                decision=decision,
                reasons=_reasons(decision, criteria, now),
                since=_since(minute, decisions),
            ),
            all_passed=all(v is True for v in verdicts),
        )

    def _timeline(self, minute: float, holds: Mapping[str, Hold]) -> list[_Minute]:
        """What was judged at each minute of the lookback, newest first. A minute's judgement is a pure
        function of the minute and the holds, so a minute later only the newest one is judged afresh."""
        held = tuple(sorted(holds.items()))
        if held != self._minutes_held:
            self._minutes, self._minutes_held = {}, held
        ends = [minute - k * STEP_S for k in range(int(LOOKBACK_S // STEP_S) + 1)]
        missing = [end for end in ends if end not in self._minutes]
        if missing:
            lookback_start = minute - LOOKBACK_S - WINDOW_S
            first = min(missing) - WINDOW_S  # the earliest window's samples start after this
            samples = [
                self._samples(bound, lookback_start, first, max(missing), holds) for bound in LOAD_TEST
            ]
            for end in missing:
                self._minutes[end] = self._minute_at(end, samples, holds)
        self._minutes = {end: self._minutes[end] for end in ends}  # those older have left the lookback
        return [self._minutes[end] for end in ends]

    def _matching(self, roles: frozenset[str]) -> list[AgentSpec]:
        return [spec for spec in self.world.roster if spec.role.name in roles]

    def _samples(
        self, bound: Bound, keep_from: float, after: float, minute: float, holds: Mapping[str, Hold]
    ) -> _ByMinute:
        """The matched agents' figures for ``bound`` at each minute after ``after`` up to ``minute``,
        grouped by minute as (agent ids, figures); an agent's figures stop where an operator held it.
        Samples from ``keep_from`` on are kept for the judgements to come."""
        ids: dict[float, list[str]] = {}
        values: dict[float, list[float]] = {}
        end = minute + STEP_S / 2  # the grid's minutes up to and including ``minute``
        for spec in self._matching(bound.roles):
            hold = holds.get(spec.id)
            points = self._known(spec, bound.kpi, keep_from, end).points
            for tau in _grid(after + STEP_S, end if hold is None else min(end, hold.since)):
                value = points.get(tau)
                if value is not None:
                    ids.setdefault(tau, []).append(spec.id)
                    values.setdefault(tau, []).append(value)
        return {tau: (ids[tau], values[tau]) for tau in sorted(ids)}

    def _known(self, spec: AgentSpec, kpi: str, start: float, end: float) -> _Known:
        """The agent's figures on the minute grid over ``[start, end)``, sampling only minutes not yet
        known; minutes before ``start`` are forgotten (they have left the lookback)."""
        known = self._memo.get((spec.id, kpi))
        if known is None:
            known = self._memo[(spec.id, kpi)] = _Known(start, start, {})
        points = known.points
        if start < known.start:
            points.update(grid_points(self.world, spec, kpi, start, known.start, STEP_S, None))
        else:
            for tau in _grid(known.start, min(start, known.end)):
                points.pop(tau, None)
        if known.end < end:
            points.update(grid_points(self.world, spec, kpi, max(known.end, start), end, STEP_S, None))
        known.start, known.end = start, max(end, known.end)
        return known

    def _minute_at(self, end: float, samples: list[_ByMinute], holds: Mapping[str, Hold]) -> _Minute:
        figures: list[tuple[float, int] | None] = []
        for bound, by_minute in zip(LOAD_TEST, samples, strict=True):
            values: list[float] = []
            agents: set[str] = set()
            tau = end - WINDOW_S + STEP_S
            while tau <= end:
                got = by_minute.get(tau)
                if got is not None:
                    agents.update(got[0])
                    values.extend(got[1])
                tau += STEP_S
            figure = aggregate(values, bound.how)
            figures.append(None if figure is None else (figure, len(agents)))
        return _Minute(tuple(figures), (self._crash_loop(end, holds), self._error_rate(end, samples)))

    def _crash_loop(self, t: float, holds: Mapping[str, Hold]) -> str | None:
        world = self.world
        who = world.trouble.crash_id
        if who is None:
            return None
        hold = holds.get(who)
        if hold is not None and t >= hold.since:
            return None  # an operator has it paused or stopped: it no longer loops
        crashes = world.crashes_within(t, CRASH_LOOP_WINDOW_S)
        return f"{who} crashed {crashes} times in the last hour" if crashes >= CRASH_LOOP_CRASHES else None

    def _error_rate(self, t: float, samples: list[_ByMinute]) -> str | None:
        index = next(i for i, b in enumerate(LOAD_TEST) if b.kpi == "success_ratio")
        got = samples[index].get(t)
        if got is None:
            return None
        ids, values = got
        worst = min(range(len(values)), key=values.__getitem__)  # the first of equals, as before
        if 1.0 - values[worst] <= ERROR_RATIO_TRIGGER:
            return None
        return f"{ids[worst]} at {format_value(1.0 - values[worst], 'ratio')}"


def _grid(start: float, stop: float) -> Iterator[float]:
    """The grid's minutes in ``[start, stop)``; ``start`` is on the grid."""
    tau = start
    while tau < stop:
        yield tau
        tau += STEP_S


def _verdict(bound: Bound, figure: tuple[float, int] | None) -> bool | None:
    return None if figure is None else _OPS[bound.op](figure[0], bound.limit)


def _actual(bound: Bound, figure: tuple[float, int] | None) -> str | None:
    if figure is None:
        return None
    value, agents = figure
    who = "1 agent" if agents == 1 else f"{agents} agents"
    return f"{format_value(value, kpi_unit(bound.kpi))} ({bound.how} of {who}, {WINDOW_S / 60:.0f} min)"


def _decision(verdicts: list[bool | None], minute: _Minute) -> GateDecision:
    if any(v is False for v in verdicts) or any(minute.fired):
        return "no-go"
    return "pending" if any(v is None for v in verdicts) else "go"


def _since(minute: float, timeline: Sequence[object]) -> float | None:
    """When the first value of ``timeline`` (one per minute, newest first) began; None if it held all
    through the lookback (since before we can tell)."""
    for k, value in enumerate(timeline):
        if value != timeline[0]:
            return minute - (k - 1) * STEP_S
    return None


def _reasons(decision: GateDecision, criteria: list[Criterion], now: _Minute) -> tuple[str, ...]:
    reasons: list[str] = []
    if decision == "go":
        reasons.append(f"all {len(criteria)} W7 criteria pass")
    for criterion in criteria:
        if criterion.passed is False:
            reasons.append(f"{criterion.name}: {criterion.actual}, target {criterion.target}")
        elif criterion.actual is None:
            reasons.append(f"{criterion.name}: not measured (no agent reports {criterion.kpi})")
    for trigger, detail in zip((CRASH_TRIGGER, ERROR_TRIGGER), now.fired, strict=True):
        reasons.append(f"{trigger} — TRIGGERED ({detail})" if detail else f"{trigger} — clear")
    return tuple(reasons)
