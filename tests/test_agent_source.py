"""Agent detail's Source line: where an agent comes from, in words, from its kind and labels; an agent fed
by OpenTelemetry through a real store, and a demo agent, on the real Agent screen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backends.local.store import Store
from backends.local.store_telemetry import TelemetryWrite
from backends.model import Agent
from console.screens.agent import AgentScreen, agent_table
from console.snapshot import screen_text
from widgets.agent_source import LABEL_MAX, agent_source


def agent(kind: str, **labels: str) -> Agent:
    return Agent(id="a-1", name="a-1", kind=kind, labels=labels)  # type: ignore[arg-type]


OTEL = {"source": "otel", "service": "shop-agent", "sdk": "python 1.45.2"}
HOOK = {"source": "claude-code", "session_id": "1a2b3c4d-5e6f-7a8b", "model": "opus", "project": "shop"}
TELEMETRY = {"service": "claude-code", "sdk": "nodejs 2.0.1"}


@pytest.mark.parametrize(
    ("kind", "labels", "expected"),
    [
        ("otel", OTEL, "OpenTelemetry · service shop-agent · python 1.45.2 SDK"),
        (
            "otel",
            {**OTEL, "instance": "pod-7"},
            "OpenTelemetry · service shop-agent · instance pod-7 · python 1.45.2 SDK",
        ),
        ("otel", {"source": "otel"}, "OpenTelemetry"),
        ("reporting", HOOK, "Claude Code session 1a2b3c4d (hooks) · project shop"),
        (
            "reporting",
            {**HOOK, **TELEMETRY},
            "Claude Code session 1a2b3c4d (hooks + telemetry) · project shop",
        ),
        (
            "otel",
            {"source": "claude-code", "session_id": "9f8e7d6c5b", **TELEMETRY},
            "Claude Code session 9f8e7d6c (telemetry)",
        ),
        ("reporting", {"source": "codex", "session_id": "0199aabbccdd"}, "Codex session 0199aabb (hooks)"),
        (
            "otel",
            {"source": "codex", "session_id": "0199aabbccdd", **TELEMETRY},
            "Codex session 0199aabb (telemetry)",
        ),
        ("process", {}, "process supervised by fleetdeck"),
        ("process", {"dispatched_by": "alice"}, "process supervised by fleetdeck · dispatched by alice"),
        ("reporting", {"role": "trainer"}, "reports through fleetdeck report / AgentReporter"),
        ("reporting", {"source": "fleetdeck", "role": "otlp-receiver"}, "fleetdeck itself · otlp-receiver"),
        ("actor", {"class": "Trainer"}, "Ray actor · class Trainer"),
        ("actor", {}, "Ray actor"),
        # a hook source on a process fleetdeck runs: fleetdeck supervises it, whatever it says of itself
        ("process", {"source": "claude-code", "session_id": "1a2b3c4d"}, "process supervised by fleetdeck"),
    ],
)
def test_each_kind_and_source_in_words(kind: str, labels: dict[str, str], expected: str) -> None:
    assert agent_source(agent(kind, **labels)) == expected


def test_label_text_is_shown_safe_and_cut_never_obeyed() -> None:
    hostile = agent("otel", source="otel", service="shop\x1b]0;pwned\x07", sdk="\u202epython")
    line = agent_source(hostile)
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert line.startswith("OpenTelemetry · service shop") and "pwned" in line
    long = agent_source(agent("otel", source="otel", service="s" * 500))
    assert f"service {'s' * (LABEL_MAX - 1)}…" in long and len(long) < 100
    # a session id of controls alone names no session, and shows none of them
    controls = agent("reporting", source="codex", session_id="\x1b[2J")
    assert agent_source(controls).startswith("Codex session ␛")


def test_the_detail_table_has_the_source_line() -> None:
    from rich.console import Console

    from backends.model import NodeInfo, NodeSnapshot

    snap = NodeSnapshot(node=NodeInfo(id="n", name="n", backend="local"), observed_at=0.0)
    console = Console(width=120, record=True, color_system=None)
    console.print(agent_table(agent("otel", **OTEL), snap, 0.0))
    text = console.export_text()
    source_line = next(line for line in text.splitlines() if line.startswith("Source"))
    assert source_line.split(None, 1)[1].strip() == "OpenTelemetry · service shop-agent · python 1.45.2 SDK"


async def open_agent(pilot: Any, agent_id: str) -> AgentScreen:
    from widgets.agents_table import AgentsTable

    table = pilot.app.screen.query_one(AgentsTable)
    keys = table.row_keys
    table.move_cursor(row=next(i for i, k in enumerate(keys) if k.endswith(f"/{agent_id}")), animate=False)
    table.focus()
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, AgentScreen) and screen.agent_id == agent_id
    return screen


async def test_an_otel_agent_from_a_real_store_says_opentelemetry(tmp_path: Path) -> None:
    from console.app import FleetDeckApp
    from console.core.clock import SystemClock
    from console.core.config import Config
    from console.core.fleet_setup import local_link

    state_dir = tmp_path / "node"
    with Store(state_dir) as store:
        result = store.record_telemetry(
            [
                TelemetryWrite(
                    "svc",
                    {"source": "otel", "service": "svc", "sdk": "python 1.45.2"},
                    figures={
                        "tokens_in_total": (1200.0, "tokens", "counter"),
                        "cost_usd_total": (0.42, "usd", "counter"),
                    },
                )
            ],
            max_agents=10,
        )
        assert result.stored == ("svc",)
    clock = SystemClock()
    link = local_link(clock, state_dir=str(state_dir))
    app = FleetDeckApp([link], config=Config(), clock=clock, frozen=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 30
            while link.snapshot is None or not any(a.id == "svc" for a in link.snapshot.agents):
                assert time.monotonic() < deadline, "the local node never showed the otel agent"
                await pilot.pause(0.1)
            await pilot.pause()
            await open_agent(pilot, "svc")
            lines = screen_text(app).splitlines()
            source = next(line for line in lines if "Source" in line)
            assert "OpenTelemetry · service svc · python 1.45.2 SDK" in source
            assert any("Kind" in line and "otel" in line for line in lines)
    finally:
        await link.backend.close()


async def test_a_demo_agent_says_how_it_reports(frozen_demo_app_async) -> None:
    app = await frozen_demo_app_async(screen="node")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        link = app.screen.link
        kinds = {a.id: a.kind for a in link.snapshot.agents}
        assert kinds["coder-01"] == "reporting" and kinds["retriever-01"] == "actor"
        await open_agent(pilot, "coder-01")
        text = screen_text(app)
        assert "reports through fleetdeck report / AgentReporter" in text
        await pilot.press("escape")
        await pilot.pause()
        await open_agent(pilot, "retriever-01")
        assert "Source" in screen_text(app) and "Ray actor" in screen_text(app)


def test_a_hook_session_that_telemetry_joins_says_both(tmp_path: Path) -> None:
    """Claude Code's hooks register the session; its telemetry (same agent id) merges its labels in."""
    with Store(tmp_path) as store:
        store.register_agent("claude-1a2b3c4d", kind="reporting", state="running", labels=HOOK)
        assert agent_source(store.get_agent("claude-1a2b3c4d")).endswith("(hooks) · project shop")
        labels = {"source": "claude-code", "session_id": HOOK["session_id"], **TELEMETRY}
        store.record_telemetry([TelemetryWrite("claude-1a2b3c4d", labels)], max_agents=10)
        line = agent_source(store.get_agent("claude-1a2b3c4d"))
    assert line == "Claude Code session 1a2b3c4d (hooks + telemetry) · project shop"
