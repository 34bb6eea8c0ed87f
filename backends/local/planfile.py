"""Plan files: phases -> weekly milestones -> success criteria, and a go/no-go gate per phase.

A plan is a TOML file (format: docs/plan-format.md, example: examples/plan.toml). This module only parses
and judges: ``load_plan`` returns validated, immutable specs or raises one :class:`PlanError` line naming
file, line, key and problem; it writes nothing, so a bad file can never half-apply. Applying a plan (an
idempotent upsert by id) is the store's job.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import msgspec
from msgspec import Meta, Struct, field

from backends.kpis import AGGREGATES, Aggregate, infer_kind, infer_unit
from backends.model import Gate, KpiName

from .plan_targets import default_aggregate, parse_duration, parse_target, threshold_in

Op = Literal["<", "<=", ">", ">=", "==", "!="]
OPS: Final[tuple[str, ...]] = get_args(Op)
# The built-in no-go triggers, and "kpi" for a trigger that watches a KPI against a line.
When = Literal["crash_looping", "agent_failed", "kpi"]
WHENS: Final[tuple[str, ...]] = get_args(When)
DEFAULT_OVER_S: Final = 300.0  # a bound KPI's window when the file gives no `over`
DEFAULT_RESTARTS: Final = 3  # crash_looping: this many restarts within `over` (default 10 min)
DEFAULT_CRASH_OVER_S: Final = 600.0

# Ids appear on command lines (`phase:ID`, `--milestone ID`), so no spaces or colons.
_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Id = Annotated[str, Meta(min_length=1, max_length=200, pattern=_ID_PATTERN)]
Text = Annotated[str, Meta(min_length=1)]


class _Spec(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the file's tables: a misspelt key is an error, not a silently ignored setting."""


class _Line(_Spec, frozen=True, kw_only=True):
    """A line a figure is held against: ``target = "< 120 ms"`` or ``op``/``value``/``unit``, and where it
    watches a KPI, which one, over what window, across which agents and how they are summed up."""

    target: str = ""  # the human text; derived from op/value/unit when left out
    op: Op | None = None
    value: float | None = None
    unit: Text | None = None
    kpi: KpiName | None = None
    over: str | float | None = None  # "30s", "10m", "1h", "7d" or seconds
    agents: dict[str, str] | None = None  # a label match, e.g. {role = "retriever"}
    aggregate: Aggregate | None = None

    def __post_init__(self) -> None:
        # Frozen, but this runs during construction: what is derived is part of the value.
        if self.op is None and self.value is None and self.target:
            parsed = parse_target(self.target)
            if parsed is not None:  # "< 120 ms" says op, value and unit; "P95 < 120 ms" stays text
                msgspec.structs.force_setattr(self, "op", parsed.op)
                msgspec.structs.force_setattr(self, "value", parsed.value)
                msgspec.structs.force_setattr(self, "unit", parsed.unit)
        if not self.target and self.op is not None and self.value is not None:
            msgspec.structs.force_setattr(self, "target", describe_target(self.op, self.value, self.unit))

    @property
    def over_s(self) -> float | None:
        return parse_duration(self.over) if self.over is not None else None

    @property
    def how(self) -> str:
        """The aggregate that decides it: the file's, else the default for its op and the KPI's kind."""
        if self.aggregate is not None:
            return self.aggregate
        return default_aggregate(self.op or "<", infer_kind(self.kpi or ""))


class CriterionSpec(_Line, frozen=True, kw_only=True):
    name: Text


class NoGoSpec(_Line, frozen=True, kw_only=True):
    """A trigger that turns the gate NO-GO by itself: a built-in (``when``) or a KPI over a line."""

    name: Text
    when: When | None = None  # left out with `kpi` given: "kpi"
    restarts: Annotated[int, Meta(ge=1)] | None = None  # crash_looping: how many restarts within `over`

    @property
    def kind(self) -> str:
        return self.when or ("kpi" if self.kpi is not None else "")


class MilestoneSpec(_Spec, frozen=True, kw_only=True):
    id: Id
    name: Text
    criteria: tuple[CriterionSpec, ...] = ()


class GateSpec(_Spec, frozen=True, kw_only=True):
    # None (left out of the file) means every milestone of the phase; load_plan fills in the explicit ids.
    requires: Annotated[tuple[Id, ...], Meta(min_length=1)] | None = None
    # the criteria that decide the gate ("MILESTONE-ID/criterion name", or a name unique in the phase);
    # load_plan makes each "MILESTONE-ID/name". None: the required milestones decide it.
    criteria: Annotated[tuple[Text, ...], Meta(min_length=1)] | None = None
    no_go: tuple[NoGoSpec, ...] = ()


class PhaseSpec(_Spec, frozen=True, kw_only=True):
    id: Id
    name: Text
    due_at: Annotated[float, Meta(ge=0)] | None = field(default=None, name="due")
    agents: tuple[Text, ...] = ()  # fnmatch globs on agent names
    milestones: tuple[MilestoneSpec, ...] = ()
    gate: GateSpec = field(default_factory=GateSpec)


class PlanSpec(_Spec, frozen=True, kw_only=True):
    name: Text
    phases: Annotated[tuple[PhaseSpec, ...], Meta(min_length=1)]


class PlanError(ValueError):
    """A plan file that cannot be used; ``str()`` is one line: ``FILE:LINE[:COL]: KEY: problem``."""

    def __init__(
        self, path: Path, problem: str, *, line: int | None = None, column: int | None = None,
        key: str | None = None,
    ) -> None:  # fmt: skip
        self.path, self.line, self.column, self.key = path, line, column, key
        self.problem = " ".join(problem.split())  # one line, whatever the source message held
        where = str(path) + (f":{line}" if line else "") + (f":{column}" if line and column else "")
        super().__init__(f"{where}: {key + ': ' if key else ''}{self.problem}")


# --- loading -------------------------------------------------------------------------------------------


def load_plan(path: Path) -> PlanSpec:
    """Read, validate and return the plan in ``path``; raise :class:`PlanError` on the first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PlanError(path, "not UTF-8 text") from None
    except OSError as error:
        raise PlanError(path, f"cannot read ({error.strerror or error})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's TOMLDecodeError has no lineno attribute: the position is only in the message.
        match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", str(error))
        if match is None:
            raise PlanError(path, f"invalid TOML: {error}") from None
        problem, line, column = match[1], int(match[2]), int(match[3])
        raise PlanError(path, f"invalid TOML: {problem}", line=line, column=column) from None

    def fail(key: str, problem: str) -> PlanError:
        return PlanError(path, problem, line=_locate(text, key), key=key)

    _due_to_epoch(data, fail)
    try:
        plan = msgspec.convert(data, type=PlanSpec)
    except msgspec.ValidationError as error:
        raise fail(*_describe(str(error))) from None
    for key, problem in _problems(plan):
        raise fail(key, problem)
    return _resolve_gates(plan)


def _due_to_epoch(data: dict[str, Any], fail: Callable[[str, str], PlanError]) -> None:
    """Turn each phase's TOML date-time into epoch seconds, in place, before msgspec sees it."""
    phases = data.get("phases")
    for index, phase in enumerate(phases if isinstance(phases, list) else ()):
        due = phase.get("due") if isinstance(phase, dict) else None
        if isinstance(due, datetime) and due.tzinfo is not None:
            phase["due"] = due.timestamp()
        elif isinstance(due, datetime | date | time):
            # A date or local time means a different instant on every operator's clock.
            problem = "needs a date-time with a UTC offset, e.g. 2026-12-01T17:00:00Z"
            raise fail(f"phases[{index}].due", problem)


def _problems(plan: PlanSpec) -> Iterator[tuple[str, str]]:
    """Yield (key, problem) for what the types alone cannot say: unique ids, known references, pairs."""
    phase_ids: dict[str, int] = {}
    milestone_ids: dict[str, str] = {}
    for p, phase in enumerate(plan.phases):
        if phase.id in phase_ids:
            yield f"phases[{p}].id", f"duplicate phase id {phase.id!r} (also phases[{phase_ids[phase.id]}])"
        phase_ids.setdefault(phase.id, p)
        for m, milestone in enumerate(phase.milestones):
            here = f"phases[{p}].milestones[{m}]"
            if milestone.id in milestone_ids:
                # Unique across the plan because `fleetdeck report --milestone ID` names it alone.
                first = milestone_ids[milestone.id]
                yield f"{here}.id", f"duplicate milestone id {milestone.id!r} (also {first})"
            milestone_ids.setdefault(milestone.id, here)
            names: set[str] = set()
            for c, criterion in enumerate(milestone.criteria):
                key = f"{here}.criteria[{c}]"
                if criterion.name in names:
                    yield f"{key}.name", f"duplicate criterion name {criterion.name!r} in this milestone"
                names.add(criterion.name)
                yield from _line_problems(key, criterion)
        own = [milestone.id for milestone in phase.milestones]
        for r, required in enumerate(phase.gate.requires or ()):
            if required not in own:
                listed = ", ".join(own) or "none"
                problem = f"{required!r} is not a milestone of this phase (its milestones: {listed})"
                yield f"phases[{p}].gate.requires[{r}]", problem
        for r, ref in enumerate(phase.gate.criteria or ()):
            if isinstance(found := _find_criterion(phase, ref), str):
                yield f"phases[{p}].gate.criteria[{r}]", found
        yield from _trigger_problems(f"phases[{p}].gate.no_go", phase.gate.no_go)


_DURATION_HINT: Final = 'expected a duration like "30s", "10m", "1h", "7d" or seconds > 0'


def _line_problems(key: str, line: _Line) -> Iterator[tuple[str, str]]:
    """What is wrong with one criterion's or trigger's line: pairs, finite numbers, the KPI's keys."""
    if line.op is not None and line.value is None:
        yield f"{key}.value", "required when `op` is given"
    if line.value is not None and line.op is None:
        yield f"{key}.op", f"required when `value` is given (one of {', '.join(OPS)})"
    if line.value is not None and not math.isfinite(line.value):
        yield f"{key}.value", "must be a finite number"
    if not line.target:
        yield f"{key}.target", "required (or give `op` and `value` to derive it)"
    if line.kpi is None:
        for name in ("over", "agents", "aggregate"):
            if getattr(line, name) is not None:
                yield f"{key}.{name}", "only for a criterion bound to a KPI: give `kpi` too"
        return
    if line.op is None or line.value is None:
        yield f"{key}.target", f'a KPI\'s line, like "< 120 ms" or ">= 99.9%"; got {line.target!r}'
        return
    unit = infer_unit(line.kpi)
    if unit != "count" and threshold_in(line.value, line.unit, unit) is None:
        problem = f"{line.target!r} cannot be compared with {line.kpi} (its name says {unit})"
        yield f"{key}.target", problem
    if line.over is not None and line.over_s is None:
        yield (
            f"{key}.over",
            f'expected a duration like "30s", "10m", "1h", "7d" or seconds > 0; got {line.over!r}',
        )
    if line.agents is not None and not line.agents:
        yield f"{key}.agents", "an empty label match: leave it out to take the phase's agents"


def _trigger_problems(key: str, triggers: Sequence[NoGoSpec]) -> Iterator[tuple[str, str]]:
    names: set[str] = set()
    for t, trigger in enumerate(triggers):
        here = f"{key}[{t}]"
        if trigger.name in names:
            yield f"{here}.name", f"duplicate no-go trigger name {trigger.name!r} in this gate"
        names.add(trigger.name)
        if trigger.restarts is not None and trigger.kind != "crash_looping":
            yield f"{here}.restarts", 'only for `when = "crash_looping"`'
        if trigger.kind == "":
            yield f"{here}.when", "required: crash_looping or agent_failed (or give `kpi` and `target`)"
        elif trigger.kind == "kpi":
            if trigger.kpi is None:
                yield f"{here}.kpi", 'required when `when = "kpi"`'
            else:
                yield from _line_problems(here, trigger)
        else:
            if trigger.kpi is not None or trigger.target or trigger.op is not None:
                yield f"{here}.kpi", f"a {trigger.kind} trigger watches agents, not a KPI: leave out `when`"
            if trigger.over is not None and parse_duration(trigger.over) is None:
                yield f"{here}.over", f"{_DURATION_HINT}; got {trigger.over!r}"


def _find_criterion(phase: PhaseSpec, ref: str) -> tuple[str, str] | str:
    """``"w7-load/P95 latency"`` or a name unique in the phase -> (milestone id, name); else the problem."""
    milestone_id, slash, name = ref.partition("/")
    for milestone in phase.milestones:
        if slash and milestone.id == milestone_id:
            if any(c.name == name for c in milestone.criteria):
                return milestone.id, name
            known = ", ".join(c.name for c in milestone.criteria) or "none"
            return f"milestone {milestone_id!r} has no criterion {name!r} (its criteria: {known})"
    matches = [(m.id, c.name) for m in phase.milestones for c in m.criteria if c.name == ref]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        where = ", ".join(f"{m}/{n}" for m, n in matches)
        return f"{ref!r} names a criterion of more than one milestone: write one of {where}"
    ids = ", ".join(m.id for m in phase.milestones) or "none"
    return (
        f'{ref!r} is not a criterion of this phase: write "MILESTONE-ID/criterion name" (milestones: {ids})'
    )


def _resolve_gates(plan: PlanSpec) -> PlanSpec:
    """Make each gate's required milestones explicit, in file order, so readers need no default rule."""
    phases = []
    for phase in plan.phases:
        wanted = set(phase.gate.requires) if phase.gate.requires is not None else None
        ids = tuple(m.id for m in phase.milestones if wanted is None or m.id in wanted)
        refs = None
        if phase.gate.criteria is not None:
            refs = tuple("/".join(_find_criterion(phase, ref)) for ref in phase.gate.criteria)
        gate = msgspec.structs.replace(phase.gate, requires=ids or None, criteria=refs)
        phases.append(msgspec.structs.replace(phase, gate=gate))
    return msgspec.structs.replace(plan, phases=tuple(phases))


# --- turning msgspec's errors into `key: problem` -------------------------------------------------------

_WORDS: Final = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
    "object": "a table", "array": "an array", "datetime": "a date-time", "date": "a date", "time": "a time",
}  # fmt: skip


def _describe(message: str) -> tuple[str, str]:
    """``Invalid enum value '=<' - at `$.phases[0]...op``` -> (``phases[0]...op``, a plain-words problem)."""
    problem, _, where = message.partition(" - at `$")
    key = where.rstrip("`").lstrip(".")
    if found := re.fullmatch(r"Object contains unknown field `(.+)`", problem):
        known = ", ".join(_keys_at(key))
        return _join(key, found[1]), "unknown key" + (f" (known here: {known})" if known else "")
    if found := re.fullmatch(r"Object missing required field `(.+)`", problem):
        return _join(key, found[1]), "required, but missing"
    if found := re.fullmatch(r"Invalid enum value (.+)", problem):
        choices = AGGREGATES if key.endswith("aggregate") else WHENS if key.endswith("when") else OPS
        return key, f"expected one of {', '.join(choices)}; got {found[1]}"
    if "matching regex" in problem and key.endswith("kpi"):
        return key, "expected a KPI name: lower-case letters, digits and '_', starting with a letter"
    if "matching regex" in problem:
        return key, "expected an id: letters, digits, '.', '_' or '-', starting with a letter or digit"
    if problem.endswith("of length >= 1"):
        hint = " (leave it out to require every milestone)" if key.endswith("requires") else ""
        return key, "must not be empty" + hint
    if key.endswith(".due"):
        return key, "expected a date-time with a UTC offset (2026-12-01T17:00:00Z) or epoch seconds >= 0"
    problem = re.sub(r"`(\w+)`", lambda m: _WORDS.get(m[1], m[1]), problem.replace(" | null", ""))
    return key, problem[:1].lower() + problem[1:]


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _keys_at(key: str) -> list[str]:
    """The keys the table at ``key`` accepts, to list next to an unknown one."""
    type_: Any = PlanSpec
    try:
        for name in filter(None, re.sub(r"\[\d+\]", "", key).split(".")):
            type_ = {f.encode_name: f.type for f in msgspec.structs.fields(type_)}[name]
            while get_origin(type_) is not None:  # Annotated / Optional / tuple[...] down to the table
                type_ = next(arg for arg in get_args(type_) if arg is not type(None) and arg is not ...)
        return [f.encode_name for f in msgspec.structs.fields(type_)]
    except (KeyError, TypeError, StopIteration):
        return []


# --- finding the line of a key path ---------------------------------------------------------------------

_HEADER: Final = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]+?)\s*\]\]?\s*(?:#.*)?$")


def _locate(text: str, key: str) -> int | None:
    """Best-effort line of ``phases[1].milestones[0].criteria[2].op`` in the TOML ``text``.

    TOML parsers drop positions, so the table headers are replayed: the Nth ``[[phases]]`` header is
    ``phases[N-1]``, a ``[[phases.milestones]]`` under it is ``phases[N-1].milestones[M]``, and so on. Then
    the key's own line is looked for inside its table; if absent (a missing key), the header is the answer.
    """
    lines = text.splitlines()
    starts: dict[str, int] = {"": 0}  # table path -> index of its header line
    counts: dict[str, int] = {}
    for number, line in enumerate(lines):
        header = _HEADER.match(line)
        if header is None:
            continue
        path = ""
        names = [name.strip().strip("\"'") for name in header[2].split(".")]
        for position, name in enumerate(names):
            path = _join(path, name)
            if position == len(names) - 1 and header[1] == "[[":
                counts[path] = counts.get(path, 0) + 1
            if path in counts:  # an array of tables: its latest element is the one meant
                path += f"[{counts[path] - 1}]"
        starts[path] = number
    parts = re.findall(r"\[\d+\]|[^.\[\]]+", key)
    for cut in range(len(parts), -1, -1):
        table = "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(parts[:cut]))
        if table in starts:
            break
    start = starts[table]
    following = [n for n in starts.values() if n > start] if table else list(starts.values())[1:]
    end = min(following, default=len(lines))
    rest = parts[cut:]
    if rest and not rest[0].startswith("["):
        wanted = re.compile(rf"^\s*[\"']?{re.escape(rest[0])}[\"']?\s*[.=]")
        for number in range(start + 1 if table else 0, end):
            if wanted.match(lines[number]):
                return number + 1
    return start + 1 if lines else None


# --- judging -------------------------------------------------------------------------------------------

# A number not glued to a word ("P95" is a name, not 95), then an optional unit right after it.
_NUMBER: Final = re.compile(
    r"(?<![\w.])([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(%|°[CF]|[^\W\d_]+)?"
)
# Units that can be converted into one another: (family, scale to the family's base unit).
_UNITS: Final[dict[str, tuple[str, float]]] = {
    **{u: ("%", 1.0) for u in ("%", "pct", "percent")},
    **{u: ("s", 1e-9) for u in ("ns",)}, **{u: ("s", 1e-6) for u in ("us", "µs")},
    "ms": ("s", 1e-3), **{u: ("s", 1.0) for u in ("s", "sec", "secs", "second", "seconds")},
    **{u: ("s", 60.0) for u in ("min", "mins", "minute", "minutes")},
    **{u: ("s", 3600.0) for u in ("h", "hr", "hrs", "hour", "hours")},
    **{u: ("B", 1.0) for u in ("b", "byte", "bytes")},
    "kb": ("B", 1e3), "mb": ("B", 1e6), "gb": ("B", 1e9), "tb": ("B", 1e12),
    "kib": ("B", 2.0**10), "mib": ("B", 2.0**20), "gib": ("B", 2.0**30), "tib": ("B", 2.0**40),
}  # fmt: skip


def describe_target(op: str, value: float, unit: str | None) -> str:
    """``("<", 120.0, "ms")`` -> ``"< 120 ms"``: the target text shown when the file gives none."""
    value = float(value)  # a hand-built spec may hold an int: no is_integer() on 3.11
    number = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return f"{op} {number}" + ("" if unit is None else unit if unit == "%" else f" {unit}")


def judge(criterion: CriterionSpec, actual: str | float | None) -> bool | None:
    """PASS (True) / FAIL (False) when the criterion is machine-checkable and ``actual`` holds a number.

    ``actual`` may be a number or text such as ``"97 ms"``, ``"0.42%"``, ``"P95 = 131 ms"`` or ``"56/57"``
    (the first number counts). A unit in the text is converted to the criterion's (``"0.2 s"`` against
    ``ms``); a unit that cannot be converted gives None, never a guessed verdict.
    """
    if criterion.op is None or criterion.value is None or actual is None or isinstance(actual, bool):
        return None
    unit: str | None = None
    if isinstance(actual, str):
        found = _NUMBER.search(actual)
        if found is None:
            return None
        number, unit = float(found[1].replace(",", "")), found[2]
    else:
        number = float(actual)
    if not math.isfinite(number):
        return None
    if unit is not None and criterion.unit is not None and unit.casefold() != criterion.unit.casefold():
        have, want = _UNITS.get(unit.casefold()), _UNITS.get(criterion.unit.casefold())
        # Two words neither of which is a known unit ("56 healthy" for "agents"): the number stands.
        if have is not None or want is not None:
            if have is None or want is None or have[0] != want[0]:
                return None  # "5 ms" against "agents", or seconds against bytes: cannot say
            number = number * have[1] / want[1]
    return compare(number, criterion.op, criterion.value)


def compare(actual: float, op: str, target: float) -> bool:
    # Unit conversion leaves float dust (0.1 s -> 100.00000000000001 ms): equal within 1e-9 is equal.
    close = math.isclose(actual, target, rel_tol=1e-9, abs_tol=1e-12)
    return {
        "<": actual < target and not close, "<=": actual < target or close,
        ">": actual > target and not close, ">=": actual > target or close,
        "==": close, "!=": not close,
    }[op]  # fmt: skip


def gate_decision(
    phase: PhaseSpec,
    milestone_status: Mapping[str, str],
    criteria_passed: Mapping[tuple[str, str], bool | None],
    actuals: Mapping[tuple[str, str], str] | None = None,
) -> Gate:
    """Decide the phase's gate from its required milestones' statuses and criteria verdicts.

    NO-GO when any required milestone failed or any of its criteria is False (a failing number outweighs
    a sign-off); GO when all passed; else PENDING, listing what is still open. Keys are milestone ids and
    (milestone id, criterion name); ``actuals`` (same keys) only makes the reasons quote the numbers.
    """
    wanted = set(phase.gate.requires) if phase.gate.requires is not None else None
    milestones = [m for m in phase.milestones if wanted is None or m.id in wanted]
    if not milestones:
        return Gate(decision="pending", reasons=("no milestones to judge: the gate needs a person",))
    failing: list[str] = []
    still_open: list[str] = []
    for milestone in milestones:
        status = milestone_status.get(milestone.id, "pending")
        verdicts = [criteria_passed.get((milestone.id, c.name)) for c in milestone.criteria]
        for criterion, verdict in zip(milestone.criteria, verdicts, strict=True):
            if verdict is False:
                actual = (actuals or {}).get((milestone.id, criterion.name)) or "failed"
                failing.append(f"{criterion.name}: {actual} (target {criterion.target})")
        if False in verdicts:
            continue
        if status == "failed":
            failing.append(f"{milestone.name}: failed")
        elif status != "passed":
            counted = f" ({verdicts.count(True)}/{len(verdicts)} criteria passed)" if verdicts else ""
            still_open.append(f"{milestone.name}: {status}{counted}")
    if failing:
        return Gate(decision="no-go", reasons=tuple(failing))
    if still_open:
        return Gate(decision="pending", reasons=tuple(still_open))
    return Gate(decision="go", reasons=(f"all {len(milestones)} required milestones passed",))


def phase_progress(milestone_statuses: Sequence[str]) -> float | None:
    """The fraction of a phase's milestones that passed; None for a phase without milestones."""
    if not milestone_statuses:
        return None
    return sum(status == "passed" for status in milestone_statuses) / len(milestone_statuses)


def agent_matches(phase: PhaseSpec, agent_name: str) -> bool:
    """Whether ``agent_name`` matches one of the phase's globs (case-sensitive on every platform)."""
    return any(fnmatchcase(agent_name, pattern) for pattern in phase.agents)
