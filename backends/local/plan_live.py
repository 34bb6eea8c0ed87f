"""The plan as of now: bound criteria and no-go triggers judged from the KPI window, sign-offs and the
verdict history read, all inside the caller's read transaction, then phases built from them."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Hashable, Mapping, Sequence

from backends.model import GateSignoff, Phase

from . import gate_triggers
from .plan_judge import Binding, FigureCache, judge_all
from .store_db import loads
from .store_health import AgentRecord
from .store_phases import Live, build_phases
from .store_plan import PlanRows


def read_phases(
    conn: sqlite3.Connection,
    now: float,
    rows: PlanRows,
    records: Sequence[AgentRecord],
    assignment: Mapping[str, str | None],
    figures_cache: FigureCache | None = None,
) -> list[Phase]:
    """The phases as of ``now``; ``figures_cache`` (the Store's) keeps bound figures between reads."""
    members: dict[str, list[AgentRecord]] = {}
    for record in records:
        phase_id = assignment.get(record.id)
        if phase_id is not None:
            members.setdefault(phase_id, []).append(record)
    bindings: dict[Hashable, Binding] = {}
    scopes: dict[Hashable, Collection[str] | None] = {}
    triggers: dict[str, list[dict[str, object]]] = {}
    for phase in rows.phases:
        phase_id = str(phase["id"])
        scope = _default_scope(phase, members.get(phase_id, []))
        for milestone in rows.milestones.get(phase_id, []):
            for c in rows.criteria.get(str(milestone["id"]), []):
                if c["binding"] is None:
                    continue
                binding = Binding.from_row(loads(c["binding"], {}), c["op"], c["value"], c["unit"])
                if binding is not None:
                    key = (str(milestone["id"]), str(c["name"]))
                    bindings[key], scopes[key] = binding, scope
        for spec in loads(phase["gate_spec"], {}).get("no_go", []):
            triggers.setdefault(phase_id, []).append(spec)
            binding = gate_triggers.binding_of(spec)
            if binding is not None:
                trigger_key = ("no-go", phase_id, str(spec["name"]))
                bindings[trigger_key], scopes[trigger_key] = binding, scope
    labels = {r.id: r.labels for r in records}
    figures = judge_all(conn, now, bindings, scopes, labels, figures_cache)
    fired = {
        phase_id: [
            gate_triggers.judge(
                conn,
                now,
                spec,
                members.get(phase_id, []),
                figures.get(("no-go", phase_id, str(spec["name"]))),
            )
            for spec in specs
        ]
        for phase_id, specs in triggers.items()
    }
    live = Live(
        now=now,
        figures={k: v for k, v in figures.items() if isinstance(k, tuple) and len(k) == 2},
        fired=fired,
        signoffs=latest_signoffs(conn),
        verdicts={
            str(r[0]): (str(r[1]), float(r[2]))
            for r in conn.execute("SELECT subject, verdict, since FROM verdicts")
        },
    )
    return build_phases(rows, records, assignment, live)


def _default_scope(phase: sqlite3.Row, members: Sequence[AgentRecord]) -> Collection[str] | None:
    """A bound figure with no label match of its own looks at the phase's agents; a phase that names no
    agents (no globs) and has none looks at every agent of the node."""
    if members or loads(phase["agents_globs"], []):
        return {r.id for r in members}
    return None


def latest_signoffs(conn: sqlite3.Connection, phase_id: str | None = None) -> dict[str, GateSignoff]:
    """Each phase's latest sign-off (or only ``phase_id``'s)."""
    query = (
        "SELECT phase_id, decision, operator, at, reason FROM gate_signoffs"
        " WHERE id IN (SELECT max(id) FROM gate_signoffs GROUP BY phase_id)"
    )
    params: tuple[str, ...] = ()
    if phase_id is not None:
        query += " AND phase_id = ?"
        params = (phase_id,)
    return {
        str(r[0]): GateSignoff(decision=r[1], operator=r[2], at=r[3], reason=r[4])
        for r in conn.execute(query, params)
    }
