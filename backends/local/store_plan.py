"""The plan in the store: phases, milestones and success criteria, their statuses, progress and gates.

The plan's shape comes from a file (ids are identity, so re-applying it updates names and targets but keeps
what was achieved); statuses and actual values come from agents and operators. Progress, phase status
(unless an operator set one) and the go/no-go gate are derived when read, so they can never disagree with
the milestones they summarise.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, get_args

from backends.errors import Conflict, Invalid
from backends.model import Criterion, Milestone, MilestoneStatus, PhaseStatus

from . import planfile
from .planfile import OPS, CriterionSpec
from .store_agents import known_ids, not_found
from .store_db import dumps, loads

MILESTONE_STATUSES: tuple[str, ...] = get_args(MilestoneStatus)
PHASE_STATUSES: tuple[str, ...] = get_args(PhaseStatus)


@dataclass(frozen=True, slots=True)
class PlanCriterion:
    """``name`` is its identity within the milestone; ``target`` defaults to "<op> <value> <unit>"."""

    name: str
    target: str | None = None
    op: str | None = None
    value: float | None = None
    unit: str = ""
    kpi: str | None = None  # bound to this KPI: its actual and verdict come live from the figures
    over_s: float | None = None
    agents: Mapping[str, str] | None = None  # label match; None: the phase's agents
    aggregate: str | None = None

    def binding(self) -> dict[str, Any] | None:
        if self.kpi is None:
            return None
        agents = dict(self.agents) if self.agents else None
        return {"kpi": self.kpi, "over_s": self.over_s, "agents": agents, "aggregate": self.aggregate}


@dataclass(frozen=True, slots=True)
class PlanMilestone:
    id: str
    name: str
    criteria: Sequence[PlanCriterion] = ()


@dataclass(frozen=True, slots=True)
class PlanPhase:
    id: str
    name: str
    order: int
    due_at: float | None = None
    agents_globs: Sequence[str] = ()  # agents without an explicit phase join the first phase that matches
    milestones: Sequence[PlanMilestone] = ()
    gate_requires: Sequence[str] = ()  # milestone ids the gate needs passed; empty: all of them
    gate_criteria: Sequence[tuple[str, str]] = ()  # (milestone id, name) deciding the gate; empty: milestones
    # no-go triggers: {name, kind (crash_looping | agent_failed | kpi), restarts, over_s, and for a kpi
    # trigger kpi, op, value, unit, target, agents, aggregate}
    gate_no_go: Sequence[Mapping[str, Any]] = ()

    def gate_spec(self) -> dict[str, Any]:
        return {
            "criteria": [list(ref) for ref in self.gate_criteria],
            "no_go": [dict(t) for t in self.gate_no_go],
        }


def with_unit(number: float, unit: str) -> str:
    text = f"{number:g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit.startswith("%") else f"{text} {unit}"


def judge(op: str | None, value: float | None, actual: str | None, unit: str | None = None) -> bool | None:
    """Whether ``actual`` meets ``op value unit``; None when there is nothing numeric to compare.

    The plan file's judge does the reading (units converted, "P95 = 131 ms" read as 131), so a criterion
    is judged the same way whether it came from a file or straight from the store."""
    if op is None or value is None:
        return None
    return planfile.judge(CriterionSpec(name="-", op=op, value=value, unit=unit or None), actual)  # type: ignore[arg-type]


# --- writing -------------------------------------------------------------------------------------------


def _validate(phases: Sequence[PlanPhase]) -> None:
    phase_ids: set[str] = set()
    milestone_ids: set[str] = set()
    for phase in phases:
        _check_id("phase", phase.id)
        if phase.id in phase_ids:
            raise Invalid(f"phase id {phase.id!r} appears twice in the plan")
        phase_ids.add(phase.id)
        own: set[str] = set()
        for milestone in phase.milestones:
            _check_id("milestone", milestone.id)
            if milestone.id in milestone_ids:
                raise Invalid(f"milestone id {milestone.id!r} appears twice in the plan")
            milestone_ids.add(milestone.id)
            own.add(milestone.id)
            names: set[str] = set()
            for criterion in milestone.criteria:
                if criterion.name in names:
                    raise Invalid(f"criterion {criterion.name!r} appears twice in milestone {milestone.id!r}")
                names.add(criterion.name)
                if criterion.op is not None and criterion.op not in OPS:
                    raise Invalid(
                        f"criterion {criterion.name!r}: op {criterion.op!r} is not one of {' '.join(OPS)}"
                    )
                if criterion.target is None and (criterion.op is None or criterion.value is None):
                    raise Invalid(f"criterion {criterion.name!r} has neither a target nor an op and value")
        criteria = {(m.id, c.name) for m in phase.milestones for c in m.criteria}
        strangers = [f"{m}/{n}" for m, n in phase.gate_criteria if (m, n) not in criteria]
        if strangers:
            raise Invalid(f"phase {phase.id!r}: its gate names {', '.join(strangers)}, not criteria of it")
        unknown = [ident for ident in phase.gate_requires if ident not in own]
        if unknown:
            raise Invalid(
                f"phase {phase.id!r}: its gate requires {', '.join(unknown)}, "
                f"which are not milestones of this phase"
            )


def _check_id(what: str, ident: str) -> None:
    if not isinstance(ident, str) or not 1 <= len(ident) <= 200:
        raise Invalid(f"{what} id {ident!r} must be 1-200 characters")


def _delete_missing(conn: sqlite3.Connection, table: str, keep: Sequence[str]) -> None:
    existing = [str(row[0]) for row in conn.execute(f"SELECT id FROM {table}")]
    wanted = set(keep)
    conn.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in existing if i not in wanted])


def apply(conn: sqlite3.Connection, now: float, phases: Sequence[PlanPhase]) -> None:
    """Make the stored plan's shape match ``phases``; statuses, actuals and times are kept."""
    _validate(phases)
    _delete_missing(conn, "phases", [p.id for p in phases])
    _delete_missing(conn, "milestones", [m.id for p in phases for m in p.milestones])
    for phase in phases:
        conn.execute(
            """INSERT INTO phases (id, name, ord, due_at, agents_globs, gate_requires, gate_spec)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET name = excluded.name, ord = excluded.ord,
                   due_at = excluded.due_at, agents_globs = excluded.agents_globs,
                   gate_requires = excluded.gate_requires, gate_spec = excluded.gate_spec""",
            (
                phase.id,
                phase.name,
                phase.order,
                phase.due_at,
                dumps(list(phase.agents_globs)),
                dumps(list(phase.gate_requires)),
                dumps(phase.gate_spec()),
            ),
        )
        for m_order, milestone in enumerate(phase.milestones):
            conn.execute(
                """INSERT INTO milestones (id, phase_id, name, ord) VALUES (?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET phase_id = excluded.phase_id, name = excluded.name,
                       ord = excluded.ord""",
                (milestone.id, phase.id, milestone.name, m_order),
            )
            names = {c.name for c in milestone.criteria}
            stale = [
                str(row[0])
                for row in conn.execute("SELECT name FROM criteria WHERE milestone_id = ?", (milestone.id,))
                if row[0] not in names
            ]
            conn.executemany(
                "DELETE FROM criteria WHERE milestone_id = ? AND name = ?",
                [(milestone.id, name) for name in stale],
            )
            for c_order, c in enumerate(milestone.criteria):
                target = c.target or f"{c.op} {with_unit(c.value or 0.0, c.unit)}"
                binding = c.binding()
                conn.execute(
                    """INSERT INTO criteria (milestone_id, name, ord, target, op, value, unit, binding)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (milestone_id, name) DO UPDATE SET ord = excluded.ord,
                           target = excluded.target, op = excluded.op, value = excluded.value,
                           unit = excluded.unit, binding = excluded.binding,
                           actual = CASE WHEN excluded.binding IS NULL THEN actual END""",
                    (
                        milestone.id,
                        c.name,
                        c_order,
                        target,
                        c.op,
                        c.value,
                        c.unit,
                        None if binding is None else dumps(binding),
                    ),
                )
        refresh_times(conn, now, phase.id)


def set_milestone(
    conn: sqlite3.Connection,
    now: float,
    milestone_id: str,
    status: str | None,
    criteria: Mapping[str, str | float],
) -> str:
    """Record a milestone's status and criteria actuals; returns its phase id.

    Reporting actuals without a status starts a pending milestone (it is being worked on).
    """
    if status is not None and status not in MILESTONE_STATUSES:
        raise Invalid(f"milestone status {status!r} is not one of {', '.join(MILESTONE_STATUSES)}")
    row = conn.execute("SELECT phase_id, status FROM milestones WHERE id = ?", (milestone_id,)).fetchone()
    if row is None:
        raise not_found("milestone", milestone_id, known_ids(conn, "milestones"))
    known = conn.execute("SELECT name, unit, binding FROM criteria WHERE milestone_id = ?", (milestone_id,))
    units, bound = {}, {}
    for r in known:
        units[str(r["name"])] = str(r["unit"])
        if r["binding"] is not None:
            bound[str(r["name"])] = loads(r["binding"], {}).get("kpi")
    for name, actual in criteria.items():
        if name not in units:
            raise not_found(
                f"criterion in milestone {milestone_id!r} named", name, sorted(units), plural="criteria in it"
            )
        if name in bound:
            raise Invalid(
                f"criterion {name!r} of milestone {milestone_id!r} is bound to the KPI {bound[name]}: its "
                f"actual is read live from the figures agents report (report the KPI instead)"
            )
        text: str | None = actual if isinstance(actual, str) else with_unit(float(actual), units[name])
        if text is not None and not text.strip():
            text = None  # an empty actual clears it: the criterion is not measured again
        conn.execute(
            "UPDATE criteria SET actual = ?, updated_at = ? WHERE milestone_id = ? AND name = ?",
            (text, now, milestone_id, name),
        )
    if status == "passed":
        _refuse_unmeasured_pass(conn, milestone_id)
    if status is None and criteria and row["status"] == "pending":
        status = "active"
    if status is not None:
        conn.execute(
            "UPDATE milestones SET status = ?, updated_at = ? WHERE id = ?", (status, now, milestone_id)
        )
    refresh_times(conn, now, str(row["phase_id"]))
    return str(row["phase_id"])


def _refuse_unmeasured_pass(conn: sqlite3.Connection, milestone_id: str) -> None:
    """A milestone cannot pass while one of its criteria has no actual: the gate would open on nothing.

    Raised inside the write transaction, so the actuals reported with the refused verdict are not kept
    either: the report is taken whole or not at all.
    """
    rows = conn.execute(
        "SELECT name, actual FROM criteria WHERE milestone_id = ? AND binding IS NULL ORDER BY ord",
        (milestone_id,),
    ).fetchall()
    unmeasured = [str(r["name"]) for r in rows if r["actual"] is None]
    if unmeasured:
        raise Conflict(
            f"milestone {milestone_id!r} cannot pass: {len(unmeasured)} of its {len(rows)} criteria "
            f"{'is' if len(unmeasured) == 1 else 'are'} not measured ({', '.join(unmeasured)}); "
            "report an actual for each with the verdict"
        )


def shown_status(status: str, unmeasured: int) -> str:
    """A milestone stored as passed but holding unmeasured criteria (a criterion added by re-applying the
    plan, a checkpoint or a store from before passes were checked) is shown as still being worked on."""
    return "active" if status == "passed" and unmeasured else status


def set_phase_status(conn: sqlite3.Connection, now: float, phase_id: str, status: str | None) -> None:
    """Pin a phase's status (an operator's pause, block or sign-off); None returns it to derived."""
    if status is not None and status not in PHASE_STATUSES:
        raise Invalid(f"phase status {status!r} is not one of {', '.join(PHASE_STATUSES)}")
    if conn.execute("UPDATE phases SET status_override = ? WHERE id = ?", (status, phase_id)).rowcount == 0:
        raise not_found("phase", phase_id, known_ids(conn, "phases"))
    refresh_times(conn, now, phase_id)


def refresh_times(conn: sqlite3.Connection, now: float, phase_id: str) -> None:
    """Stamp started_at when work on a phase first shows, finished_at while it is done."""
    phase = conn.execute("SELECT status_override FROM phases WHERE id = ?", (phase_id,)).fetchone()
    if phase is None:
        return
    statuses = [
        shown_status(str(r[0]), int(r[1]))
        for r in conn.execute(
            """SELECT m.status, (SELECT count(*) FROM criteria c WHERE c.milestone_id = m.id
                                  AND c.actual IS NULL AND c.binding IS NULL)
               FROM milestones m WHERE m.phase_id = ?""",
            (phase_id,),
        )
    ]
    override = phase["status_override"]
    started = override in ("active", "done", "failed") or any(s != "pending" for s in statuses)
    done = override == "done" or (
        override is None and bool(statuses) and all(s == "passed" for s in statuses)
    )
    conn.execute(
        """UPDATE phases SET
               started_at = CASE WHEN ? THEN COALESCE(started_at, ?) ELSE started_at END,
               finished_at = CASE WHEN ? THEN COALESCE(finished_at, ?) ELSE NULL END
           WHERE id = ?""",
        (started, now, done, now, phase_id),
    )


# --- reading -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PlanRows:
    """The whole plan as three queries' worth of rows, grouped for building phases."""

    phases: list[Any] = field(default_factory=list)
    milestones: dict[str, list[Any]] = field(default_factory=dict)  # by phase id
    criteria: dict[str, list[Any]] = field(default_factory=dict)  # by milestone id


def read_rows(conn: sqlite3.Connection) -> PlanRows:
    rows = PlanRows(phases=conn.execute("SELECT * FROM phases ORDER BY ord, id").fetchall())
    for m in conn.execute("SELECT * FROM milestones ORDER BY phase_id, ord"):
        rows.milestones.setdefault(str(m["phase_id"]), []).append(m)
    for c in conn.execute("SELECT * FROM criteria ORDER BY milestone_id, ord"):
        rows.criteria.setdefault(str(c["milestone_id"]), []).append(c)
    return rows


def assign_phase(rows: PlanRows, agent_id: str, explicit: str | None) -> str | None:
    """An agent's phase: the one it reported, else the first (in plan order) whose globs match it."""
    if explicit is not None:
        return explicit
    for phase in rows.phases:
        if any(fnmatchcase(agent_id, glob) for glob in loads(phase["agents_globs"], [])):
            return str(phase["id"])
    return None


def criterion_subject(milestone_id: str, name: str) -> str:
    """The key of a criterion's verdict history (the verdicts table)."""
    return f"criterion:{milestone_id}/{name}"


def verdict_word(passed: bool | None) -> str:
    return "none" if passed is None else "pass" if passed else "fail"


def build_milestones(
    rows: PlanRows,
    phase_id: str,
    live: Mapping[tuple[str, str], Any] | None = None,
    since: Callable[[str, str], float | None] | None = None,
) -> tuple[Milestone, ...]:
    """``live`` holds each KPI-bound criterion's figure (plan_judge.Figure) by (milestone id, name);
    ``since(subject, verdict)`` says since when a verdict stands."""
    milestones = []
    for m in rows.milestones.get(phase_id, []):
        rows_of = rows.criteria.get(str(m["id"]), [])
        figures: list[tuple[str | None, bool | None, str | None]] = []  # actual, verdict, kpi
        for c in rows_of:
            if c["binding"] is not None:
                figure = (live or {}).get((str(m["id"]), str(c["name"])))
                kpi = loads(c["binding"], {}).get("kpi")
                figures.append((None, None, kpi) if figure is None else (figure.actual, figure.holds, kpi))
            else:
                figures.append((c["actual"], judge(c["op"], c["value"], c["actual"], c["unit"]), None))
        status = live_status(
            str(m["status"]),
            [actual for actual, _, _ in figures],
            [verdict if actual is not None else None for actual, verdict, _ in figures],
            all(c["op"] is not None and c["value"] is not None for c in rows_of) and bool(rows_of),
        )
        criteria = []
        for c, (actual, passed, kpi) in zip(rows_of, figures, strict=True):
            # A verdict on the milestone speaks for the criteria a number cannot judge, but only for
            # those that were measured: without an actual there is nothing it could have judged.
            if passed is None and actual is not None and kpi is None and status in ("passed", "failed"):
                passed = status == "passed"
            if actual is None:
                passed = None
            subject = criterion_subject(str(m["id"]), str(c["name"]))
            criteria.append(
                Criterion(
                    name=c["name"],
                    target=c["target"],
                    actual=actual,
                    passed=passed,
                    kpi=kpi,
                    since=since(subject, verdict_word(passed)) if since else None,
                )
            )
        milestones.append(
            Milestone(
                id=m["id"],
                name=m["name"],
                status=status,  # type: ignore[arg-type]
                criteria=tuple(criteria),
            )
        )
    return tuple(milestones)


def live_status(
    stored: str, actuals: Sequence[str | None], verdicts: Sequence[bool | None], judged: bool
) -> str:
    """A milestone whose every criterion a number judges (``judged``) passes when all of them hold, and
    stops reading passed when one no longer does; one with criteria a person judges keeps the status
    reported for it (store_plan.shown_status)."""
    if judged:
        if all(v is True for v in verdicts):
            return "passed"
        if stored == "passed":
            return "active"
        if stored == "pending" and any(a is not None for a in actuals):
            return "active"
        return stored
    return shown_status(stored, sum(a is None for a in actuals))
