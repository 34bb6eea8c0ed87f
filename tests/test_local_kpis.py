"""KPIs on the local node: the store (validation, counters, snapshots, windows, retention) and its real
sources (AgentReporter, ``fleetdeck report --kpi``, a supervised agent's JSON log lines, LocalBackend).

Real SQLite in a temporary state dir, real ``python -m console`` subprocesses; the store's clock is injected
so rates and retention are exact.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from backends.errors import Invalid, NotFound
from backends.local import store as store_module
from backends.local import store_kpis
from backends.local.backend import LocalBackend
from backends.local.reporter import AgentReporter
from backends.local.store import Store
from backends.model import Kpi

from .conftest import one_line_error

T0 = 1_796_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock):
    with Store(tmp_path / "node", clock=clock) as opened:
        opened.register_agent("retriever-1", kind="reporting")
        opened.register_agent("retriever-2", kind="reporting")
        yield opened


def points(store: Store) -> int:
    return store._db.read(store_kpis.count_points)


# --- recording -------------------------------------------------------------------------------------------


def test_figures_take_their_unit_and_kind_from_the_name_and_show_in_every_read(store: Store) -> None:
    figures: dict[str, float | tuple[float, str]] = {
        "success_ratio": 0.9993,
        "latency_p95_ms": 97,
        "tokens_out_total": 100,
        "queue_depth": (12, "count"),
    }
    stored = store.record_kpis("retriever-1", figures)
    assert [(k.name, k.unit, k.kind) for k in stored] == [
        ("success_ratio", "ratio", "gauge"),
        ("latency_p95_ms", "ms", "gauge"),
        ("tokens_out_total", "tokens", "counter"),
        ("queue_depth", "count", "gauge"),
    ]
    assert all(k.at == T0 for k in stored)
    names = ["latency_p95_ms", "queue_depth", "success_ratio", "tokens_out_total"]  # sorted by name
    assert [k.name for k in store.get_agent("retriever-1").kpis] == names
    by_id = {agent.id: agent for agent in store.agents()}
    assert [k.name for k in by_id["retriever-1"].kpis] == names
    assert by_id["retriever-1"].kpi("latency_p95_ms") == Kpi(
        name="latency_p95_ms", value=97, unit="ms", at=T0
    )
    assert by_id["retriever-2"].kpis == ()
    snapshot = {agent.id: agent for agent in store.snapshot_read().agents}
    assert snapshot["retriever-1"].kpis == by_id["retriever-1"].kpis
    assert store.latest_kpis() == {"retriever-1": by_id["retriever-1"].kpis}


def test_a_counter_rate_is_derived_and_a_drop_is_read_as_a_reset(store: Store, clock: Clock) -> None:
    (first,) = store.record_kpis("retriever-1", {"tokens_out_total": 1000})
    assert first.rate_per_s is None, "one point is no rate"
    clock.now += 10
    (grown,) = store.record_kpis("retriever-1", {"tokens_out_total": 1500})
    assert grown.rate_per_s == pytest.approx(50.0)
    clock.now += 10
    (reset,) = store.record_kpis("retriever-1", {"tokens_out_total": 200})  # the agent restarted
    assert reset.rate_per_s == pytest.approx(20.0), "after a reset all of the new value is growth"
    assert store.get_agent("retriever-1").kpi("tokens_out_total") == reset
    (gauge,) = store.record_kpis("retriever-1", {"latency_p95_ms": 97})
    assert gauge.rate_per_s is None


def test_kinds_may_be_given_and_kpi_values_recorded_as_they_are(store: Store) -> None:
    (counted,) = store.record_kpis("retriever-1", {"requests": 5}, kinds={"requests": "counter"}, at=T0 - 5)
    assert (counted.kind, counted.at) == ("counter", T0 - 5)
    made = [Kpi(name="requests", value=9, at=T0, kind="counter")]
    (again,) = store.record_kpis("retriever-1", made)
    assert again.rate_per_s == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("figures", "named", "field"),
    [
        ({"latency_p95_ms": math.nan}, "'latency_p95_ms'", "value"),
        ({"latency_p95_ms": math.inf}, "'latency_p95_ms'", "value"),
        ({"latency_p95_ms": (97, "furlongs")}, "'latency_p95_ms'", "$.unit"),
        ({"a" * 4096: 1}, "'aaaa", "$.name"),
        ({"Latency": 1}, "'Latency'", "$.name"),
        ({"latency_p95_ms": "97"}, "'latency_p95_ms'", "$.value"),
        ({"up": True}, "'up'", "value"),
    ],
)
def test_a_figure_the_wire_model_refuses_is_refused_naming_it_and_nothing_is_recorded(
    store: Store, figures: dict, named: str, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        store.record_kpis("retriever-1", {"success_ratio": 0.99, **figures})
    message = str(refused.value)
    assert named in message and field in message
    assert len(message) < 200, "a 4 KB name is not repeated in the message"
    assert store.latest_kpis() == {} and points(store) == 0


def test_an_unknown_agent_is_not_found_as_for_a_heartbeat(store: Store) -> None:
    with pytest.raises(NotFound, match=r"no agent 'ghost'.*retriever-1") as kpi_error:
        store.record_kpis("ghost", {"latency_p95_ms": 97})
    with pytest.raises(NotFound) as heartbeat_error:
        store.heartbeat("ghost")
    assert str(kpi_error.value) == str(heartbeat_error.value)
    assert points(store) == 0


def test_a_late_point_joins_the_history_but_does_not_replace_the_latest(store: Store) -> None:
    store.record_kpis("retriever-1", {"latency_p95_ms": 97}, at=T0)
    store.record_kpis("retriever-1", {"latency_p95_ms": 300}, at=T0 - 30)
    assert store.get_agent("retriever-1").kpi("latency_p95_ms").value == 97  # type: ignore[union-attr]
    assert store.kpi_window(["latency_p95_ms"], 0) == {
        ("retriever-1", "latency_p95_ms"): [(T0 - 30, 300.0), (T0, 97.0)]
    }


def test_a_heartbeat_carries_kpis_in_its_transaction_and_a_bad_one_refuses_both(store: Store) -> None:
    store.heartbeat("retriever-1", message="serving", kpis={"latency_p95_ms": 131})
    assert store.get_agent("retriever-1").kpi("latency_p95_ms").value == 131  # type: ignore[union-attr]
    before = store.agent_record("retriever-1").heartbeats
    with pytest.raises(Invalid, match="'latency_p95_ms'"):
        store.heartbeat("retriever-1", message="lost", kpis={"latency_p95_ms": math.nan})
    record = store.agent_record("retriever-1")
    assert (record.heartbeats, record.message) == (before, "serving")


# --- windows and history ---------------------------------------------------------------------------------


def test_windows_and_history_select_names_agents_and_time_oldest_first(store: Store, clock: Clock) -> None:
    for step in range(4):
        clock.now = T0 + 10 * step
        store.record_kpis("retriever-1", {"latency_p95_ms": 100 + step, "tokens_out_total": 10 * step})
        store.record_kpis("retriever-2", {"latency_p95_ms": 200 + step})
    window = store.kpi_window(["latency_p95_ms"], T0 + 10)
    assert window == {
        ("retriever-1", "latency_p95_ms"): [(T0 + 10, 101.0), (T0 + 20, 102.0), (T0 + 30, 103.0)],
        ("retriever-2", "latency_p95_ms"): [(T0 + 10, 201.0), (T0 + 20, 202.0), (T0 + 30, 203.0)],
    }
    assert list(store.kpi_window(None, T0, ["retriever-1"])) == [
        ("retriever-1", "latency_p95_ms"),
        ("retriever-1", "tokens_out_total"),
    ]
    assert store.kpi_window([], T0) == {} and store.kpi_window(None, T0, []) == {}
    # a pure function of a connection: usable inside a caller's own read transaction
    assert store._db.read(lambda c: store_kpis.window(c, ["latency_p95_ms"], T0 + 10)) == window
    series = store.kpi_history(
        T0 + 20, names=["tokens_out_total", "latency_p95_ms"], agent_ids=["retriever-1"]
    )
    assert [(s.agent_id, s.name, s.unit, s.kind) for s in series] == [
        ("retriever-1", "latency_p95_ms", "ms", "gauge"),
        ("retriever-1", "tokens_out_total", "tokens", "counter"),
    ]
    assert series[1].points == ((T0 + 20, 20.0), (T0 + 30, 30.0))
    assert store.kpi_history(T0 + 100) == []


# --- retention -------------------------------------------------------------------------------------------


def test_retention_drops_old_points_and_keeps_the_newest_within_the_bound(
    tmp_path: Path, clock: Clock
) -> None:
    def latency(value: float, ago: float) -> Kpi:
        return Kpi(name="latency_p95_ms", value=value, at=clock.now - ago)

    with Store(tmp_path / "node", clock=clock, kpi_max_points=5, kpi_max_age_s=3600) as store:
        store.register_agent("a", kind="reporting")
        store.register_agent("gone", kind="reporting")
        store.record_kpis("gone", [latency(5, 7200)])  # its point goes at once: the first record prunes
        store.remove_agent("gone")
        store.record_kpis("a", [latency(v, 7200 - v) for v in range(3)])
        store.record_kpis("a", [latency(v, 100 - v) for v in range(10)])
        assert points(store) == 13, "pruned now and then, not at every record"
        assert store.prune_kpis() == 8, "age first (the 3 points of two hours back), then the count bound"
        assert store.kpi_window(None, 0) == {
            ("a", "latency_p95_ms"): [(clock.now - 100 + v, v) for v in range(5, 10)]
        }
        assert store.get_agent("a").kpi("latency_p95_ms") == latency(9, 91), (
            "latest figures survive retention"
        )
        assert "gone" not in store.latest_kpis(), "a removed agent's figures go with age"
        clock.now += 61  # a minute on, the next record prunes by itself
        store.record_kpis("a", {"success_ratio": 0.99})
        assert points(store) == 5
        assert {k.name for k in store.get_agent("a").kpis} == {"latency_p95_ms", "success_ratio"}


def test_retention_runs_after_enough_points_without_waiting_for_the_clock(
    tmp_path: Path, clock: Clock
) -> None:
    with Store(tmp_path / "node", clock=clock, kpi_max_points=100) as store:
        store.register_agent("a", kind="reporting")
        store.record_kpis("a", {"latency_p95_ms": 1})  # the first record of a process prunes
        burst = store_module.KPI_PRUNE_EVERY_POINTS - 1
        store.record_kpis("a", [Kpi(name="latency_p95_ms", value=1, at=clock.now) for _ in range(burst)])
        assert points(store) == 1 + burst
        store.record_kpis("a", {"latency_p95_ms": 2})
        assert points(store) == 100


def test_retention_reads_the_environment_like_the_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETDECK_KPI_KEEP_S", "60")
    monkeypatch.setenv("FLEETDECK_KPI_MAX_POINTS", "7")
    with Store(tmp_path / "node") as store:
        assert (store.kpi_max_age_s, store.kpi_max_points) == (60.0, 7)
    monkeypatch.setenv("FLEETDECK_KPI_KEEP_S", "a week")
    with pytest.raises(Invalid, match="FLEETDECK_KPI_KEEP_S"):
        Store(tmp_path / "node")
    monkeypatch.delenv("FLEETDECK_KPI_KEEP_S")
    monkeypatch.delenv("FLEETDECK_KPI_MAX_POINTS")
    with Store(tmp_path / "node") as store:
        assert (store.kpi_max_age_s, store.kpi_max_points) == (8 * 86400.0, 2_000_000)


# --- sources ---------------------------------------------------------------------------------------------


def test_an_agent_reporter_sends_kpis_with_its_heartbeat_and_one_at_a_time(tmp_path: Path) -> None:
    with AgentReporter("planner-01", state_dir=tmp_path / "node") as agent:
        agent.heartbeat(message="planning", kpis={"latency_p95_ms": 97, "success_ratio": 0.9993})
        stored = agent.kpi("queue", 12, unit="count")
        assert (stored.name, stored.unit) == ("queue", "count")
        assert agent.kpi("cost_usd_total", 3.41).unit == "usd"
        with pytest.raises(Invalid, match=r"'queue'.*unit"):
            agent.kpi("queue", 1, unit="furlongs")
        figures = {k.name: (k.value, k.unit) for k in agent.store.get_agent("planner-01").kpis}
    assert figures == {
        "cost_usd_total": (3.41, "usd"),
        "latency_p95_ms": (97.0, "ms"),
        "queue": (12.0, "count"),
        "success_ratio": (0.9993, "ratio"),
    }


def _cli(tmp_path: Path, cli_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        env={**cli_env, "FLEETDECK_STATE_DIR": str(tmp_path / "node")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fleetdeck_report_records_kpis_and_refuses_a_bad_one_naming_it(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    done = _cli(
        tmp_path, cli_env, "report", "--agent", "loader", "--kpi", "latency_p95_ms=97",
        "--kpi", "success_ratio=0.9993", "--kpi", "share=99.5:%", "--kpi", "queue=12:count",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = _cli(tmp_path, cli_env, "agents", "--json")
    assert shown.returncode == 0, shown.stderr
    (agent,) = json.loads(shown.stdout)
    assert {k["name"]: (k["value"], k["unit"]) for k in agent["kpis"]} == {
        "latency_p95_ms": (97.0, "ms"),
        "queue": (12.0, "count"),
        "share": (99.5, "percent"),
        "success_ratio": (0.9993, "ratio"),
    }
    for bad, says in (
        ("latency_p95_ms=nan", "'latency_p95_ms': value must be a finite number"),
        ("latency_p95_ms=fast", "'latency_p95_ms': value 'fast' is not a number"),
        ("latency_p95_ms=97:furlongs", "'latency_p95_ms': unit 'furlongs'"),
        ("Latency=97", "'Latency'"),
        ("latency_p95_ms", "NAME=VALUE"),
    ):
        refused = _cli(tmp_path, cli_env, "report", "--agent", "loader", "--kpi", "ok_ratio=1", "--kpi", bad)
        assert refused.returncode == 2, (bad, refused.stderr)
        assert says in one_line_error(refused)
    with sqlite3.connect(tmp_path / "node" / "fleetdeck.db") as db:
        assert db.execute("SELECT COUNT(*) FROM kpi_points WHERE name = 'ok_ratio'").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM kpi_points").fetchone()[0] == 4


AGENT_LINES = r"""
import json
print(json.dumps({"level": "info", "msg": "served", "kpis": {"latency_p95_ms": 131, "queue": [4, "count"]}}))
bad = {"latency_p95_ms": 155, "bad": "x", "Odd": 1}
print(json.dumps({"level": "info", "msg": "served again", "kpis": bad}))
print(json.dumps({"level": "info", "msg": "no figures here", "kpis": [1, 2]}))
"""


def test_a_supervised_agents_json_lines_carry_kpis_and_a_bad_one_is_named_in_a_warning(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    ran = _cli(tmp_path, cli_env, "run", "--name", "server", "--", sys.executable, "-c", AGENT_LINES)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    with Store(tmp_path / "node") as store:
        agent = store.get_agent("server")
        lines = [(r.level, r.message) for r in store.logs_since(0, source="server")]
        window = store.kpi_window(None, 0)
    assert {k.name: (k.value, k.unit) for k in agent.kpis} == {
        "latency_p95_ms": (155.0, "ms"),
        "queue": (4.0, "count"),
    }
    assert [v for _, v in window[("server", "latency_p95_ms")]] == [131.0, 155.0]
    messages = [message for _, message in lines]
    assert {"served", "served again", "no figures here"} <= set(messages), "no log line is lost"
    warnings = [message for level, message in lines if level == "warning"]
    assert any("KPI 'bad'" in w and "number" in w for w in warnings), warnings
    assert any("KPI 'Odd'" in w and "$.name" in w for w in warnings), warnings
    assert any("'kpis' must be an object" in w for w in warnings), warnings


async def test_the_local_backend_serves_kpi_history_even_read_only(tmp_path: Path) -> None:
    with Store(tmp_path / "node") as store:
        store.register_agent("a", kind="reporting")
        store.record_kpis("a", {"latency_p95_ms": 97, "success_ratio": 0.99}, at=T0)
    backend = LocalBackend(state_dir=tmp_path / "node", read_only=True)
    await backend.open()
    try:
        assert "kpi_history" in backend.info.capabilities
        series = await backend.kpi_history(T0, names=["latency_p95_ms"])
        assert [(s.agent_id, s.name, s.points) for s in series] == [("a", "latency_p95_ms", ((T0, 97.0),))]
        snapshot = await backend.snapshot()
        assert [k.name for k in snapshot.agents[0].kpis] == ["latency_p95_ms", "success_ratio"]
    finally:
        await backend.close()


def test_snapshots_read_only_what_changed_and_still_agree_with_a_full_read(
    store: Store, clock: Clock
) -> None:
    def agents_kpis() -> dict[str, tuple[Kpi, ...]]:
        return {agent.id: agent.kpis for agent in store.snapshot_read().agents if agent.kpis}

    store.record_kpis("retriever-1", {"latency_p95_ms": 97, "success_ratio": 0.99})
    assert agents_kpis() == store.latest_kpis()
    for step in range(1, 30):  # a few figures at a time: the snapshot merges them into what it read before
        clock.now += 1
        store.record_kpis("retriever-2" if step % 3 else "retriever-1", {"latency_p95_ms": 100 + step})
        if step % 7 == 0:
            store.record_kpis("retriever-1", {f"k{step}_total": step})  # a new KPI joins, in name order
        assert agents_kpis() == store.latest_kpis()
    assert [k.name for k in agents_kpis()["retriever-1"]] == sorted(
        k.name for k in agents_kpis()["retriever-1"]
    )
    store.record_kpis("retriever-2", {"latency_p95_ms": 1}, at=T0 - 10)  # late: history only
    assert agents_kpis() == store.latest_kpis()
    assert agents_kpis()["retriever-2"][0].value == 129
