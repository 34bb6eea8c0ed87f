"""One condition, one alert, one count, everywhere; and a flap count that counts flaps, nothing else.

The local node judges heartbeat age and error lines into each agent's health. The console must not judge
them a second time from its own log buffer and clock: that gave "12 errors in the last minute" next to
"12 error lines in the last minute" (or 15 next to 11) and a stale heartbeat twice. Checked on a real agent
under ``fleetdeck run``, through ``fleetdeck status`` (text and ``--json``) and the console's Alerts panel.

The alert book keeps episodes across runs of the console. Starting it again is not a clear: an alert open
when the console quit and open when it came back has flapped zero times, while one that really cleared and
came back counts twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.model import Agent, LogRecord, NodeInfo, NodeSnapshot, Target
from console.app import FleetDeckApp
from console.core.alerts import node_alerts, recent_error_counts
from console.core.clock import FrozenClock, SystemClock
from console.core.config import Config, NodeConfig, Thresholds
from console.core.fleet_setup import configured_links, demo_links, local_link
from console.core.node_link import NodeLink
from console.core.status import fleet_status
from console.messages import NodeRefreshed
from widgets.attention import AttentionList

from .agents.local_node import LocalNode, wait_for
from .conftest import T0
from .serving import ServedNode, same_state_home

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses signals")

WIDE = (160, 48)
ERROR_LINES = 12  # over the warning threshold (10 a minute), under the critical one (50)
# Prints its error lines at once, then stays up and quiet: the count is the same for a whole minute.
NOISY_AGENT = (
    "import time\n"
    f"for i in range({ERROR_LINES}):\n"
    "    print(f'ERROR: step {i} failed', flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def node(tmp_path: Path, cli_env: dict[str, str]):
    local = LocalNode(tmp_path, cli_env)
    yield local
    local.reap()


def start_noisy_agent(node: LocalNode, name: str = "noisy") -> None:
    node.start(name, sys.executable, "-c", NOISY_AGENT)
    node.wait_agent(
        name,
        lambda a: f"{ERROR_LINES} errors in the last minute" in (a["health_reason"] or ""),
        "judged on its error lines",
    )


def status_json(node: LocalNode) -> tuple[int, dict[str, Any]]:
    result = node.cli("status", "--json")
    return result.returncode, json.loads(result.stdout)


def alerts_about(report: dict[str, Any], subject: str) -> list[dict[str, Any]]:
    return [a for n in report["nodes"] for a in n["alerts"] if a["subject"] == subject]


# --- 1. one condition, one alert ---------------------------------------------------------------------


@linux_only
def test_error_lines_are_one_alert_with_one_count_in_status_and_json(node: LocalNode) -> None:
    start_noisy_agent(node)

    text = node.cli("status")
    lines = [line for line in text.stdout.splitlines() if "agent:noisy" in line]
    assert lines == [f"  ▲ warning  local agent:noisy: {ERROR_LINES} errors in the last minute"], text.stdout
    assert text.returncode == 1  # warning

    code, report = status_json(node)
    assert code == 1 and report["state"] == "warning"
    assert [(a["severity"], a["rule"], a["reason"]) for a in alerts_about(report, "agent:noisy")] == [
        ("warning", "agent_health", f"{ERROR_LINES} errors in the last minute")
    ]


# A crash is one error however deep its stack: 9 error lines and one traceback of many lines are 10 errors.
DEEP_TRACEBACK_AGENT = (
    "import sys, time, traceback\n"
    "def dive(n):\n"
    "    if n == 0:\n"
    "        raise RuntimeError('deep down')\n"
    "    dive(n - 1)\n"
    "try:\n"
    "    dive(40)\n"
    "except RuntimeError:\n"
    "    traceback.print_exc()\n"
    "    sys.stderr.flush()\n"
    "for i in range(9):\n"
    "    print(f'ERROR: step {i} failed', flush=True)\n"
    "print('all said', flush=True)\n"
    "time.sleep(600)\n"
)


@linux_only
def test_a_traceback_counts_as_one_error_however_deep(node: LocalNode) -> None:
    node.start("deep", sys.executable, "-c", DEEP_TRACEBACK_AGENT)
    wait_for(lambda: any(r["message"] == "all said" for r in node.logs("--agent", "deep")), "all logged")
    errors = [r for r in node.logs("--agent", "deep") if r["level"] == "error"]
    assert len(errors) >= 9 + 8  # every line of the traceback is shown as an error line...

    text = node.cli("status")
    lines = [line for line in text.stdout.splitlines() if "agent:deep" in line]
    # ...and counted as one error
    assert lines == ["  ▲ warning  local agent:deep: 10 errors in the last minute"], text.stdout


@linux_only
def test_a_stale_heartbeat_is_one_alert(node: LocalNode) -> None:
    config = Path(node.env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[thresholds]\nheartbeat_stale_s = [1, 3600]\n")  # stale after 1 s, critical never
    node.ok("report", "--agent", "quiet", "--state", "running", "--message", "one heartbeat, then silence")

    def stale() -> list[dict[str, Any]] | None:
        alerts = alerts_about(status_json(node)[1], "agent:quiet")
        return alerts if any("no heartbeat for" in a["reason"] for a in alerts) else None

    alerts = wait_for(stale, "the quiet agent's heartbeat to go stale")
    assert len(alerts) == 1, alerts
    assert alerts[0]["severity"] == "warning"
    assert re.fullmatch(r"no heartbeat for \d+ s", alerts[0]["reason"]), alerts[0]
    lines = [line for line in node.cli("status").stdout.splitlines() if "agent:quiet" in line]
    assert len(lines) == 1 and "no heartbeat for" in lines[0], lines


@linux_only
def test_a_served_local_node_is_judged_once_over_http(node: LocalNode) -> None:
    start_noisy_agent(node)
    served = ServedNode("--listen", "127.0.0.1:0", env=same_state_home(node.env), cwd=node.tmp_path).start()
    try:
        config = Config(nodes=(NodeConfig(name="remote", backend="http", url=served.url),))
        links = configured_links(config, clock=time.time)
        report = asyncio.run(fleet_status(links, config, time.time)).as_json()
    finally:
        served.stop()
    assert [(a["rule"], a["reason"]) for a in alerts_about(report, "agent:noisy")] == [
        ("agent_health", f"{ERROR_LINES} errors in the last minute")
    ]


async def wait_until(pilot: Any, check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Let the app run until ``check`` is truthy (the console polls and streams in its own workers)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)
    return found


def error_lines_buffered(link: NodeLink, source: str) -> int:
    return sum(1 for r in link.logs if r.source == source and r.level == "error")


def attention_rows(app: FleetDeckApp) -> list[list[str]]:
    table = app.screen.query_one(AttentionList)
    return [[cell.plain for cell in table.get_row(key)] for key in table.row_keys]


@linux_only
async def test_the_console_alerts_panel_says_the_condition_once_with_the_count_status_gives(
    node: LocalNode,
) -> None:
    start_noisy_agent(node)
    link = local_link(SystemClock(), state_dir=str(node.state_dir), config=Config())
    app = FleetDeckApp([link], config=Config(), clock=SystemClock())
    async with app.run_test(size=WIDE) as pilot:
        # The console has read every error line, and polled the node after: both its rules have had their say.
        await wait_until(pilot, lambda: error_lines_buffered(link, "noisy") >= ERROR_LINES, "the error lines")
        read_at = time.time()
        await wait_until(pilot, lambda: link.snapshot and link.snapshot.observed_at > read_at, "a poll after")
        await pilot.pause()
        shown = [row[-1] for row in attention_rows(app) if "agent:noisy" in row]  # the reason is last
    assert shown == [f"{ERROR_LINES} errors in the last minute"]
    _, report = status_json(node)
    assert [a["reason"] for a in alerts_about(report, "agent:noisy")] == shown, "the same words and count"


# --- 2. a restart of the console is not a flap ----------------------------------------------------------


def demo_app(clock: FrozenClock) -> FleetDeckApp:
    """The console as ``fleetdeck demo`` starts it: not primed, not frozen, so it keeps the state dir."""
    links = demo_links(seed=7, nodes=3, agents=80, clock=clock)
    return FleetDeckApp(links, config=Config(), clock=clock)


def gate_key(node: str) -> str:
    return f"{node}/phase:p3-scale-out/gate_no_go"


def notes_shown(app: FleetDeckApp) -> dict[str, str]:
    """Every row of the Fleet screen's Attention list: key -> its note cell (empty, a flap count, "ack")."""
    table = app.screen.query_one(AttentionList)
    return {key: table.get_row(key)[4].plain for key in table.row_keys}


async def first_notes(pilot: Any, app: FleetDeckApp) -> dict[str, str]:
    """The notes once every node has answered and the list shows every alert the book holds open."""
    await wait_until(pilot, lambda: all(link.snapshot for link in app.links.values()), "every node polled")
    await pilot.pause()
    # The list repaints in its own time: one painted after the first node's poll holds only its alerts.
    return await wait_until(
        pilot, lambda: gate_key("gpu-prod-01") in (shown := notes_shown(app)) and shown, "the list filled"
    )


async def repoll(pilot: Any, app: FleetDeckApp, link: NodeLink, clock: FrozenClock) -> None:
    """A few seconds on, the node polled and its screens repainted (as after an operator's action)."""
    clock.advance(5)
    assert await link.poll(timeout=10)
    app.post_message(NodeRefreshed(link))
    await pilot.pause()


async def test_two_runs_of_the_console_count_no_flap_and_a_real_one_counts(isolated_dirs: Path) -> None:
    clock = FrozenClock(T0)
    first = demo_app(clock)
    async with first.run_test(size=WIDE) as pilot:
        notes = await first_notes(pilot, first)
        assert gate_key("gpu-prod-01") in notes and set(notes.values()) == {""}

    clock.advance(30)
    second = demo_app(clock)
    async with second.run_test(size=WIDE) as pilot:
        notes = await first_notes(pilot, second)
        assert gate_key("gpu-prod-01") in notes
        assert set(notes.values()) == {""}, f"nothing cleared, yet: {notes}"

        # A real flap: the phase paused (its gate is no longer in force), then resumed.
        link, gate = second.links["gpu-prod-01"], gate_key("gpu-prod-01")
        phase = Target(kind="phase", id="p3-scale-out")
        await link.backend.pause(phase, operator="tester")
        await repoll(pilot, second, link, clock)
        await wait_until(pilot, lambda: gate not in notes_shown(second), "the gate alert cleared")
        await link.backend.resume(phase, operator="tester")
        await repoll(pilot, second, link, clock)
        notes = await wait_until(pilot, lambda: gate in notes_shown(second), "the gate alert back")
        notes = notes_shown(second)
        assert notes.pop(gate) == "×2"
        assert set(notes.values()) == {""}, "the others never cleared"

    clock.advance(30)
    third = demo_app(clock)
    async with third.run_test(size=WIDE) as pilot:
        notes = await first_notes(pilot, third)
        assert notes.pop(gate) == "×2", "the one flap is remembered, and not counted again"
        assert set(notes.values()) == {""}


# --- the rules on their own: what a node judged is left to it ------------------------------------------


def test_the_console_judges_only_what_the_node_leaves_out() -> None:
    stale = Agent(
        id="a1",
        name="a1",
        state="running",
        health="degraded",
        health_reason="no heartbeat for 20 s",
        last_heartbeat=T0 - 20,
    )
    noisy = Agent(id="a2", name="a2", state="running", health="healthy", last_heartbeat=T0)
    sources = ["a2"] * 12 + ["node"] * 12  # the node's own lines are no agent's: the console judges them
    logs = [
        LogRecord(seq=i + 1, ts=T0 - 1, level="error", source=source, message="boom")
        for i, source in enumerate(sources)
    ]
    counts = recent_error_counts(logs, T0)

    def rules(info: NodeInfo) -> list[tuple[str, str]]:
        snap = NodeSnapshot(node=info, observed_at=T0, agents=(stale, noisy))
        return [(a.subject, a.rule) for a in node_alerts(snap, Thresholds(), T0, counts)]

    judging = NodeInfo(
        id="n", name="n", backend="local", health_checks=frozenset(("heartbeat", "error_rate"))
    )
    assert sorted(rules(judging)) == [("agent:a1", "agent_health"), ("node", "error_rate")]
    silent = NodeInfo(id="n", name="n", backend="ray")  # its health says nothing of heartbeats or errors
    assert ("agent:a2", "error_rate") in rules(silent) and ("agent:a1", "heartbeat") in rules(silent)


def test_the_local_node_says_what_its_health_judges(tmp_path: Path) -> None:
    link = local_link(SystemClock(), state_dir=str(tmp_path / "node"))

    async def poll_once() -> bool:
        try:
            return await link.poll(timeout=10)
        finally:
            await link.backend.close()

    assert asyncio.run(poll_once()) and link.snapshot is not None
    assert link.snapshot.node.health_checks == {"heartbeat", "error_rate"}
