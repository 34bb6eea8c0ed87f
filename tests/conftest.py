"""Shared fixtures: a frozen, primed demo fleet app for snapshot and Pilot tests, and isolated XDG dirs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Before Textual is imported anywhere: no animation may make a screenshot depend on timing.
os.environ["TEXTUAL_ANIMATIONS"] = "none"

from console.core.clock import FrozenClock
from console.core.config import Config
from console.core.fleet_setup import demo_links
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


# --- the real command line, as a subprocess with its own XDG directories --------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETDECK_", "XDG_"))}
    env.pop("NO_COLOR", None)
    env.pop("TEXTUAL_ANIMATIONS", None)  # the CLI must be deterministic without the test suite's help
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


@pytest.fixture
def fleetdeck(cli_env: dict[str, str], tmp_path: Path):
    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console", *args],
            env=cli_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's stderr must be one line and never a traceback; returns that line."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]
