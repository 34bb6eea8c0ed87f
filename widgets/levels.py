"""Severity words and symbols shared by widgets: meaning never rests on colour alone."""

from __future__ import annotations

from typing import Literal

Level = Literal["ok", "warning", "critical"]

LEVEL_SYMBOL: dict[str, str] = {"ok": "", "warning": "▲", "critical": "✖"}


def level_for(value: float | None, thresholds: tuple[float, float] | None) -> Level:
    """Classify ``value`` against ``(warning, critical)``; unknown values are never alarming."""
    if value is None or thresholds is None:
        return "ok"
    warning, critical = thresholds
    if value >= critical:
        return "critical"
    if value >= warning:
        return "warning"
    return "ok"


def level_style(level: Level) -> str:
    return {"ok": "", "warning": "bold yellow", "critical": "bold red"}[level]
