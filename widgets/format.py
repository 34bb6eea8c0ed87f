"""Small pure formatters shared by the widgets: every unknown value renders as "n/a", never as 0."""

from __future__ import annotations

from backends.kpis import compact_duration
from backends.model import HealthCount, Phase

NA = "n/a"

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_BAR_FULL, _BAR_EMPTY = "█", "░"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return NA
    size = float(value)
    for unit in _BYTE_UNITS:
        if abs(size) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fmt_percent(value: float | None, digits: int = 0) -> str:
    return NA if value is None else f"{value:.{digits}f}%"


def fmt_fraction(value: float | None) -> str:
    return NA if value is None else f"{value * 100:.0f}%"


def fmt_number(value: float | None, unit: str = "", digits: int = 0) -> str:
    return NA if value is None else f"{value:.{digits}f}{unit}"


def fmt_duration(seconds: float | None) -> str:
    """A compact duration: 42s, 7m12s, 3h05m, 2d04h (the report card reads durations alike)."""
    return NA if seconds is None else compact_duration(seconds)


def fmt_ago(ts: float | None, now: float) -> str:
    """How long ago ``ts`` was ("12s ago"), or "in 3h05m" for a future time."""
    if ts is None:
        return NA
    delta = now - ts
    return f"{fmt_duration(delta)} ago" if delta >= 0 else f"in {fmt_duration(delta)}"


def ratio(part: float | None, whole: float | None) -> float | None:
    """``part / whole`` as a percentage, or None when either is unknown or the whole is zero."""
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def bar(fraction: float | None, width: int) -> str:
    """A text progress bar; an unknown value is drawn empty-dotted so it is never mistaken for 0%."""
    if width <= 0:
        return ""
    if fraction is None:
        return "·" * width
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return _BAR_FULL * filled + _BAR_EMPTY * (width - filled)


_SPARK_LEVELS = " ▁▂▃▄▅▆▇█"


def spark(values: list[float] | tuple[float, ...], width: int, low: float = 0.0, high: float = 100.0) -> str:
    """The last ``width`` values as block characters on a fixed scale, so 78% always looks like 78%."""
    if width <= 0:
        return ""
    tail = values[-width:]
    span = (high - low) or 1.0
    top = len(_SPARK_LEVELS) - 1
    chars = [_SPARK_LEVELS[max(0, min(top, round((v - low) / span * top)))] for v in tail]
    return " " * (width - len(chars)) + "".join(chars)


def fmt_health(count: HealthCount, noun: str = "") -> str:
    """A health count in words: "3/4 healthy", or with dead agents (history, not counted, see
    ``backends.model.health_count``) "3/3 alive healthy · 5 dead". ``noun`` goes before "healthy"."""
    what = f"{noun} healthy" if noun else "healthy"
    if not count.dead:
        return f"{count.healthy}/{count.alive} {what}"
    return f"{count.healthy}/{count.alive} alive {what} · {count.dead} dead"


def has_gate(phase: Phase) -> bool:
    """False for the empty default gate (pending, no reasons), which a phase without one carries (a Ray
    job): a gate a node judges always says why, so only that one is shown."""
    return phase.gate.decision != "pending" or bool(phase.gate.reasons)
