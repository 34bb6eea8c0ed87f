"""KPIs over HTTP: a local node's store served by a real uvicorn and read through the real http backend
(snapshots and ``GET /v1/kpis``), hand-made nodes answering garbage figures, and the size bound."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path

import httpx
import pytest

from backends.base import Backend
from backends.errors import Unreachable, Unsupported
from backends.local.backend import LocalBackend
from backends.local.store import Store
from backends.model import (
    Agent,
    Criterion,
    Gate,
    GateSignoff,
    Kpi,
    KpiSeries,
    LogRecord,
    Milestone,
    NodeInfo,
    NodeSnapshot,
    Phase,
    from_json,
    to_builtins,
)
from backends.node_api import (
    KPI_COMPLETE_SINCE_HEADER,
    KPI_LEFT_OUT_HEADER,
    KPIS_PATH,
    MAX_KPI_POINTS,
    PREFIX,
    Problem,
)
from backends.node_server.app import create_app
from backends.node_server.kpi_reads import bounded
from tests.conftest import T0, one_line_error
from tests.serving import as_owner, serve_asgi
from tests.test_http_backend_support import FAKE_INFO, FakeNode, backend_for, reply
from tests.test_node_server_api import OPERATOR_TOKEN, VIEWER_TOKEN, bearer, token_book

AGENTS = ("retriever-01", "retriever-02", "coder-01")


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """A local node whose reporting agents sent three rounds of figures, ten seconds apart."""
    state_dir = tmp_path / "node"
    with Store(state_dir, clock=lambda: T0 + 30) as store:  # the figures' own time: none is past retention
        for number, agent in enumerate(AGENTS):
            store.register_agent(agent, kind="reporting", state="running", labels={"role": agent[:-3]})
            for step in range(3):
                store.record_kpis(
                    agent,
                    {
                        "latency_p95_ms": 90.0 + 10 * number + step,
                        "success_ratio": 0.999 - 0.001 * step,
                        "tokens_out_total": 1000.0 * (step + 1) + number,
                    },
                    at=T0 + 10 * step,
                )
    return state_dir


@pytest.fixture
def served_local(node_dir: Path) -> Iterator[str]:
    with serve_asgi(create_app(LocalBackend(state_dir=node_dir), snapshot_ttl_s=0.0)) as url:
        yield url


# --- snapshots ---------------------------------------------------------------------------------------------


async def test_a_local_nodes_kpis_reach_the_http_backend_exactly(node_dir: Path, served_local: str) -> None:
    async with LocalBackend(state_dir=node_dir) as direct:
        wanted = {a.id: a.kpis for a in (await direct.snapshot()).agents}
    async with backend_for(served_local) as remote:
        got = {a.id: a.kpis for a in (await remote.snapshot()).agents}
    assert set(got) == set(AGENTS)
    assert got == wanted
    coder = got["coder-01"]
    assert [(k.name, k.value, k.unit, k.kind, k.at) for k in coder] == [
        ("latency_p95_ms", 112.0, "ms", "gauge", T0 + 20),
        ("success_ratio", 0.997, "ratio", "gauge", T0 + 20),
        ("tokens_out_total", 3002.0, "tokens", "counter", T0 + 20),
    ]
    assert coder[2].rate_per_s == pytest.approx(100.0)  # 1000 tokens per 10 s


class SnapshotBackend(Backend):
    """A node answering the snapshot (and KPI history) the test gives it."""

    name = "test"

    def __init__(
        self,
        snapshot: NodeSnapshot,
        history: list[KpiSeries] | None = None,
        capabilities: frozenset[str] = frozenset(),
    ) -> None:
        self.current = snapshot
        self.history = history
        self.capabilities = capabilities
        self.asked: list[tuple[float, object, object]] = []

    @property
    def info(self) -> NodeInfo:
        return self.current.node

    async def snapshot(self) -> NodeSnapshot:
        return self.current

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        records: tuple[LogRecord, ...] = ()
        for record in records:
            yield record

    async def kpi_history(
        self, since: float, *, names: Collection[str] | None = None, agent_ids: Collection[str] | None = None
    ) -> list[KpiSeries]:
        if self.history is None:
            return await super().kpi_history(since, names=names, agent_ids=agent_ids)
        self.asked.append((since, None if names is None else sorted(names), agent_ids and sorted(agent_ids)))
        return self.history


def node_info(*capabilities: str) -> NodeInfo:
    return NodeInfo(id="n1", name="n1", backend="test", capabilities=frozenset(capabilities))  # type: ignore[arg-type]


async def test_gate_sign_offs_and_kpi_bound_criteria_cross_the_wire_unchanged() -> None:
    signed = GateSignoff(decision="no-go", operator="alice", at=T0 - 60, reason="p95 over the line")
    criterion = Criterion(
        name="P95 latency",
        target="< 120 ms",
        actual="162 ms",
        passed=False,
        kpi="latency_p95_ms",
        since=T0 - 300,
    )
    phase = Phase(
        id="p1",
        name="Phase 1",
        order=1,
        milestones=(Milestone(id="m1", name="Week 1", criteria=(criterion,)),),
        gate=Gate(
            decision="no-go",
            reasons=("P95 latency: 162 ms (target < 120 ms)",),
            since=T0 - 300,
            signed=signed,
        ),
    )
    kpi = Kpi(name="latency_p95_ms", value=162.0, unit="ms", at=T0 - 1)
    snapshot = NodeSnapshot(
        node=node_info(), observed_at=T0, agents=(Agent(id="a1", name="a1", kpis=(kpi,)),), phases=(phase,)
    )
    with serve_asgi(create_app(SnapshotBackend(snapshot))) as url:
        async with backend_for(url) as remote:
            got = await remote.snapshot()
    assert got.phases == (phase,)
    assert (
        got.phases[0].gate.signed == signed
        and got.phases[0].milestones[0].criteria[0].kpi == "latency_p95_ms"
    )
    assert got.agents[0].kpis == (kpi,)


# --- garbage figures ---------------------------------------------------------------------------------------


def garbage_snapshot(field: str, value: object) -> bytes:
    kpi = Kpi(name="latency_p95_ms", value=97.0, unit="ms", at=T0)
    data = to_builtins(
        NodeSnapshot(node=FAKE_INFO, observed_at=T0, agents=(Agent(id="a1", name="a1", kpis=(kpi,)),))
    )
    data["agents"][0]["kpis"][0][field] = value
    return json.dumps(data).encode()


GARBAGE = [
    ("value", "NaN", "Expected `float`, got `str` - at `$.agents[0].kpis[0].value`"),
    ("unit", "furlongs", "Invalid enum value 'furlongs' - at `$.agents[0].kpis[0].unit`"),
    ("name", "k" * 4096, "Expected `str` of length <= 64 - at `$.agents[0].kpis[0].name`"),
]


@pytest.mark.parametrize(("field", "value", "words"), GARBAGE, ids=["nan-string", "unknown-unit", "4kb-name"])
async def test_a_snapshot_with_garbage_figures_is_unreachable_naming_the_field(
    field: str, value: object, words: str
) -> None:
    node = FakeNode({f"{PREFIX}/snapshot": reply(200, garbage_snapshot(field, value))})
    with serve_asgi(node) as url:
        async with backend_for(url) as remote:
            with pytest.raises(Unreachable) as caught:
                await remote.snapshot()
    assert str(caught.value) == f"node gpu-01 answered something that is not a NodeSnapshot: {words}"


def test_the_console_says_a_garbage_figure_in_one_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    node = FakeNode({f"{PREFIX}/snapshot": reply(200, garbage_snapshot("name", "k" * 4096))})
    config = tmp_path / "fleetdeck.toml"
    with serve_asgi(node) as url:
        config.write_text(f'[[nodes]]\nname = "gpu-01"\nbackend = "http"\nurl = "{url}"\ntoken_env = "TOK"\n')
        env = {**cli_env, "TOK": "t" * 24}
        done = subprocess.run(
            [sys.executable, "-m", "console", "--config", str(config), "agents"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode != 0
    line = one_line_error(done)
    assert "not a NodeSnapshot" in line and "`$.agents[0].kpis[0].name`" in line
    assert "k" * 100 not in line  # the field is named, not echoed


async def test_a_kpi_history_with_garbage_points_is_unreachable_naming_the_field() -> None:
    body = (
        b'[{"agent_id": "a1", "name": "latency_p95_ms", "unit": "ms", "points": [[1.0, 2.0], [2.0, 1e999]]}]'
    )
    node = FakeNode({KPIS_PATH: reply(200, body)})
    with serve_asgi(node) as url:
        async with backend_for(url) as remote:
            with pytest.raises(Unreachable) as caught:
                await remote.kpi_history(0)
    assert str(caught.value) == (
        "node gpu-01 answered something that is not a list of KpiSeries: "
        "Number out of range - at `$[0].points[1][1]`"
    )


# --- GET /v1/kpis ------------------------------------------------------------------------------------------


async def test_the_http_backend_reads_the_same_history_the_local_node_keeps(
    node_dir: Path, served_local: str
) -> None:
    async with LocalBackend(state_dir=node_dir) as direct, backend_for(served_local) as remote:
        assert remote.supports("kpi_history")
        for since, names, agent_ids in (
            (0.0, None, None),
            (T0 + 10, None, None),
            (0.0, {"latency_p95_ms"}, None),
            (0.0, {"latency_p95_ms", "tokens_out_total"}, {"retriever-02", "coder-01"}),
            (T0 + 5.5, None, {"coder-01"}),
            (0.0, {"no_such_kpi"}, None),
        ):
            wanted = await direct.kpi_history(since, names=names, agent_ids=agent_ids)
            got = await remote.kpi_history(since, names=names, agent_ids=agent_ids)
            assert got == wanted, (since, names, agent_ids)
        everything = await remote.kpi_history(0.0)
        assert len(everything) == len(AGENTS) * 3
        assert all(len(series.points) == 3 for series in everything)
        later = await remote.kpi_history(T0 + 10, names=["latency_p95_ms"], agent_ids=["coder-01"])
        assert [(s.agent_id, s.name, s.unit, s.points) for s in later] == [
            ("coder-01", "latency_p95_ms", "ms", ((T0 + 10, 111.0), (T0 + 20, 112.0)))
        ]
        assert await remote.kpi_history(0.0, names=[]) == []  # none asked for, none answered


def test_a_viewer_reads_kpis_and_a_stranger_does_not(node_dir: Path) -> None:
    with serve_asgi(create_app(LocalBackend(state_dir=node_dir), tokens=token_book())) as url:
        viewer = httpx.get(
            f"{url}{KPIS_PATH}", params={"name": "success_ratio"}, headers=bearer(VIEWER_TOKEN)
        )
        stranger = httpx.get(f"{url}{KPIS_PATH}")
    assert viewer.status_code == 200, viewer.text
    series = from_json(viewer.content, list[KpiSeries])
    assert {(s.agent_id, s.name) for s in series} == {(a, "success_ratio") for a in AGENTS}
    assert KPI_LEFT_OUT_HEADER not in viewer.headers  # nothing was left out
    assert stranger.status_code == 401


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ({"since": "nan"}, "since", "since must be UTC epoch seconds"),
        ({"since": "1e9"}, "since", "since must be UTC epoch seconds"),
        ({"since": "-5"}, "since", "since must be UTC epoch seconds"),
        ({"name": "Latency"}, "name", "name must be a KPI name"),
        ({"name": "k" * 65}, "name", "name must be a KPI name"),
        ({"agent": ""}, "agent", "agent must be an agent id"),
        ({"names": "latency_p95_ms"}, "names", "unknown query parameter 'names'"),
    ],
)
def test_a_bad_query_is_refused_naming_the_parameter(
    served_local: str, query: dict[str, str], field: str, words: str
) -> None:
    answer = as_owner.get(f"{served_local}{KPIS_PATH}", params=query)
    assert answer.status_code == 422
    problem = from_json(answer.content, Problem)
    assert problem.field == field and words in problem.detail


def test_repeated_names_and_agents_each_narrow_the_answer(served_local: str) -> None:
    query = [
        ("name", "latency_p95_ms"),
        ("name", "success_ratio"),
        ("agent", "coder-01"),
        ("since", str(T0 + 20)),
    ]
    answer = as_owner.get(f"{served_local}{KPIS_PATH}", params=query)
    assert answer.status_code == 200, answer.text
    series = from_json(answer.content, list[KpiSeries])
    assert [(s.agent_id, s.name, len(s.points)) for s in series] == [
        ("coder-01", "latency_p95_ms", 1),
        ("coder-01", "success_ratio", 1),
    ]


async def test_a_node_without_kpi_history_says_so_by_name() -> None:
    backend = SnapshotBackend(
        NodeSnapshot(node=node_info("logs"), observed_at=T0), capabilities=frozenset({"logs"})
    )
    with serve_asgi(create_app(backend)) as url:
        async with backend_for(url) as remote:
            assert not remote.supports("kpi_history") and not remote.supports("sign_gate")
            assert remote.capability_note("kpi_history") == (
                "the test backend behind node gpu-01 cannot keep KPI history"
            )
            with pytest.raises(Unsupported, match="cannot keep KPI history"):
                await remote.kpi_history(0)


async def test_a_viewer_keeps_kpi_history_but_not_gate_sign_off(
    node_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_asgi(create_app(LocalBackend(state_dir=node_dir), tokens=token_book())) as url:
        for token, may_sign in ((VIEWER_TOKEN, False), (OPERATOR_TOKEN, True)):
            monkeypatch.setenv("FLEETDECK_TOKEN_TEST", token)
            async with backend_for(url, token_env="FLEETDECK_TOKEN_TEST") as remote:
                assert remote.supports("kpi_history")
                assert remote.supports("sign_gate") is may_sign
                assert len(await remote.kpi_history(0, names=["latency_p95_ms"])) == len(AGENTS)


# --- the bound on an answer --------------------------------------------------------------------------------


def series_of(agent: str, times: list[float]) -> KpiSeries:
    return KpiSeries(agent_id=agent, name="latency_p95_ms", unit="ms", points=tuple((t, 1.0) for t in times))


def test_past_the_bound_the_oldest_points_go_as_if_since_were_later() -> None:
    found = [series_of("a", [1, 2, 3, 4]), series_of("b", [2, 3, 5]), series_of("c", [1])]
    assert bounded(found, 8) == (found, None, 0)
    kept, complete_since, left_out = bounded(found, 4)
    assert [(s.agent_id, [t for t, _ in s.points]) for s in kept] == [("a", [3, 4]), ("b", [3, 5])]
    assert (complete_since, left_out) == (3, 4)
    # ties at the cut go together: never more than the bound, and every point after the cut is there
    kept, complete_since, left_out = bounded(found, 5)
    assert sum(len(s.points) for s in kept) == 4 and (complete_since, left_out) == (3, 4)
    kept, complete_since, left_out = bounded(found, 6)
    assert [(s.agent_id, [t for t, _ in s.points]) for s in kept] == [("a", [2, 3, 4]), ("b", [2, 3, 5])]
    assert (complete_since, left_out) == (2, 2)


async def test_an_answer_past_the_bound_says_from_when_it_is_complete() -> None:
    times = [T0 + i for i in range(MAX_KPI_POINTS // 2 + 10)]
    history = [series_of("a", times), series_of("b", times)]  # MAX_KPI_POINTS + 20 points
    backend = SnapshotBackend(NodeSnapshot(node=node_info("kpi_history"), observed_at=T0), history)
    with serve_asgi(create_app(backend)) as url:
        answer = as_owner.get(f"{url}{KPIS_PATH}", params={"since": "0"}, timeout=60)
        async with backend_for(url) as remote:
            through_backend = await remote.kpi_history(0)
    assert answer.status_code == 200
    got = from_json(answer.content, list[KpiSeries])
    assert sum(len(s.points) for s in got) == MAX_KPI_POINTS
    assert answer.headers[KPI_LEFT_OUT_HEADER] == "20"
    assert float(answer.headers[KPI_COMPLETE_SINCE_HEADER]) == T0 + 10 == got[0].points[0][0]
    assert through_backend == got
    assert backend.asked[-1] == (0.0, None, None)
