"""Agents and their command queue, as SQL over one open transaction (the Store supplies it).

Each function takes the connection and ``now`` so the Store decides the transaction and the clock.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import get_args

from backends.errors import Conflict, Invalid, NotFound
from backends.model import AgentKind, AgentState

from .store_db import dumps
from .store_health import AGENT_SELECT, LIVE_STATES, AgentRecord, record_from_row

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
AGENT_KINDS: tuple[str, ...] = get_args(AgentKind)
AGENT_STATES: tuple[str, ...] = get_args(AgentState)
RESTART_POLICIES = ("no", "on-failure", "always")
COMMANDS = ("pause", "resume", "stop")
_GONE_STATES = ("stopped", "failed")
COMMAND_HISTORY_S = 86400.0
_KNOWN_SHOWN = 10


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Invalid(f"agent name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def not_found(what: str, ident: str, known: Sequence[str], *, plural: str | None = None) -> NotFound:
    """'no agent 'x' on this node (known: a, b, c)': the ids an operator might have meant."""
    if not known:
        return NotFound(f"no {what} {ident!r} on this node (there are no {plural or what + 's'})")
    shown = ", ".join(known[:_KNOWN_SHOWN])
    more = f" and {len(known) - _KNOWN_SHOWN} more" if len(known) > _KNOWN_SHOWN else ""
    return NotFound(f"no {what} {ident!r} on this node (known: {shown}{more})")


def known_ids(conn: sqlite3.Connection, table: str, column: str = "id") -> list[str]:
    # Table and column names come from this package, never from a caller.
    rows = conn.execute(f"SELECT {column} FROM {table} ORDER BY {column} LIMIT ?", (_KNOWN_SHOWN + 1,))
    return [str(row[0]) for row in rows]


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise Invalid(f"{what} {value!r} is not one of {', '.join(choices)}")


def _check_report(progress: float | None, cpu_percent: float | None, rss_bytes: int | None) -> None:
    if progress is not None and not 0.0 <= progress <= 1.0:
        raise Invalid(f"progress {progress} is outside 0-1 (report a fraction, e.g. 0.4 for 40%)")
    if cpu_percent is not None and cpu_percent < 0:
        raise Invalid(f"cpu_percent {cpu_percent} is negative")
    if rss_bytes is not None and rss_bytes < 0:
        raise Invalid(f"rss_bytes {rss_bytes} is negative")


def get(conn: sqlite3.Connection, agent_id: str) -> AgentRecord:
    row = conn.execute(f"{AGENT_SELECT} WHERE id = ?", (agent_id,)).fetchone()
    if row is None:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))
    return record_from_row(row)


def require(conn: sqlite3.Connection, agent_id: str) -> None:
    """NotFound naming the known agents unless ``agent_id`` is one (what a heartbeat answers)."""
    if conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone() is None:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))


def all_records(conn: sqlite3.Connection) -> list[AgentRecord]:
    return [record_from_row(row) for row in conn.execute(f"{AGENT_SELECT} ORDER BY id")]


def error_counts(conn: sqlite3.Connection, since: float) -> dict[str, int]:
    """Errors per source since ``since``: error and critical log lines, a traceback counted once (its later
    lines carry ``traceback=continued``, see loglines.OutputParser).

    Served by the partial index logs_errors (schema v2), which SQLite uses only while this WHERE clause
    names the levels exactly as the index does."""
    rows = conn.execute(
        "SELECT source, COUNT(*) FROM logs WHERE ts >= ? AND level IN ('error', 'critical')"
        " AND (fields IS NULL OR NOT json_valid(fields)"
        "      OR json_extract(fields, '$.traceback') IS NOT 'continued')"
        " GROUP BY source",
        (since,),
    )
    return {str(source): int(count) for source, count in rows}


def register(
    conn: sqlite3.Connection,
    now: float,
    name: str,
    *,
    kind: str,
    state: str,
    pid: int | None,
    supervisor_pid: int | None,
    workspace: str | None,
    command: Sequence[str] | None,
    labels: Mapping[str, str] | None,
    phase_id: str | None,
    restart: str | None,
    health_url: str | None,
    pid_alive: Callable[[int], bool],
) -> AgentRecord:
    """Insert a new agent, or start a new incarnation of a known one (keeping restarts and history).

    On re-registration pid and supervisor_pid describe the new incarnation and are replaced; the other
    optional fields keep their stored value when not given.
    """
    validate_name(name)
    _check_choice("agent kind", kind, AGENT_KINDS)
    _check_choice("agent state", state, AGENT_STATES)
    if restart is not None:
        _check_choice("restart policy", restart, RESTART_POLICIES)
    old = conn.execute("SELECT state, supervisor_pid FROM agents WHERE id = ?", (name,)).fetchone()
    command_json = dumps(list(command)) if command is not None else None
    labels_json = dumps(dict(labels)) if labels is not None else None
    if old is None:
        conn.execute(
            """INSERT INTO agents (id, name, kind, state, pid, supervisor_pid, workspace, command,
                   restart_policy, health_url, registered_at, started_at, phase_id, labels, updated_at,
                   state_since)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                name,
                name,
                kind,
                state,
                pid,
                supervisor_pid,
                workspace,
                command_json,
                restart or "no",
                health_url,
                now,
                now,
                phase_id,
                labels_json or "{}",
                now,
                now,
            ),
        )
    else:
        holder = old["supervisor_pid"]
        if (
            old["state"] in LIVE_STATES
            and holder is not None
            and holder != supervisor_pid
            and pid_alive(holder)
        ):
            raise Conflict(
                f"agent {name!r} is already {old['state']} under supervisor pid {holder}; "
                f"stop it first or pick another name"
            )
        conn.execute(
            """UPDATE agents SET state_since = CASE WHEN state IS ? THEN state_since ELSE ? END,
                   kind = ?, state = ?, pid = ?, supervisor_pid = ?,
                   workspace = COALESCE(?, workspace), command = COALESCE(?, command),
                   restart_policy = COALESCE(?, restart_policy), health_url = COALESCE(?, health_url),
                   phase_id = COALESCE(?, phase_id), labels = COALESCE(?, labels),
                   exit_code = NULL, started_at = ?, updated_at = ?
               WHERE id = ?""",
            (
                state,
                now,
                kind,
                state,
                pid,
                supervisor_pid,
                workspace,
                command_json,
                restart,
                health_url,
                phase_id,
                labels_json,
                now,
                now,
                name,
            ),
        )
    return get(conn, name)


def heartbeat(
    conn: sqlite3.Connection,
    now: float,
    agent_id: str,
    *,
    state: str | None,
    progress: float | None,
    message: str | None,
    current_task: str | None,
    pid: int | None,
    cpu_percent: float | None,
    rss_bytes: int | None,
) -> None:
    """Record that the agent is alive; a field left None keeps its last reported value."""
    if state is not None:
        _check_choice("agent state", state, AGENT_STATES)
    _check_report(progress, cpu_percent, rss_bytes)
    # SET expressions read the row as it was, so state_since compares the old state with the new one
    new_state = "COALESCE(?, CASE WHEN state IN ('starting', 'unknown') THEN 'running' ELSE state END)"
    cursor = conn.execute(
        f"""UPDATE agents SET last_heartbeat = ?, heartbeats = heartbeats + 1, updated_at = ?,
               state_since = CASE WHEN state IS {new_state} THEN state_since ELSE ? END,
               -- a first heartbeat is the proof that a starting agent runs
               state = {new_state},
               progress = COALESCE(?, progress), message = COALESCE(?, message),
               current_task = COALESCE(?, current_task), pid = COALESCE(?, pid),
               cpu_percent = COALESCE(?, cpu_percent), rss_bytes = COALESCE(?, rss_bytes)
           WHERE id = ?""",
        (now, now, state, now, state, progress, message, current_task, pid, cpu_percent, rss_bytes, agent_id),
    )
    if cursor.rowcount == 0:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))
    # The first sign of life of an agent assigned to a phase is when that phase started.
    conn.execute(
        """UPDATE phases SET started_at = ? WHERE started_at IS NULL
               AND id = (SELECT phase_id FROM agents WHERE id = ?)""",
        (now, agent_id),
    )


def set_state(
    conn: sqlite3.Connection,
    now: float,
    agent_id: str,
    state: str,
    *,
    exit_code: int | None,
    message: str | None,
    restarts_increment: bool,
    pid: int | None,
) -> AgentRecord:
    """Move an agent to ``state`` (supervisor or operator); a gone process loses its pid and usage."""
    _check_choice("agent state", state, AGENT_STATES)
    # a restart after an exit starts with no process: its pid and usage are the dead one's
    gone = state in _GONE_STATES or (state == "starting" and exit_code is not None)
    cursor = conn.execute(
        """UPDATE agents SET state_since = CASE WHEN state IS ? THEN state_since ELSE ? END, state = ?,
               exit_code = CASE WHEN ? IS NOT NULL THEN ? WHEN ? IN ('starting', 'running') THEN NULL
                                ELSE exit_code END,
               message = COALESCE(?, message),
               restarts = restarts + ?,
               started_at = CASE WHEN ? = 'starting' THEN ? ELSE started_at END,
               pid = CASE WHEN ? THEN NULL ELSE COALESCE(?, pid) END,
               cpu_percent = CASE WHEN ? THEN NULL ELSE cpu_percent END,
               rss_bytes = CASE WHEN ? THEN NULL ELSE rss_bytes END,
               updated_at = ?
           WHERE id = ?""",
        (
            state,
            now,
            state,
            exit_code,
            exit_code,
            state,
            message,
            int(restarts_increment),
            state,
            now,
            gone,
            pid,
            gone,
            gone,
            now,
            agent_id,
        ),
    )
    if cursor.rowcount == 0:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))
    return get(conn, agent_id)


def remove(conn: sqlite3.Connection, agent_id: str) -> None:
    if conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,)).rowcount == 0:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))


def enqueue_command(
    conn: sqlite3.Connection,
    now: float,
    agent_id: str,
    command: str,
    *,
    operator: str | None,
    reason: str | None,
    request_id: str | None,
) -> int:
    _check_choice("command", command, COMMANDS)
    if conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone() is None:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))
    cursor = conn.execute(
        "INSERT INTO commands (agent_id, command, created_at, operator, reason, request_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (agent_id, command, now, operator, reason, request_id),
    )
    return int(cursor.lastrowid or 0)


def has_pending_commands(conn: sqlite3.Connection, agent_id: str) -> bool:
    """Whether the agent has untaken commands (NotFound for an unknown agent, as take_commands)."""
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM agents WHERE id = ?),
                  EXISTS (SELECT 1 FROM commands WHERE agent_id = ? AND taken_at IS NULL)""",
        (agent_id, agent_id),
    ).fetchone()
    if not row[0]:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))
    return bool(row[1])


def take_commands(conn: sqlite3.Connection, now: float, agent_id: str) -> list[tuple[int, str]]:
    """The agent's untaken commands, oldest first, marked taken in the same write transaction."""
    if conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone() is None:
        raise not_found("agent", agent_id, known_ids(conn, "agents"))
    rows = conn.execute(
        "SELECT id, command FROM commands WHERE agent_id = ? AND taken_at IS NULL ORDER BY id", (agent_id,)
    ).fetchall()
    if rows:
        conn.execute(
            "UPDATE commands SET taken_at = ? WHERE agent_id = ? AND taken_at IS NULL AND id <= ?",
            (now, agent_id, rows[-1]["id"]),
        )
    forget_taken_commands(conn, now, agent_id)
    return [(int(row["id"]), str(row["command"])) for row in rows]


def forget_taken_commands(conn: sqlite3.Connection, now: float, agent_id: str | None = None) -> None:
    """Taken commands are history only a day long: the audit trail is where actions are remembered.
    Done when an agent takes commands, and for every agent with the store's log retention."""
    if agent_id is None:
        conn.execute("DELETE FROM commands WHERE taken_at < ?", (now - COMMAND_HISTORY_S,))
    else:
        conn.execute(
            "DELETE FROM commands WHERE agent_id = ? AND taken_at < ?", (agent_id, now - COMMAND_HISTORY_S)
        )
