"""Snapshot tests (pytest-textual-snapshot): every screen of the demo fleet, frozen, at both design sizes,
and every built-in theme once on the Node screen.

The demo fleet (seed 7, three nodes, 80 agents) is primed and frozen at 2026-01-01 00:00 UTC, so each
screenshot is the same on every run. Update with ``pytest tests/test_snapshots.py --snapshot-update`` only
when a change is meant, and look at the SVGs in ``tests/__snapshots__/test_snapshots/`` before accepting.
"""

from __future__ import annotations

import pytest

SCREENS = ("fleet", "node", "agent", "logs", "audit", "help")
SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
THEMES = ("fleetdeck-dark", "fleetdeck-light", "fleetdeck-high-contrast", "ansi-dark")


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, frozen_demo_app, screen: str, size: str) -> None:
    assert snap_compare(frozen_demo_app(screen=screen), terminal_size=SIZES[size])


@pytest.mark.parametrize("theme", THEMES)
def test_node_screen_theme(snap_compare, frozen_demo_app, theme: str) -> None:
    app = frozen_demo_app(screen="node", theme=theme)
    assert app.theme == theme  # a typo here would silently fall back to the default theme
    assert snap_compare(app, terminal_size=(120, 40))


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_production_rollback_dialog(snap_compare, frozen_demo_app, size: str) -> None:
    """The node screen opens on gpu-prod-01 (production): r, pick the first checkpoint, see the preview."""
    assert snap_compare(frozen_demo_app(screen="node"), terminal_size=SIZES[size], press=["r", "enter"])


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_dispatch_dialog(snap_compare, frozen_demo_app, size: str) -> None:
    assert snap_compare(frozen_demo_app(screen="node"), terminal_size=SIZES[size], press=["d"])
