"""Headless rendering of any screen to SVG or plain text, for READMEs, demos and CI.

With a frozen clock the result is deterministic: the fleet is sampled over the minute before ``--at`` (so
sparklines have a history), the logs are read up to ``--at``, and the app runs without its polling workers.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence

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


async def prime(
    links: Sequence[NodeLink],
    clock: FrozenClock,
    history_s: int = HISTORY_S,
    shown: Collection[str] | None = None,
) -> None:
    """Fill each link's snapshot history and log buffer as a live console would have by ``clock.now``.

    ``shown``: the nodes the screen shows (None: all). Only they get a history and their logs; any other is
    polled once, at ``clock.now``, so the screens beneath know it. A hundred-node demo rendered on one
    node's screen then simulates one node's last fifteen minutes of logs, not a hundred."""
    at = clock.now
    full = [link for link in links if shown is None or link.name in shown]
    for offset in range(history_s, 0, -HISTORY_STEP_S):
        clock.set(at - offset)
        for link in full:
            await link.poll(timeout=30.0)
    clock.set(at)
    for link in links:
        await link.poll(timeout=30.0)
    for link in full:
        if link.backend.supports("logs"):
            try:
                link.add_logs([r async for r in link.backend.logs(since_seq=0, follow=False)])
            except Exception as exc:  # a node that cannot stream logs still renders
                link.log_error = str(exc)
    for link in links:  # the Audit screen fetches in a worker; a snapshot must not depend on its timing
        await link.audit.fetch(link.backend, timeout=30.0, clock=clock)


def shown_nodes(screen: StartScreen, links: Sequence[NodeLink]) -> set[str] | None:
    """The nodes a start screen shows (None: all of them): the Node and Agent screens show the first."""
    if screen in ("node", "agent") and links:
        return {links[0].name}
    return None


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
    await prime(links, clock, shown=shown_nodes(screen, links))
    return await render_primed(
        links, config=config, clock=clock, screen=screen, size=size, fmt=fmt, theme=theme
    )


async def render_primed(
    links: Sequence[NodeLink],
    *,
    config: Config,
    clock: FrozenClock,
    screen: StartScreen,
    size: tuple[int, int],
    fmt: str,
    theme: str | None = None,
) -> str:
    """Render ``screen`` of links already primed."""
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
