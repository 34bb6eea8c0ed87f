"""What keeps the console responsive at fleet scale: repaints shared by nodes going stale together, and the
garbage-collector tuning the CLI applies once every node has been polled."""

from __future__ import annotations

import gc
import time
from typing import Any

from backends.errors import Unreachable
from console.app import GC_YOUNG_THRESHOLD, FleetDeckApp
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.core.node_link import fleet_log_capacity
from console.screens.all_agents import AllAgentsScreen
from console.snapshot import screen_text


async def test_nodes_going_offline_together_share_repaints() -> None:
    links = demo_links(seed=7, nodes=20, agents=200, clock=time.time)
    app = FleetDeckApp(links, config=Config(refresh_s=0.1), clock=time.time, start_screen="agents")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause(1.0)
        screen = app.screen
        assert isinstance(screen, AllAgentsScreen)
        repaints: list[float] = []
        original = screen.repaint

        def counted() -> None:
            repaints.append(time.monotonic())
            original()

        screen.repaint = counted  # type: ignore[method-assign]

        async def refuse() -> Any:
            raise Unreachable("connection refused")

        for link in links:  # the network drops: every node refuses at once
            link.backend.snapshot = refuse  # type: ignore[method-assign]
        for _ in range(50):
            await pilot.pause(0.1)
            if all(screen.freshness(link)[0] == "offline" for link in links):
                break
        await pilot.pause(0.6)
        assert all(screen.freshness(link)[0] == "offline" for link in links)
        assert "0/20 nodes live" in screen_text(app)
        assert 1 <= len(repaints) < len(links) // 2  # news, but shared: not one repaint per node


async def test_the_cli_console_freezes_its_heap_after_the_first_polls() -> None:
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    links = demo_links(seed=7, nodes=3, agents=30, clock=time.time)
    app = FleetDeckApp(links, config=Config(refresh_s=0.2), clock=time.time, tune_gc=True)
    try:
        async with app.run_test() as pilot:
            for _ in range(50):
                await pilot.pause(0.1)
                if gc.get_freeze_count() > before_frozen:
                    break
            assert gc.get_freeze_count() > before_frozen
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before_threshold)


async def test_an_app_in_a_test_run_leaves_the_collector_alone() -> None:
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    links = demo_links(seed=7, nodes=3, agents=30, clock=time.time)
    app = FleetDeckApp(links, config=Config(refresh_s=0.2), clock=time.time)
    async with app.run_test() as pilot:
        await pilot.pause(0.8)
        assert all(link.snapshot is not None for link in links)
        assert (gc.get_threshold(), gc.get_freeze_count()) == (before_threshold, before_frozen)


def test_a_big_fleet_keeps_fewer_log_lines_per_node() -> None:
    assert [fleet_log_capacity(n) for n in (1, 10, 20, 100, 1000)] == [10_000, 10_000, 5_000, 1_000, 1_000]
    big = demo_links(seed=7, nodes=100, agents=200, clock=time.time)
    assert {link.logs.maxlen for link in big} == {1_000}  # a hundred nodes: 100,000 lines in all
    small = demo_links(seed=7, nodes=3, agents=30, clock=time.time)
    assert {link.logs.maxlen for link in small} == {10_000}
