"""A screen under another one does no work: the Fleet screen below a start screen is painted when it is
shown, not as soon as the app starts (with a 50,000-agent fleet's alerts that held the console for
seconds)."""

from __future__ import annotations

from typing import Any

from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
from console.screens.fleet import FleetScreen
from console.snapshot import build_app, prime
from widgets.fleet_table import FleetTable

from .conftest import T0


async def test_the_fleet_screen_under_the_start_screen_is_painted_only_when_shown() -> None:
    clock = FrozenClock(T0)
    links = demo_links(seed=7, nodes=3, agents=80, clock=clock)
    await prime(links, clock)
    app: Any = build_app(links, config=Config(operator="alice"), clock=clock, screen="agents")  # type: ignore[arg-type]
    painted: list[bool] = []
    original = FleetScreen.repaint

    def counted(self: FleetScreen) -> None:
        painted.append(True)
        original(self)

    FleetScreen.repaint = counted  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.pause(0.2)
            fleet = next(s for s in app.screen_stack if isinstance(s, FleetScreen))
            assert not painted and fleet.query_one(FleetTable).row_count == 0
            await pilot.press("escape")  # back to the fleet: it catches up at once
            await pilot.pause()
            assert isinstance(app.screen, FleetScreen)
            assert painted and app.screen.query_one(FleetTable).row_count == 3
    finally:
        FleetScreen.repaint = original  # type: ignore[method-assign]
