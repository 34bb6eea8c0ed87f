"""The local store's schema: numbered migrations, tracked with ``PRAGMA user_version``.

Each migration is a list of single statements (not a script) because Python's ``executescript`` commits
any open transaction first; running the statements one by one keeps the whole upgrade inside the
``BEGIN IMMEDIATE`` transaction that also re-reads the version, so twenty processes opening a fresh store
at once apply it exactly once. A migration is never edited after release: add a new one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from backends.errors import BackendError

_TERMINAL_TASK = "('succeeded','failed','cancelled','rolled_back')"
#: the agents columns of schema 1-4, which the v5 rebuild copies (written out: a migration never changes)
_V1_AGENT_COLUMNS = (
    "id, name, kind, state, pid, supervisor_pid, workspace, command, restart_policy, health_url,"
    " exit_code, restarts, registered_at, started_at, last_heartbeat, heartbeats, progress, message,"
    " current_task, cpu_percent, rss_bytes, phase_id, labels, updated_at"
)

_V1: tuple[str, ...] = (
    """CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('process','reporting','actor')),
        state TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN
            ('starting','running','idle','paused','stopping','stopped','failed','unknown')),
        pid INTEGER,
        supervisor_pid INTEGER,
        workspace TEXT,
        command TEXT,                          -- JSON array of argv, NULL for reporting agents
        restart_policy TEXT NOT NULL DEFAULT 'no',
        health_url TEXT,
        exit_code INTEGER,
        restarts INTEGER NOT NULL DEFAULT 0,
        registered_at REAL NOT NULL,
        started_at REAL,
        last_heartbeat REAL,
        heartbeats INTEGER NOT NULL DEFAULT 0,  -- a count, so a lost heartbeat can be proven absent
        progress REAL,
        message TEXT,
        current_task TEXT,
        cpu_percent REAL,
        rss_bytes INTEGER,
        phase_id TEXT,                         -- no foreign key: agents may report before a plan exists
        labels TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        command TEXT NOT NULL CHECK (command IN ('pause','resume','stop')),
        created_at REAL NOT NULL,
        taken_at REAL,
        operator TEXT,
        reason TEXT,
        request_id TEXT
    )""",
    "CREATE INDEX commands_pending ON commands (agent_id, id) WHERE taken_at IS NULL",
    """CREATE TABLE phases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        ord INTEGER NOT NULL,
        due_at REAL,
        agents_globs TEXT NOT NULL DEFAULT '[]',
        gate_requires TEXT NOT NULL DEFAULT '[]',
        status_override TEXT,                  -- NULL: derived from milestones and agents
        started_at REAL,
        finished_at REAL
    )""",
    """CREATE TABLE milestones (
        id TEXT PRIMARY KEY,
        phase_id TEXT NOT NULL REFERENCES phases(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        ord INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','active','passed','failed')),
        updated_at REAL
    )""",
    "CREATE INDEX milestones_phase ON milestones (phase_id, ord)",
    """CREATE TABLE criteria (
        milestone_id TEXT NOT NULL REFERENCES milestones(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        ord INTEGER NOT NULL,
        target TEXT NOT NULL,
        op TEXT,
        value REAL,
        unit TEXT NOT NULL DEFAULT '',
        actual TEXT,
        updated_at REAL,
        PRIMARY KEY (milestone_id, name)
    )""",
    f"""CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{{}}',
        status TEXT NOT NULL CHECK (status IN ('queued','running','paused') OR status IN {_TERMINAL_TASK}),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        submitted_by TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT
    )""",
    "CREATE INDEX tasks_queue ON tasks (target, created_at) WHERE status = 'queued'",
    "CREATE INDEX tasks_created ON tasks (created_at)",
    # Unfinished tasks are always listed, however old: this keeps finding them from scanning every task.
    "CREATE INDEX tasks_open ON tasks (created_at) WHERE status IN ('queued', 'running', 'paused')",
    """CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        phase_id TEXT,
        automatic INTEGER NOT NULL DEFAULT 0,
        covers TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL DEFAULT '{}',
        git_refs TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX checkpoints_created ON checkpoints (created_at)",
    # AUTOINCREMENT (not a plain rowid) so a seq is never handed out twice, even after retention
    # deletes the newest rows' neighbours: the seq is the readers' resume cursor.
    """CREATE TABLE logs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('debug','info','warning','error','critical')),
        source TEXT NOT NULL,
        message TEXT NOT NULL,
        fields TEXT
    )""",
    "CREATE INDEX logs_ts ON logs (ts)",
    "CREATE INDEX logs_source ON logs (source, seq)",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        params TEXT NOT NULL DEFAULT '{}',
        reason TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok','denied','failed')),
        detail TEXT,
        request_id TEXT
    )""",
)

# Health counts each agent's error lines of the last minute at every snapshot. Over logs_ts that query
# checked the level of every line of the minute (120,000 at 2,000 lines a second), and SQLite's planner,
# wanting source order for the GROUP BY, scanned the whole table through logs_source instead: 40 ms and
# more per snapshot on a busy node. This index holds only error lines, in the order the query groups by.
_V2: tuple[str, ...] = ("CREATE INDEX logs_errors ON logs (source, ts) WHERE level IN ('error', 'critical')",)

# KPIs: each agent's latest figure per KPI (what a snapshot shows), and every point kept for trends,
# judging over a window and report cards. No foreign key to agents: history outlives an agent's removal.
# kpi_points_series serves "these KPIs of these agents since T"; kpi_points_at serves retention by age.
_V3: tuple[str, ...] = (
    """CREATE TABLE kpi_latest (
        agent_id TEXT NOT NULL,
        name TEXT NOT NULL,
        unit TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('gauge','counter')),
        value REAL NOT NULL,
        at REAL NOT NULL,
        rate_per_s REAL,
        PRIMARY KEY (agent_id, name)
    ) WITHOUT ROWID""",
    """CREATE TABLE kpi_points (
        id INTEGER PRIMARY KEY,
        agent_id TEXT NOT NULL,
        name TEXT NOT NULL,
        at REAL NOT NULL,
        value REAL NOT NULL
    )""",
    "CREATE INDEX kpi_points_series ON kpi_points (name, agent_id, at)",
    "CREATE INDEX kpi_points_at ON kpi_points (at)",
)

# Plans judged from live figures: a criterion's KPI binding (JSON: kpi, aggregate, over_s, agents), a
# gate's own spec (JSON: the criteria that decide it and its no-go triggers), operators' sign-offs, and
# the verdict each criterion and gate last had with since when (the compare-and-set that records each
# change once, whoever reads the plan). No foreign keys: history survives re-applying the plan.
_V4: tuple[str, ...] = (
    "ALTER TABLE criteria ADD COLUMN binding TEXT",
    "ALTER TABLE phases ADD COLUMN gate_spec TEXT NOT NULL DEFAULT '{}'",
    """CREATE TABLE gate_signoffs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        phase_id TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('go','no-go')),
        operator TEXT NOT NULL,
        at REAL NOT NULL,
        reason TEXT
    )""",
    "CREATE INDEX gate_signoffs_phase ON gate_signoffs (phase_id, id)",
    """CREATE TABLE verdicts (
        subject TEXT PRIMARY KEY,              -- 'criterion:MILESTONE/NAME' or 'gate:PHASE'
        verdict TEXT NOT NULL,                 -- pass | fail | none; go | no-go | pending
        since REAL NOT NULL,
        reason TEXT
    ) WITHOUT ROWID""",
)

# The "waiting" state (alive, blocked on a human) and when each agent's state last changed. SQLite cannot
# alter a CHECK, so the agents table is rebuilt as SQLite's documented 12-step procedure does it: create,
# copy, drop, rename, inside the migration's one transaction, while :func:`migrate` holds foreign keys off
# (a DROP with them on would cascade into commands) and runs ``foreign_key_check`` before it commits.
# state_since is NULL for the copied rows: when their state last changed was never recorded. agents had
# no index of its own to recreate; commands keep pointing at it by name.
_V5: tuple[str, ...] = (
    """CREATE TABLE agents_v5 (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('process','reporting','actor')),
        state TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN
            ('starting','running','idle','waiting','paused','stopping','stopped','failed','unknown')),
        pid INTEGER,
        supervisor_pid INTEGER,
        workspace TEXT,
        command TEXT,
        restart_policy TEXT NOT NULL DEFAULT 'no',
        health_url TEXT,
        exit_code INTEGER,
        restarts INTEGER NOT NULL DEFAULT 0,
        registered_at REAL NOT NULL,
        started_at REAL,
        last_heartbeat REAL,
        heartbeats INTEGER NOT NULL DEFAULT 0,
        progress REAL,
        message TEXT,
        current_task TEXT,
        cpu_percent REAL,
        rss_bytes INTEGER,
        phase_id TEXT,
        labels TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL,
        state_since REAL
    )""",
    f"INSERT INTO agents_v5 ({_V1_AGENT_COLUMNS}) SELECT {_V1_AGENT_COLUMNS} FROM agents",
    "DROP TABLE agents",
    "ALTER TABLE agents_v5 RENAME TO agents",
)

#: the agents columns of schema 5, which the v6 rebuild copies
_V5_AGENT_COLUMNS = f"{_V1_AGENT_COLUMNS}, state_since"

# Agents known only from their OpenTelemetry (kind "otel": the OTLP receiver registers them). The same
# rebuild as v5, for the kind's CHECK this time.
_V6: tuple[str, ...] = (
    """CREATE TABLE agents_v6 (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('process','reporting','actor','otel')),
        state TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN
            ('starting','running','idle','waiting','paused','stopping','stopped','failed','unknown')),
        pid INTEGER,
        supervisor_pid INTEGER,
        workspace TEXT,
        command TEXT,
        restart_policy TEXT NOT NULL DEFAULT 'no',
        health_url TEXT,
        exit_code INTEGER,
        restarts INTEGER NOT NULL DEFAULT 0,
        registered_at REAL NOT NULL,
        started_at REAL,
        last_heartbeat REAL,
        heartbeats INTEGER NOT NULL DEFAULT 0,
        progress REAL,
        message TEXT,
        current_task TEXT,
        cpu_percent REAL,
        rss_bytes INTEGER,
        phase_id TEXT,
        labels TEXT NOT NULL DEFAULT '{}',
        updated_at REAL NOT NULL,
        state_since REAL
    )""",
    f"INSERT INTO agents_v6 ({_V5_AGENT_COLUMNS}) SELECT {_V5_AGENT_COLUMNS} FROM agents",
    "DROP TABLE agents",
    "ALTER TABLE agents_v6 RENAME TO agents",
)

#: migration N (1-based) brings a store from user_version N-1 to N
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION = len(MIGRATIONS)

_OUR_TABLES = frozenset(
    (
        "agents",
        "commands",
        "phases",
        "milestones",
        "criteria",
        "tasks",
        "checkpoints",
        "logs",
        "audit",
        "kpi_latest",
        "kpi_points",
        "gate_signoffs",
        "verdicts",
    )
)


class StoreError(BackendError):
    """The store cannot be opened or used; the message names the file and what to do about it.

    A ``BackendError`` so the console and CLI show it as one line like every other node failure.
    """


def newer_schema_message(path: Path, found: int) -> str:
    return (
        f"the store {path} was written by a newer fleetdeck (schema {found}, this one knows "
        f"{SCHEMA_VERSION}); upgrade fleetdeck or use another --state-dir"
    )


def corrupt_message(path: Path, problem: str) -> str:
    return (
        f"the store {path} is not a readable fleetdeck database ({problem}); it was left untouched: "
        f"move it aside or use another --state-dir"
    )


def refuse_unusable(conn: sqlite3.Connection, path: Path) -> None:
    """Read-only checks, made before anything (even switching to WAL) could write to the file."""
    found = _user_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(newer_schema_message(path, found))
    if found == 0:
        _refuse_foreign(conn, path)


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the store to SCHEMA_VERSION; return the version found before. Call outside a transaction.

    Raises StoreError for a newer schema or a foreign database and never writes in those cases.
    """
    found = _user_version(conn)
    if found > SCHEMA_VERSION:
        raise StoreError(newer_schema_message(path, found))
    if found == SCHEMA_VERSION:
        return found
    # A table rebuild (v5, v6) drops a table others point at: with foreign keys on, that drop would cascade.
    # The pragma is a no-op inside a transaction, so it is switched here and checked before the commit.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        _migrate_locked(conn, path)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return found


def _migrate_locked(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated while we waited.
        found = _user_version(conn)
        if found > SCHEMA_VERSION:
            raise StoreError(newer_schema_message(path, found))
        if found == 0:
            _refuse_foreign(conn, path)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise StoreError(
                f"the store {path} could not be upgraded: {len(broken)} rows would point at nothing "
                f"(first in table {broken[0][0]}); it was left as it was"
            )
        # PRAGMA takes no bound parameters; the value is our own integer.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Run SQLite's structural check; StoreError naming the first problem if the file is damaged."""
    try:
        rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(corrupt_message(path, str(exc))) from None
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        raise StoreError(corrupt_message(path, "; ".join(problems)))


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """An SQLite file with someone else's tables is not ours to add tables to."""
    names = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    foreign = sorted(name for name in names - _OUR_TABLES if not name.startswith("sqlite_"))
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise StoreError(
            f"the store {path} is an SQLite database of some other program (tables: {shown}); "
            f"it was left untouched: use another --state-dir"
        )
