"""The console over real node servers (`fleetdeck node serve` subprocesses and in-process uvicorn apps):
a node killed and restarted, a node that answers slowly, a node that answers garbage, and the merged
Fleet, All agents and All logs screens over three servers."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.demo import demo_fleet
from backends.node_server.app import create_app
from console.app import FleetDeckApp
from console.core.config import Config, NodeConfig
from console.core.fleet_setup import configured_links
from console.screens.help import HelpScreen
from console.snapshot import screen_text
from tests.agents.local_node import LocalNode
from tests.serving import ServedNode, same_state_home, serve_asgi

REFRESH_S = 0.3


def http_config(urls: dict[str, str]) -> Config:
    nodes = tuple(NodeConfig(name=name, backend="http", url=url) for name, url in urls.items())
    return Config(operator="tester", refresh_s=REFRESH_S, nodes=nodes)


def console_on(urls: dict[str, str]) -> FleetDeckApp:
    config = http_config(urls)
    return FleetDeckApp(configured_links(config, clock=time.time), config=config, clock=time.time)


async def until(pilot: Any, check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Let the app run until ``check()`` is truthy; fail naming ``what``. A test deadline, not a timing."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def kind(app: FleetDeckApp, name: str) -> str:
    return app.links[name].freshness(app.refresh_s).kind


TICK = re.compile(r"tick (\d+)")


def ticks(app: FleetDeckApp, node: str, agent: str) -> list[int]:
    return [int(m[1]) for r in app.links[node].logs if r.source == agent and (m := TICK.search(r.message))]


# --- the "done when": two served local nodes, one killed and brought back ------------------------


@pytest.fixture
def two_local_nodes(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[list[LocalNode]]:
    nodes = []
    for name in ("east", "west"):
        (tmp_path / name).mkdir()
        nodes.append(LocalNode(tmp_path / name, cli_env))
    try:
        yield nodes
    finally:
        for node in nodes:
            node.reap()


async def test_a_killed_node_goes_offline_and_comes_back_without_losing_a_line(
    two_local_nodes: list[LocalNode],
) -> None:
    east_node, west_node = two_local_nodes
    for node, agent in ((east_node, "ticker-east"), (west_node, "ticker-west")):
        node.start_python(agent, "ticker.py", "0.05")
        node.wait_running(agent)
    # served with this process's state home: the console here finds the owner's local operator token
    east = ServedNode(
        "--listen", "127.0.0.1:0", env=same_state_home(east_node.env), cwd=east_node.tmp_path
    ).start()
    west = ServedNode(
        "--listen", "127.0.0.1:0", env=same_state_home(west_node.env), cwd=west_node.tmp_path
    ).start()
    try:
        app = console_on({"east": east.url, "west": west.url})
        async with app.run_test(size=(160, 48)) as pilot:
            await until(
                pilot,
                lambda: ticks(app, "east", "ticker-east") and ticks(app, "west", "ticker-west"),
                "both nodes' agents and their logs",
            )
            # a link that has its first snapshot may say "connecting" for a refresh more on a busy machine
            await until(pilot, lambda: {kind(app, "east"), kind(app, "west")} == {"live"}, "both nodes live")
            assert "ticker-east" in {a.id for a in app.links["east"].snapshot.agents}  # type: ignore[union-attr]

            east.kill()
            await until(pilot, lambda: kind(app, "east") == "offline", "east shown offline")
            # painted a moment after the link learns it (a busy machine may take a frame or two)
            await until(pilot, lambda: "offline" in screen_text(app), "the screen to say east is offline")
            west_seen = app.links["west"].received_at
            west_ticks = len(ticks(app, "west", "ticker-west"))
            await until(
                pilot,
                lambda: (
                    (app.links["west"].received_at or 0) > (west_seen or 0)
                    and len(ticks(app, "west", "ticker-west")) > west_ticks
                ),
                "west to keep updating while east is down",
            )
            assert kind(app, "west") == "live"
            # the agent on east keeps writing into its store while nobody serves it
            await pilot.pause(1.0)

            east.restart()
            await until(pilot, lambda: kind(app, "east") == "live", "east back live")
            last_before_restart = max(ticks(app, "east", "ticker-east"))
            await until(
                pilot,
                lambda: max(ticks(app, "east", "ticker-east")) > last_before_restart + 40,
                "east's log stream to resume",
            )
            # every line the agent printed, from the first the console saw to the last: none lost, none twice
            seen = ticks(app, "east", "ticker-east")
            assert seen == list(range(seen[0], seen[0] + len(seen)))
            seqs = [r.seq for r in app.links["east"].logs]
            assert seqs == sorted(set(seqs))
    finally:
        east.stop()
        west.stop()


# --- a node that answers slowly ---------------------------------------------------------------------------


class Throttle:
    """Wraps an ASGI app: while ``delay`` is set, snapshot requests wait that long before being served."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delay = 0.0
        self.waiting = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/snapshot" and self.delay:
            self.waiting += 1
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.waiting -= 1
        await self.app(scope, receive, send)


def served_demo_node(index: int) -> Any:
    return create_app(demo_fleet(seed=7, nodes=3, agents=30, clock=time.time)[index])


async def test_a_slow_node_turns_stale_and_the_console_stays_responsive() -> None:
    slow_app = Throttle(served_demo_node(0))
    with serve_asgi(slow_app) as slow_url, serve_asgi(served_demo_node(1)) as fast_url:
        app = console_on({"slow": slow_url, "fast": fast_url})
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: kind(app, "slow") == kind(app, "fast") == "live", "both nodes live")
            app.open_node(app.links["slow"])
            await pilot.pause()
            slow_app.delay = 60.0
            await until(pilot, lambda: kind(app, "slow") == "stale", "the slow node shown stale")
            text = app.links["slow"].freshness(app.refresh_s).text
            assert text.startswith("stale ") and "timed out" in text
            assert app.screen.has_class("-data-old")  # its last data is greyed, not passed off as live
            assert kind(app, "fast") == "live"

            # keys work while a snapshot request hangs on the slow node
            await until(pilot, lambda: slow_app.waiting > 0, "a request stuck on the slow node")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            assert slow_app.waiting > 0

            slow_app.delay = 0.0
            await until(pilot, lambda: kind(app, "slow") == "live", "the slow node live again")
            await until(pilot, lambda: not app.screen.has_class("-data-old"), "the panels no longer greyed")


# --- a node that answers garbage ----------------------------------------------------------------------------


async def wrong_types(scope: Any, receive: Any, send: Any) -> None:
    """Answers every request with JSON of the wrong shape, as a different service on that port might."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b'{"id": 5, "name": ["not", "a", "name"], "role": "admin", "node": null}'
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def test_a_node_answering_garbage_is_marked_and_the_others_carry_on() -> None:
    with serve_asgi(wrong_types) as bad_url, serve_asgi(served_demo_node(1)) as good_url:
        app = console_on({"bad": bad_url, "good": good_url})
        async with app.run_test(size=(120, 36)) as pilot:
            await until(
                pilot, lambda: kind(app, "bad") == "offline" and kind(app, "good") == "live", "bad offline"
            )
            reason = app.links["bad"].error or ""
            assert "fleetdeck" in reason.lower() or "expected" in reason.lower(), reason
            # news such as a node going offline is painted within a moment (several share one repaint)
            await until(pilot, lambda: "offline" in screen_text(app), "the fleet screen shows it offline")
            assert "Traceback" not in screen_text(app)
            good = app.links["good"].snapshot
            assert good is not None and len(good.agents) > 0


# --- the merged screens over three real servers -------------------------------------------------------------


@pytest.fixture
def three_demo_servers(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The demo fleet's three nodes, each served by its own `fleetdeck node serve --demo` process."""
    servers = [
        ServedNode(
            "--demo",
            "--demo-node",
            str(i),
            "--agents",
            "6",
            "--listen",
            "127.0.0.1:0",
            env=same_state_home(cli_env),
        )
        for i in (1, 2, 3)
    ]
    try:
        for server in servers:
            server.start()
        yield {f"site-{i}": server.url for i, server in enumerate(servers, 1)}
    finally:
        for server in servers:
            server.stop()


async def test_fleet_all_agents_and_all_logs_merge_three_servers(three_demo_servers: dict[str, str]) -> None:
    app = console_on(three_demo_servers)
    names = sorted(three_demo_servers)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: all(kind(app, n) == "live" for n in names), "three live nodes")
        await until(pilot, lambda: all(app.links[n].logs for n in names), "logs from every node")
        fleet = screen_text(app)
        assert all(name in fleet for name in names) and "3 nodes" in fleet

        app.open_all_agents()
        await pilot.pause()
        agents = {(n, a.name) for n in names for a in app.links[n].snapshot.agents}  # type: ignore[union-attr]
        assert len(agents) == 18
        rows = screen_text(app).splitlines()
        for node, agent in agents:  # every agent of every node, on a row that names its node
            assert any(node in row and agent in row for row in rows), (node, agent)

        await pilot.press("escape")
        app.open_logs(None)
        await pilot.pause(0.3)
        lines = screen_text(app).splitlines()
        for node in names:  # each node's lines, labelled by node and by agent
            sources = {r.source for r in app.links[node].logs}
            assert any(node in line and any(s in line for s in sources) for line in lines), node
