"""KPI thresholds: the config's ``[[kpis]]`` rules, resolved per agent, and how a figure is graded by one.

A rule names a KPI, its warning and critical lines, which side of them is bad (``direction``: "above" for
a latency, "below" for a success ratio) and how long a figure must stay past a line before it alerts
(``for_s``), so one slow request pages nobody. Reaching a line counts as crossing it, as with the config's
``[thresholds]``: ``above`` breaches at ``value >= line``, ``below`` at ``value <= line``.

Overrides: a ``[[kpis.overrides]]`` entry matches an agent by ``node`` and/or ``labels`` and replaces any
of ``warn``, ``crit``, ``for_s``. Every matching override applies, least specific first (node only, then
labels, then node and labels), and among overrides of equal specificity the later one in the file wins; an
override sets only the keys it gives, so a node's ``for_s`` and a role's ``crit`` combine.

Counters (``kind = "counter"``, names ending in ``_total``) are judged on their rate per second
(``Kpi.rate_per_s``): a counter's value only grows, what a threshold means is how fast. A counter rule's
``unit`` is then a rate (per_s, per_min, per_hour; default per second).

The built-in rules (:data:`DEFAULT_RULES`) judge the three KPIs every fleet reports the same way, and the
OTLP receiver's count of agents it refused (its cardinality bound), unless the config names a rule of the
same name, which replaces the built-in one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Final, Literal, Protocol

import msgspec

from backends.kpis import convert
from backends.model import Agent, KpiName, KpiUnit

Direction = Literal["above", "below"]
KpiSeverity = Literal["warning", "critical"]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
NodeName = Annotated[str, msgspec.Meta(min_length=1)]
COUNTER_UNIT: Final = "per_s"  # the unit a counter's judged figure (its rate) is in
FALLBACK_HEADLINE: Final = "latency_p95_ms"


class KpiOverride(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[kpis.overrides]]``: other lines for the agents of a node and/or with given labels."""

    node: NodeName | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    warn: float | None = None
    crit: float | None = None
    for_s: Seconds | None = None

    @property
    def specificity(self) -> int:
        return (1 if self.node is not None else 0) + (2 if self.labels else 0)

    def matches(self, node: str, labels: Mapping[str, str]) -> bool:
        if self.node is not None and self.node != node:
            return False
        return all(labels.get(key) == value for key, value in self.labels.items())


class KpiRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``[[kpis]]``: the lines one KPI is judged by. ``unit`` is the unit ``warn`` and ``crit`` are written
    in; None: the unit each agent reports the KPI in."""

    name: KpiName
    unit: KpiUnit | None = None
    warn: float
    crit: float
    direction: Direction = "above"
    for_s: Seconds = 0.0
    overrides: tuple[KpiOverride, ...] = ()


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """A rule as it applies to one agent, its overrides applied."""

    name: str
    unit: str | None
    warn: float
    crit: float
    direction: Direction
    for_s: float


@dataclass(frozen=True, slots=True)
class Limits:
    """A rule's lines in the unit of the figures being judged, so the hot path compares plain floats."""

    warn: float
    crit: float
    above: bool
    for_s: float

    def grade(self, value: float) -> KpiSeverity | None:
        if self.above:
            return "critical" if value >= self.crit else "warning" if value >= self.warn else None
        return "critical" if value <= self.crit else "warning" if value <= self.warn else None


@dataclass(frozen=True, slots=True)
class Episode:
    """One breach that lasted at least its rule's ``for_s``: from its first point past the warning line
    to the first point back inside (None while it lasts); ``peak`` is its worst figure."""

    start: float
    end: float | None
    severity: KpiSeverity
    peak: float


DEFAULT_RULES: Final[tuple[KpiRule, ...]] = (
    KpiRule(name="latency_p95_ms", unit="ms", warn=120.0, crit=150.0, direction="above", for_s=60.0),
    KpiRule(name="success_ratio", unit="ratio", warn=0.999, crit=0.99, direction="below", for_s=60.0),
    KpiRule(name="error_ratio", unit="ratio", warn=0.01, crit=0.05, direction="above", for_s=60.0),
    # telemetry is being turned away: every refused agent is data lost, so it alerts at once
    KpiRule(name="otlp_refused_agents", unit="count", warn=1.0, crit=100.0, direction="above", for_s=0.0),
)


def effective_rules(configured: Iterable[KpiRule]) -> tuple[KpiRule, ...]:
    """The configured rules, then each built-in one the config does not replace by name."""
    configured = tuple(configured)
    names = {rule.name for rule in configured}
    return configured + tuple(rule for rule in DEFAULT_RULES if rule.name not in names)


def order_problem(warn: float, crit: float, direction: str) -> str | None:
    """What is wrong with a pair of lines for ``direction``, in words; None when they are in order."""
    if direction == "above" and warn > crit:
        return f"warn {warn:g} is above crit {crit:g} (direction above: warn <= crit)"
    if direction == "below" and warn < crit:
        return f"warn {warn:g} is below crit {crit:g} (direction below: warn >= crit)"
    return None


def rule_problems(rules: Sequence[KpiRule]) -> list[tuple[str, str]]:
    """(key, problem) for each rule msgspec cannot check alone: the order of its lines (and of each
    override's, taken with the rule's), a repeated name, an override that matches every agent."""
    problems: list[tuple[str, str]] = []
    first: dict[str, int] = {}
    for index, rule in enumerate(rules):
        at = f"kpis[{index}]"
        if rule.name in first:
            problems.append(
                (f"{at}.name", f"duplicate KPI rule {rule.name!r} (also kpis[{first[rule.name]}])")
            )
        first.setdefault(rule.name, index)
        if problem := order_problem(rule.warn, rule.crit, rule.direction):
            problems.append((f"{at}.warn", problem))
        for number, override in enumerate(rule.overrides):
            where = f"{at}.overrides[{number}]"
            if override.node is None and not override.labels:
                problems.append((where, "an override needs node or labels (else it is the rule itself)"))
            warn = rule.warn if override.warn is None else override.warn
            crit = rule.crit if override.crit is None else override.crit
            if problem := order_problem(warn, crit, rule.direction):
                key = "warn" if override.warn is not None else "crit"
                problems.append((f"{where}.{key}", problem))
    return problems


def resolve(rule: KpiRule, node: str, labels: Mapping[str, str]) -> ResolvedRule:
    """``rule`` with the overrides that match an agent of ``node`` with ``labels`` applied."""
    warn, crit, for_s = rule.warn, rule.crit, rule.for_s
    matching = [o for o in rule.overrides if o.matches(node, labels)]
    for override in sorted(matching, key=lambda o: o.specificity):  # stable: later wins at equal rank
        warn = warn if override.warn is None else override.warn
        crit = crit if override.crit is None else override.crit
        for_s = for_s if override.for_s is None else override.for_s
    return ResolvedRule(rule.name, rule.unit, warn, crit, rule.direction, for_s)


class RuleBook:
    """The effective rules, resolved once per (node, labels): 5,000 agents of a few roles resolve a few
    times, not 5,000 times a refresh. Also caches each rule's lines converted into a figure's unit."""

    def __init__(self, configured: Iterable[KpiRule] = ()) -> None:
        self.rules = effective_rules(configured)
        self._plain = {rule.name: resolve(rule, "", {}) for rule in self.rules if not rule.overrides}
        self._overridden = tuple(rule for rule in self.rules if rule.overrides)
        self._by_agent: dict[tuple[str, frozenset[tuple[str, str]]], dict[str, ResolvedRule]] = {}
        self._limits: dict[tuple[ResolvedRule, str], Limits | None] = {}

    @property
    def uniform(self) -> dict[str, ResolvedRule] | None:
        """The rules of every agent when no rule has overrides (no per-agent lookup needed); else None."""
        return None if self._overridden else self._plain

    def for_agent(self, node: str, labels: Mapping[str, str]) -> dict[str, ResolvedRule]:
        """KPI name -> the rule that judges it for an agent of ``node`` with ``labels``."""
        if not self._overridden:
            return self._plain
        key = (node, frozenset(labels.items()) if labels else frozenset())
        found = self._by_agent.get(key)
        if found is None:
            found = dict(self._plain)
            found.update((rule.name, resolve(rule, node, labels)) for rule in self._overridden)
            if len(self._by_agent) > 10_000:  # labels unique per agent would grow this without end
                self._by_agent.clear()
            self._by_agent[key] = found
        return found

    def limits(self, rule: ResolvedRule, unit: str) -> Limits | None:
        """``rule``'s lines in ``unit``; None when figures in ``unit`` cannot be compared with them."""
        key = (rule, unit)
        try:
            return self._limits[key]
        except KeyError:
            pass
        limits = _limits(rule, unit)
        self._limits[key] = limits
        return limits


def _limits(rule: ResolvedRule, unit: str) -> Limits | None:
    if rule.unit is None or rule.unit == unit:
        warn, crit = rule.warn, rule.crit
    else:
        warn_in, crit_in = convert(rule.warn, rule.unit, unit), convert(rule.crit, rule.unit, unit)
        if warn_in is None or crit_in is None:
            return None
        warn, crit = warn_in, crit_in
    return Limits(warn, crit, rule.direction == "above", rule.for_s)


_BOOKS: dict[int, tuple[Sequence[KpiRule], RuleBook]] = {}


def rule_book(rules: Sequence[KpiRule] | RuleBook) -> RuleBook:
    """The RuleBook of a config's ``kpis`` (the same tuple gives the same book, and its caches)."""
    if isinstance(rules, RuleBook):
        return rules
    held = _BOOKS.get(id(rules))
    if held is not None and held[0] is rules:
        return held[1]
    if len(_BOOKS) > 32:
        _BOOKS.clear()
    book = RuleBook(rules)
    _BOOKS[id(rules)] = (rules, book)  # holding `rules` keeps its id from being reused
    return book


def resolved_rule(
    rules: Sequence[KpiRule] | RuleBook, node_name: str, agent: Agent, name: str
) -> ResolvedRule | None:
    """The rule that judges KPI ``name`` of ``agent`` on ``node_name``; None when no rule names it."""
    return rule_book(rules).for_agent(node_name, agent.labels).get(name)


def judged_figure(value: float, unit: str, kind: str, rate_per_s: float | None) -> tuple[float, str] | None:
    """(figure, unit) a rule judges of a KPI: a gauge's value, a counter's rate per second (None while a
    counter has no rate yet)."""
    if kind == "counter":
        return None if rate_per_s is None else (rate_per_s, COUNTER_UNIT)
    return value, unit


def grade(rule: ResolvedRule, value: float, unit: str) -> KpiSeverity | None:
    """How ``value`` (in ``unit``) fares against ``rule``'s lines; None when fine or not comparable."""
    limits = _limits(rule, unit)
    return None if limits is None else limits.grade(value)


def episodes(
    points: Sequence[tuple[float, float]], rule: ResolvedRule, unit: str, *, kind: str = "gauge"
) -> list[Episode]:
    """The breaches in ``points`` (oldest first, in ``unit``) that held at least ``rule.for_s``.

    A breach is a run of points past the warning line; it is critical when a run of points past the
    critical line within it held ``for_s``. How long a run held is measured between its points (its first
    and the first point back inside, or its last point while it lasts), never by a clock: one slow sample
    reported once is no episode unless ``for_s`` is 0. A counter's points (``kind="counter"``) are its
    values; they are judged on the rate between consecutive points, a drop read as a reset.
    """
    limits = _limits(rule, COUNTER_UNIT if kind == "counter" else unit)
    if limits is None:
        return []
    if kind == "counter":
        points = counter_rates(points)
    above, for_s = limits.above, limits.for_s
    found: list[Episode] = []
    start: float | None = None  # the current run past the warning line
    crit_start: float | None = None  # the current run past the critical line
    critical = False
    peak = 0.0
    last = 0.0

    def close(end: float | None, until: float) -> None:
        assert start is not None
        if critical or until - start >= for_s:
            found.append(Episode(start, end, "critical" if critical else "warning", peak))

    for at, value in points:
        severity = limits.grade(value)
        if severity is None:
            if start is not None:
                if crit_start is not None and at - crit_start >= for_s:
                    critical = True
                close(at, at)
            start, crit_start, critical = None, None, False
        else:
            if start is None:
                start, peak = at, value
            peak = max(peak, value) if above else min(peak, value)
            if severity == "critical":
                crit_start = at if crit_start is None else crit_start
                if at - crit_start >= for_s:
                    critical = True
            else:
                if crit_start is not None and at - crit_start >= for_s:
                    critical = True
                crit_start = None
        last = at
    if start is not None:
        close(None, last)
    return found


def counter_rates(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """A counter's values as (time, rate per second since the point before), a drop read as a reset."""
    rates: list[tuple[float, float]] = []
    for (t0, v0), (t1, v1) in pairwise(points):
        if t1 > t0:
            rates.append((t1, ((v1 - v0) if v1 >= v0 else v1) / (t1 - t0)))
    return rates


class KpiSettings(Protocol):
    """What headline_kpi reads of a Config (console.core.config imports this module, not the reverse)."""

    @property
    def kpis(self) -> tuple[KpiRule, ...]: ...
    @property
    def headline_kpi(self) -> str | None: ...


def headline_kpi(config_or_rules: KpiSettings | Sequence[KpiRule], agents: Iterable[Agent]) -> str | None:
    """The KPI the agents table shows in its KPI column: the config's ``headline_kpi``; else the first
    configured rule's KPI; else latency_p95_ms if an agent reports it; else the first KPI an agent
    reports; None when no agent reports any."""
    if isinstance(config_or_rules, Sequence):
        rules: Sequence[KpiRule] = config_or_rules
    else:
        if config_or_rules.headline_kpi is not None:
            return config_or_rules.headline_kpi
        rules = config_or_rules.kpis
    if rules:
        return rules[0].name
    first: str | None = None
    for agent in agents:
        for kpi in agent.kpis:
            if kpi.name == FALLBACK_HEADLINE:
                return FALLBACK_HEADLINE
            first = first or kpi.name
    return first
