"""No-go triggers: conditions that turn a gate NO-GO by themselves, whatever its criteria say.

Built-ins watch the phase's agents: ``crash_looping`` (an agent restarted ``restarts`` times, default 3,
within ``over_s``, default 10 min, counted from its supervisor's restart lines) and ``agent_failed`` (an
agent of the phase is failed). A ``kpi`` trigger fires while its KPI is over its line ("error rate > 1%"),
judged like a bound criterion (plan_judge); with no figures in its window it does not fire, and says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .plan_judge import Binding, Figure
from .plan_targets import describe_duration
from .planfile import DEFAULT_CRASH_OVER_S, DEFAULT_RESTARTS
from .store_health import AgentRecord, failure_reason

# what a supervisor logs (supervisor.py) each time it restarts its agent after a failure
_RESTART_LINE = "[fleetdeck] %; restarting in %"
_SHOWN = 3


@dataclass(frozen=True, slots=True)
class Fired:
    """One trigger as judged now: ``triggered`` None when it cannot tell (no figures)."""

    name: str
    triggered: bool | None
    detail: str

    @property
    def reason(self) -> str:
        """ "No-Go: any agent crash-looping — TRIGGERED (coder-03 restarted 6 times in 10 min)"."""
        word = "TRIGGERED" if self.triggered else "not measured" if self.triggered is None else "clear"
        return f"No-Go: {self.name} — {word} ({self.detail})"


def binding_of(spec: Mapping[str, Any]) -> Binding | None:
    """A ``kpi`` trigger's line as a Binding, for judging with the criteria in one window query."""
    if spec.get("kind") != "kpi":
        return None
    return Binding.from_row(spec, spec.get("op"), spec.get("value"), spec.get("unit"))


def judge(
    conn: sqlite3.Connection,
    now: float,
    spec: Mapping[str, Any],
    members: Sequence[AgentRecord],
    figure: Figure | None,
) -> Fired:
    name = str(spec["name"])
    kind = spec.get("kind")
    if kind == "agent_failed":
        failed = [r for r in members if r.state == "failed"]
        if not failed:
            return Fired(name, False, f"none of {len(members)} agents failed")
        shown = ", ".join(f"{r.id} {failure_reason(r)}" for r in failed[:_SHOWN])
        return Fired(name, True, shown + _more(failed))
    if kind == "crash_looping":
        return _crash_looping(conn, now, name, spec, members)
    if figure is None or figure.holds is None:
        return Fired(name, None, "no figures in its window" if figure is None or figure.actual is None else
                     f"{figure.actual}: cannot be compared with {spec.get('target')}")  # fmt: skip
    # the trigger's line is the bad side: "error rate > 1%" fires when the figure is over 1%
    return Fired(name, figure.holds, f"{figure.actual}, line {spec.get('target')}")


def _crash_looping(
    conn: sqlite3.Connection, now: float, name: str, spec: Mapping[str, Any], members: Sequence[AgentRecord]
) -> Fired:
    times = int(spec.get("restarts") or DEFAULT_RESTARTS)
    over_s = float(spec.get("over_s") or DEFAULT_CRASH_OVER_S)
    window = describe_duration(over_s)
    # An agent that never restarted that often in all its life cannot have done so in the window: only
    # those are looked up, so a calm fleet costs no log query at all.
    candidates = [r for r in members if r.restarts >= times]
    looping: list[tuple[str, int]] = []
    if candidates:
        first = conn.execute("SELECT min(seq) FROM logs WHERE ts >= ?", (now - over_s,)).fetchone()[0]
        for record in candidates:
            if first is None:
                break
            count = conn.execute(
                "SELECT count(*) FROM logs WHERE source = ? AND seq >= ? AND level = 'warning'"
                " AND message LIKE ?",
                (record.id, first, _RESTART_LINE),
            ).fetchone()[0]
            if count >= times:
                looping.append((record.id, int(count)))
    if not looping:
        return Fired(name, False, f"no agent restarted {times} times in {window}")
    shown = ", ".join(f"{agent} restarted {count} times in {window}" for agent, count in looping[:_SHOWN])
    return Fired(name, True, shown + _more(looping))


def _more(items: Sequence[object]) -> str:
    return f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
