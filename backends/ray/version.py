"""Which Ray dashboards this backend understands, checked once at connect with ``/api/version``.

The job API, the v0 state API and the node summary's GPU fields it reads are those of Ray 2.10 and later
(dashboard API version 4); token auth needs Ray 2.52. An older or unknown dashboard is refused in words.
"""

from __future__ import annotations

from typing import Any

from backends.errors import Unreachable

from .settings import RaySettings

MIN_RAY = (2, 10)
API_VERSIONS = frozenset({"4"})


def check_version(answer: Any, settings: RaySettings) -> str:
    """The Ray version, or :class:`Unreachable` saying why this dashboard cannot be used."""
    where = f"Ray cluster {settings.node_name} at {settings.url}"
    if not isinstance(answer, dict) or "ray_version" not in answer:
        raise Unreachable(
            f"{where} did not answer /api/version as a Ray dashboard does: is it a Ray dashboard?"
        )
    ray_version = str(answer.get("ray_version"))
    api = str(answer.get("version"))
    parsed = _major_minor(ray_version)
    if parsed is None or parsed < MIN_RAY:
        raise Unreachable(
            f"{where} runs Ray {ray_version}, which this backend does not support "
            f"(needs Ray {MIN_RAY[0]}.{MIN_RAY[1]} or later)"
        )
    if api not in API_VERSIONS:
        known = ", ".join(sorted(API_VERSIONS))
        raise Unreachable(
            f"{where} (Ray {ray_version}) speaks dashboard API version {api}; "
            f"this backend knows version {known}"
        )
    return ray_version


def _major_minor(text: str) -> tuple[int, int] | None:
    parts = text.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None
