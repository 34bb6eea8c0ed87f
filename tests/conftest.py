"""Shared fixtures: a frozen, primed demo fleet app for snapshot and Pilot tests, and isolated XDG dirs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Before Textual is imported anywhere: no animation may make a screenshot depend on timing.
os.environ["TEXTUAL_ANIMATIONS"] = "none"

from console.clock import FrozenClock
from console.config import Config
from console.fleet_setup import demo_links
from console.snapshot import build_app, prime

T0 = 1767225600.0  # 2026-01-01 00:00 UTC, on the hour


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config, theme or state from the machine running the tests may leak into them."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("FLEETDECK_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


AppFactory = Callable[..., Any]


def make_frozen_demo_app(
    screen: str | None = None,
    theme: str | None = None,
    seed: int = 7,
    at: float = T0,
    *,
    nodes: int = 3,
    agents: int = 80,
    config: Config | None = None,
) -> Any:
    """A FleetDeckApp on the demo fleet, primed (histories and logs) and frozen at ``at``."""
    clock = FrozenClock(at)
    links = demo_links(seed=seed, nodes=nodes, agents=agents, clock=clock)
    asyncio.run(prime(links, clock))
    return build_app(links, config=config or Config(), clock=clock, screen=screen, theme=theme)  # type: ignore[arg-type]


async def make_frozen_demo_app_async(
    screen: str | None = None,
    theme: str | None = None,
    seed: int = 7,
    at: float = T0,
    *,
    nodes: int = 3,
    agents: int = 80,
    config: Config | None = None,
) -> Any:
    """The same as :func:`make_frozen_demo_app`, for tests already inside an event loop."""
    clock = FrozenClock(at)
    links = demo_links(seed=seed, nodes=nodes, agents=agents, clock=clock)
    await prime(links, clock)
    return build_app(links, config=config or Config(), clock=clock, screen=screen, theme=theme)  # type: ignore[arg-type]


@pytest.fixture
def frozen_demo_app() -> AppFactory:
    """Factory for plain-``def`` tests (snapshot tests): primes with ``asyncio.run``."""
    return make_frozen_demo_app


@pytest.fixture
def frozen_demo_app_async() -> AppFactory:
    """Factory for ``async def`` tests: ``app = await frozen_demo_app_async(...)``."""
    return make_frozen_demo_app_async
