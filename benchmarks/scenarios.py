"""The scenarios, in the order the harness runs them (each is a module of this package)."""

from __future__ import annotations

import importlib
from types import ModuleType

SCENARIOS = (
    "startup",
    "fleet_refresh",
    "scale_curve",
    "keys",
    "http_fleet",
    "log_flood",
    "node_server",
    "otlp_ingest",
    "metrics_scrape",
    "local_store",
    "rollback",
    "peers",
    "kpi_judging",
    "plan_judging",
)


def load(name: str) -> ModuleType:
    """A scenario module: ``TITLE``, ``TARGETS`` (figure -> Target) and ``measure(quick) -> figures``."""
    if name not in SCENARIOS:
        raise SystemExit(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    return importlib.import_module(f"benchmarks.{name}")
