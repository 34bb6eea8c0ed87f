"""``fleetdeck snapshot`` prepares only what its screen shows: a node's screen gets that node's history and
logs, and the fleet's other nodes one snapshot each, yet renders exactly what a fleet primed in full would."""

from __future__ import annotations

import asyncio

import pytest

from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.snapshot import HISTORY_S, HISTORY_STEP_S, prime, render_primed, render_snapshot, shown_nodes

from .conftest import T0

SIZE = (160, 45)


def test_a_node_screen_primes_its_node_in_full_and_the_others_once() -> None:
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=4, agents=12, clock=clock)
    shown = shown_nodes("node", links)
    assert shown == {links[0].name}
    asyncio.run(prime(links, clock, shown=shown))
    first, *others = links
    assert len(first.cpu_history) == HISTORY_S // HISTORY_STEP_S + 1
    assert len(first.logs) > 0
    for link in others:
        assert link.snapshot is not None and link.snapshot.observed_at == T0  # known, as of now
        assert len(link.cpu_history) == 1
        assert len(link.logs) == 0  # no log of a node off screen is simulated or fetched
    assert clock.now == T0


@pytest.mark.parametrize("screen", ["node", "agent"])
def test_a_screen_primed_for_what_it_shows_renders_as_one_primed_in_full(screen: str) -> None:
    def render(in_full: bool) -> str:
        clock = FrozenClock(T0)
        links = demo_links(seed=7, nodes=4, agents=12, clock=clock)
        options = {"config": Config(), "clock": clock, "screen": screen, "size": SIZE, "fmt": "txt"}

        async def go() -> str:
            if not in_full:
                return await render_snapshot(links, **options)
            await prime(links, clock)
            return await render_primed(links, **options)

        return asyncio.run(go())

    primed_for_the_screen = render(in_full=False)
    assert "gpu-" in primed_for_the_screen
    assert primed_for_the_screen == render(in_full=True)


@pytest.mark.parametrize("screen", ["fleet", "agents", "logs", "audit", "help"])
def test_screens_that_show_every_node_prime_every_node(screen: str) -> None:
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=2, agents=4, clock=clock)
    assert shown_nodes(screen, links) is None
