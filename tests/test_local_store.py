"""The local store on real SQLite files: schema and refusals, locks, agents and health, commands, logs, audit.

The plan, tasks and checkpoints are in test_local_store_plan.py; the multi-process tests (concurrent
reporters, concurrent claims) in test_local_store_concurrency.py.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from backends.errors import Conflict, Invalid, NotFound
from backends.local import store_db
from backends.local.schema import MIGRATIONS, SCHEMA_VERSION
from backends.local.store import (
    AgentRecord,
    HealthThresholds,
    Store,
    StoreError,
    compute_health,
    default_state_dir,
)
from backends.local.store_telemetry import TelemetryWrite

T0 = 1_767_225_600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store(tmp_path / "node", clock=clock) as opened:
        yield opened


# --- schema and refusals -------------------------------------------------------------------------------


def test_migrations_create_the_schema_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "node") as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "node" / "fleetdeck.db")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "agents",
        "commands",
        "phases",
        "milestones",
        "criteria",
        "tasks",
        "checkpoints",
        "logs",
        "audit",
    } <= tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "node").stat().st_mode & 0o777 == 0o700


def _old_store(path: Path, version: int) -> sqlite3.Connection:
    """A store file exactly as a fleetdeck of schema ``version`` wrote it: its migrations, nothing later."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version:d}")
    return conn


_V1_AGENT = (
    "INSERT INTO agents (id, name, kind, state, registered_at, updated_at, message)"
    " VALUES (?, ?, 'reporting', ?, ?, ?, ?)"
)


def test_a_version_1_store_gets_the_error_index(tmp_path: Path) -> None:
    conn = _old_store(tmp_path / "fleetdeck.db", 1)
    conn.execute(_V1_AGENT, ("a1", "a1", "running", T0, T0, None))
    conn.close()
    with Store(tmp_path) as again:
        assert again._db.found_version == 1
        assert [a.id for a in again.agents()] == ["a1"]
    conn = sqlite3.connect(tmp_path / "fleetdeck.db")
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT source, COUNT(*) FROM logs"
        " WHERE ts >= 0 AND level IN ('error', 'critical') GROUP BY source"
    ).fetchall()
    conn.close()
    assert "logs_errors" in str(plan)


def test_a_version_4_store_keeps_its_agents_and_commands_and_learns_waiting(tmp_path: Path) -> None:
    path = tmp_path / "fleetdeck.db"
    conn = _old_store(path, 4)
    with pytest.raises(sqlite3.IntegrityError):  # what v5 is for: v4's CHECK refuses the state
        conn.execute(_V1_AGENT, ("w", "w", "waiting", T0, T0, None))
    for name, state in (("a1", "running"), ("a2", "paused"), ("a3", "failed")):
        conn.execute(_V1_AGENT, (name, name, state, T0, T0 + 1, f"{name} says hi"))
    conn.executemany(
        "INSERT INTO commands (agent_id, command, created_at) VALUES (?, ?, ?)",
        [("a1", "pause", T0), ("a2", "resume", T0), ("a2", "stop", T0 + 2)],
    )
    conn.close()
    clock = Clock(T0 + 10)
    with Store(tmp_path, clock=clock) as store:
        assert store._db.found_version == 4
        agents = {a.id: a for a in store.agents()}
        assert {i: (a.state, a.message, a.state_since) for i, a in agents.items()} == {
            "a1": ("running", "a1 says hi", None),
            "a2": ("paused", "a2 says hi", None),
            "a3": ("failed", "a3 says hi", None),
        }
        store.heartbeat("a1", state="waiting", message="permission to run Bash(rm -rf build)")
        waiting = {a.id: a for a in store.agents()}["a1"]
        assert (waiting.state, waiting.message, waiting.state_since) == (
            "waiting",
            "permission to run Bash(rm -rf build)",
            T0 + 10,
        )
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    rows = conn.execute("SELECT agent_id, command FROM commands ORDER BY id").fetchall()
    assert rows == [("a1", "pause"), ("a2", "resume"), ("a2", "stop")]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # the rebuilt table is still the one commands cascade from
    conn.execute("DELETE FROM agents WHERE id = 'a2'")
    assert conn.execute("SELECT agent_id FROM commands").fetchall() == [("a1",)]
    conn.close()


def test_a_version_5_store_keeps_its_agents_and_commands_and_learns_the_otel_kind(tmp_path: Path) -> None:
    path = tmp_path / "fleetdeck.db"
    conn = _old_store(path, 5)
    with pytest.raises(sqlite3.IntegrityError):  # what v6 is for: v5's CHECK refuses the kind
        conn.execute(
            "INSERT INTO agents (id, name, kind, registered_at, updated_at) VALUES ('o', 'o', 'otel', 0, 0)"
        )
    conn.execute(
        "INSERT INTO agents (id, name, kind, state, registered_at, updated_at, message, state_since)"
        " VALUES ('w', 'w', 'reporting', 'waiting', ?, ?, 'permission to run Bash(ls)', ?)",
        (T0, T0, T0 + 1),
    )
    conn.execute("INSERT INTO commands (agent_id, command, created_at) VALUES ('w', 'pause', ?)", (T0,))
    conn.close()
    with Store(tmp_path, clock=Clock(T0 + 10)) as store:
        assert store._db.found_version == 5
        (kept,) = store.agents()
        assert (kept.id, kept.state, kept.message, kept.state_since) == (
            "w",
            "waiting",
            "permission to run Bash(ls)",
            T0 + 1,
        )
        written = store.record_telemetry([TelemetryWrite("svc", {"source": "otel"})], max_agents=10)
        assert written.new == ("svc",)
        assert store.agent_record("svc").kind == "otel"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT agent_id, command FROM commands").fetchall() == [("w", "pause")]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_state_since_moves_only_when_the_state_changes(store: Store, clock: Clock) -> None:
    store.register_agent("a1", kind="reporting", state="running")
    clock.now = T0 + 5
    store.heartbeat("a1", state="running", message="busy")
    assert store.agents()[0].state_since == T0
    clock.now = T0 + 7
    store.heartbeat("a1", state="waiting", message="your answer")
    clock.now = T0 + 30
    store.heartbeat("a1", message="still your answer")
    agent = store.agents()[0]
    assert (agent.state, agent.state_since, agent.message) == ("waiting", T0 + 7, "still your answer")
    # a waiting agent that says nothing for long is not stale: the silence is the wait
    clock.now = T0 + 600
    assert store.agents()[0].health == "healthy"


def test_reopening_keeps_the_data_and_migrates_nothing(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.register_agent("a1", kind="reporting")
    with Store(tmp_path) as again:
        assert again._db.found_version == SCHEMA_VERSION
        assert [a.id for a in again.agents()] == ["a1"]


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path, journal: str) -> None:
    Store(tmp_path).close()
    path = tmp_path / "fleetdeck.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")  # a rollback-journal file must not be switched to WAL
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(tmp_path)
    assert f"newer fleetdeck (schema {SCHEMA_VERSION + 1}, this one knows {SCHEMA_VERSION})" in str(
        info.value
    )
    assert "--state-dir" in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "content", [b"not a database at all\n" * 50, b"SQLite format 3\x00" + b"\x07" * 5000]
)
def test_a_garbage_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fleetdeck.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="left untouched"):
        Store(tmp_path)
    assert path.read_bytes() == content


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "fleetdeck.db")
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = (tmp_path / "fleetdeck.db").read_bytes()
    with pytest.raises(StoreError, match=r"some other program .*invoices"):
        Store(tmp_path)
    assert (tmp_path / "fleetdeck.db").read_bytes() == before


def test_a_damaged_page_is_found_by_the_integrity_check(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for i in range(50):
            store.log("a", "info", f"line {i} " + "x" * 200)
    path = tmp_path / "fleetdeck.db"
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'logs'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size : (root - 1) * page_size + 12] = b"\xff" * 12
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="malformed"):
        Store(tmp_path)
    unverified = Store(tmp_path, verify=False)  # a reader that skipped the check still gets a StoreError
    with pytest.raises(StoreError, match="left untouched"):
        unverified.logs_since(0)
    assert path.read_bytes() == bytes(data)


def test_a_lock_held_elsewhere_is_waited_out_not_reported(tmp_path: Path, store: Store) -> None:
    store.register_agent("a1", kind="reporting")
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
    store.heartbeat("a1")  # blocks until the other writer commits, then succeeds
    assert store.agent_record("a1").heartbeats == 1


def test_a_lock_held_for_too_long_is_one_clear_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(store_db, "RETRY_FOR_S", 0.3)
    store = Store(tmp_path)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="stayed locked"):
        store.log("node", "info", "hello")
    other.execute("ROLLBACK")
    assert store.log("node", "info", "hello") == 1


def test_default_state_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETDECK_STATE_DIR", str(tmp_path / "explicit"))
    assert default_state_dir() == tmp_path / "explicit"
    monkeypatch.delenv("FLEETDECK_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "fleetdeck" / "node"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == Path.home() / ".local" / "state" / "fleetdeck" / "node"


# --- agents and health ---------------------------------------------------------------------------------


def test_heartbeats_drive_health_and_its_reason(store: Store, clock: Clock) -> None:
    agent = store.register_agent("a1", kind="reporting", labels={"team": "ml"})
    assert (agent.state, agent.health, agent.health_reason) == ("starting", "unknown", "starting")
    store.heartbeat("a1", progress=0.25, message="epoch 1", cpu_percent=150.0, rss_bytes=1024)
    agent = store.get_agent("a1")
    assert (agent.state, agent.health, agent.progress, agent.labels) == (
        "running",
        "healthy",
        0.25,
        {"team": "ml"},
    )
    clock.now += 20
    assert (store.get_agent("a1").health, store.get_agent("a1").health_reason) == (
        "degraded",
        "no heartbeat for 20 s",
    )
    clock.now += 50
    assert (store.get_agent("a1").health, store.get_agent("a1").health_reason) == (
        "unhealthy",
        "no heartbeat for 70 s",
    )
    store.heartbeat("a1")
    store.append_logs([(clock.now, "error", "a1", f"oops {i}", None) for i in range(12)])
    assert store.get_agent("a1").health_reason == "12 errors in the last minute"
    clock.now += 10
    assert store.agents(HealthThresholds(error_rate_per_min=(5, 12)))[0].health == "unhealthy"
    clock.now += 55  # the errors have left the one-minute window, the heartbeat is 65 s old
    assert store.get_agent("a1").health_reason == "no heartbeat for 65 s"


def test_state_changes_explain_health(store: Store) -> None:
    store.register_agent("a1", kind="process", pid=10, command=["python", "train.py"])
    store.heartbeat("a1")
    record = store.set_agent_state("a1", "failed", exit_code=1)
    assert record.pid is None and record.exit_code == 1 and record.command == ("python", "train.py")
    assert (store.get_agent("a1").health, store.get_agent("a1").health_reason) == (
        "unhealthy",
        "exited with code 1",
    )
    store.set_agent_state("a1", "starting", restarts_increment=True, pid=11)
    assert store.agent_record("a1").exit_code is None and store.get_agent("a1").restarts == 1
    again = store.register_agent("a1", kind="process", pid=12)  # a new incarnation keeps its history
    assert (again.restarts, again.state, store.agent_record("a1").command) == (
        1,
        "starting",
        ("python", "train.py"),
    )
    store.set_agent_state("a1", "stopped")
    assert (store.get_agent("a1").health, store.get_agent("a1").health_reason) == ("unknown", "stopped")


def test_health_rules_on_their_own() -> None:
    starting = AgentRecord(
        id="a", name="a", kind="process", state="starting", registered_at=T0, started_at=T0
    )
    assert compute_health(starting, T0 + 5) == ("unknown", "starting")
    assert compute_health(starting, T0 + 20) == ("degraded", "no heartbeat yet after 20 s")
    running = replace(starting, state="running", last_heartbeat=T0, supervisor_pid=77)
    assert compute_health(running, T0 + 70, errors_last_minute=60, supervisor_alive=False) == (
        "unhealthy",
        "supervisor gone (pid 77); no heartbeat for 70 s; 60 errors in the last minute",
    )
    assert compute_health(running, T0 + 1, errors_last_minute=10) == (
        "degraded",
        "10 errors in the last minute",
    )
    assert compute_health(replace(running, state="paused"), T0 + 999) == ("unknown", "paused")


def test_a_vanished_supervisor_makes_its_agent_unhealthy(tmp_path: Path, clock: Clock) -> None:
    alive = {1234: True}
    store = Store(tmp_path, clock=clock, pid_alive=lambda pid: alive.get(pid, False))
    store.register_agent("a1", kind="process", supervisor_pid=1234)
    store.heartbeat("a1")
    assert store.get_agent("a1").health == "healthy"
    with pytest.raises(Conflict, match="supervisor pid 1234"):
        store.register_agent("a1", kind="process", supervisor_pid=999)
    alive[1234] = False
    assert store.get_agent("a1").health_reason == "supervisor gone (pid 1234)"
    store.register_agent("a1", kind="process", supervisor_pid=999)  # the old one is gone: take over
    assert store.agent_record("a1").supervisor_pid == 999


def test_agent_names_and_unknown_ids_get_clear_errors(store: Store) -> None:
    for name in ("b", "a", "c"):
        store.register_agent(name, kind="reporting")
    with pytest.raises(NotFound, match=r"no agent 'zz' on this node \(known: a, b, c\)"):
        store.heartbeat("zz")
    with pytest.raises(Invalid, match="not valid"):
        store.register_agent("bad name!", kind="reporting")
    with pytest.raises(Invalid, match="progress"):
        store.heartbeat("a", progress=40)
    store.remove_agent("b")
    assert [a.id for a in store.agents()] == ["a", "c"]


def test_commands_are_queued_and_taken_once(store: Store) -> None:
    store.register_agent("a1", kind="reporting")
    first = store.enqueue_command("a1", "pause", operator="alice", reason="drain")
    second = store.enqueue_command("a1", "resume")
    assert store.take_commands("a1") == [(first, "pause"), (second, "resume")]
    assert store.take_commands("a1") == []
    with pytest.raises(Invalid):
        store.enqueue_command("a1", "explode")
    with pytest.raises(NotFound):
        store.enqueue_command("nobody", "stop")
    with pytest.raises(NotFound, match="known: a1"):
        store.take_commands("nobody")


def test_taken_commands_are_forgotten_after_a_day(store: Store, clock: Clock) -> None:
    store.register_agent("a1", kind="reporting")
    store.register_agent("a2", kind="reporting")
    store.enqueue_command("a1", "pause")
    assert store.take_commands("a1") != []
    clock.now += 2 * 86400
    # a1 gets no new command, so only the store's retention can forget its old one
    assert store.take_commands("a1") == []
    store.enqueue_command("a2", "stop")
    store.prune_logs()
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT agent_id, taken_at FROM commands").fetchall() == [("a2", None)]
    conn.close()


# --- logs and audit ------------------------------------------------------------------------------------


def test_logs_round_trip_in_seq_order(store: Store, clock: Clock) -> None:
    last = store.append_logs([(T0, "warn", "a1", "slow", {"ms": 130}), (None, "info", "node", "hi", None)])
    assert last == 2 and store.last_log_seq() == 2
    records = store.logs_since(0)
    assert [(r.seq, r.level, r.source, r.fields) for r in records] == [
        (1, "warning", "a1", {"ms": 130}),
        (2, "info", "node", {}),
    ]
    assert [r.seq for r in store.logs_since(1)] == [2]
    assert [r.message for r in store.logs_since(0, source="node")] == ["hi"]
    with pytest.raises(Invalid, match="log level"):
        store.log("a1", "loud", "x")


def test_retention_by_count_and_age_never_reuses_a_seq(tmp_path: Path, clock: Clock) -> None:
    store = Store(tmp_path, clock=clock, log_max_records=10, log_max_age_s=3600)
    store.append_logs([(clock.now - 7200, "info", "a", "old", None)])  # first append prunes: too old
    assert store.logs_since(0) == [] and store.last_log_seq() == 1 and store.oldest_log_seq() is None
    for i in range(25):
        store.log("a", "info", f"line {i}")
    assert store.prune_logs() == 15
    assert [r.seq for r in store.logs_since(0)] == list(range(17, 27))
    assert store.oldest_log_seq() == 17
    store.log_max_records = 0
    store.prune_logs()
    assert store.logs_since(0) == [] and store.last_log_seq() == 26
    assert store.log("a", "info", "after") == 27


def test_retention_runs_by_itself(tmp_path: Path, clock: Clock) -> None:
    store = Store(tmp_path, clock=clock, log_max_records=5)
    store.append_logs([(None, "info", "a", str(i), None) for i in range(20)])
    for i in range(10):
        store.log("a", "info", f"more {i}")
    clock.now += 61  # the next append is due a prune again
    store.log("a", "info", "later")
    assert [r.seq for r in store.logs_since(0)] == list(range(27, 32))


def test_audit_entries_are_kept_in_order(store: Store) -> None:
    entry = store.audit("alice", "pause", "agent:a1", outcome="ok", params={"why": 1}, reason="drain")
    store.audit("bob", "stop", "agent:a2", outcome="denied", detail="read-only")
    assert entry.seq == 1 and entry.params == {"why": 1}
    assert [(e.seq, e.operator, e.outcome) for e in store.audit_since(0)] == [
        (1, "alice", "ok"),
        (2, "bob", "denied"),
    ]
    assert [e.seq for e in store.audit_since(1)] == [2]
    with pytest.raises(Invalid):
        store.audit("alice", "pause", None, outcome="maybe")
