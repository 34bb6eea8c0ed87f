"""Headless rendering of any screen to SVG or plain text, for READMEs, demos and CI.

With a frozen clock the result is deterministic: the fleet is sampled over the minute before ``--at`` (so
sparklines have a history), the logs are read up to ``--at``, and the app runs without its polling workers.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from textual.app import App

from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.node_link import NodeLink
from console.core.start_screens import StartScreen

# Textual has no public way to render a screen as text: screen_text composes it as the driver does.
TEXTUAL_PRIVATE_PARTS = ("textual.screen.Screen._compositor", "textual.app.App._background_screens")
HISTORY_S = 60
HISTORY_STEP_S = 2


async def prime(links: Sequence[NodeLink], clock: FrozenClock, history_s: int = HISTORY_S) -> None:
    """Fill each link's snapshot history and log buffer as a live console would have by ``clock.now``."""
    at = clock.now
    for offset in range(history_s, -1, -HISTORY_STEP_S):
        clock.set(at - offset)
        for link in links:
            await link.poll(timeout=30.0)
    clock.set(at)
    for link in links:
        if link.backend.supports("logs"):
            try:
                link.add_logs([r async for r in link.backend.logs(since_seq=0, follow=False)])
            except Exception as exc:  # a node that cannot stream logs still renders
                link.log_error = str(exc)
    for link in links:  # the Audit screen fetches in a worker; a snapshot must not depend on its timing
        await link.audit.fetch(link.backend, timeout=30.0, clock=clock)


def build_app(
    links: Sequence[NodeLink],
    *,
    config: Config,
    clock: FrozenClock,
    screen: StartScreen | None,
    theme: str | None = None,
):
    from console.app import FleetDeckApp

    return FleetDeckApp(links, config=config, clock=clock, frozen=True, theme=theme, start_screen=screen)


async def render_snapshot(
    links: Sequence[NodeLink],
    *,
    config: Config,
    clock: FrozenClock,
    screen: StartScreen,
    size: tuple[int, int],
    fmt: str,
    theme: str | None = None,
) -> str:
    await prime(links, clock)
    app = build_app(links, config=config, clock=clock, screen=screen, theme=theme)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        if fmt == "svg":
            return app.export_screenshot(title=f"fleetdeck · {screen}")
        return screen_text(app)


def screen_text(app: App[None]) -> str:
    """The screen as plain text, one line per row, trailing spaces trimmed."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        color_system=None,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"
