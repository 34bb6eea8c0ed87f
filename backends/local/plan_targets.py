"""How a plan file writes a KPI's line: targets ("< 120 ms", "≥ 99.9%"), windows ("10m", "7d"), and the
threshold expressed in the KPI's own unit.

Units are the wire model's (``backends.kpis``); a person's size words (``80 MB``, ``1.5 GiB``) are scaled
to bytes here, since the wire model has one byte unit and no prefixes.
"""

from __future__ import annotations

import math
import re
from typing import Final, NamedTuple

from backends.kpis import convert, format_value, unit_of_word
from backends.kpis import parse_duration as kpi_duration

# A person's comparison signs, as the plan's ops spell them.
_SIGNS: Final = {"≤": "<=", "≥": ">=", "=": "==", "≠": "!=", "=<": "<=", "=>": ">="}
_TARGET: Final = re.compile(
    r"^\s*(<=|>=|==|!=|=<|=>|<|>|≤|≥|≠|=)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s\d].*?)?\s*$"
)
_BYTES: Final = {
    "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
    "kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30, "tib": 2.0**40,
}  # fmt: skip
_MINUTES: Final = {"min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0, "hours": 3600.0}


class Target(NamedTuple):
    op: str
    value: float
    unit: str | None  # the word as written ("ms", "%", "/h", "MB"); None for a bare number


def parse_target(text: str) -> Target | None:
    """``"< 120 ms"`` -> ("<", 120.0, "ms"); ``"≥ 99.9%"`` -> (">=", 99.9, "%"); None for any other text
    ("P95 < 120 ms", "100% exact"), which stays a target a person judges."""
    found = _TARGET.match(text)
    if found is None:
        return None
    value = float(found[2])
    if not math.isfinite(value):
        return None
    return Target(_SIGNS.get(found[1], found[1]), value, found[3] or None)


def parse_duration(value: object) -> float | None:
    """``"30s"``, ``"10m"``, ``"1.5h"``, ``"7d"``, ``"2w"`` (read as :func:`backends.kpis.parse_duration`
    reads them) or a number of seconds -> seconds > 0; None if it is none of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return kpi_duration(value)
        except ValueError:
            return None
    if isinstance(value, int | float):
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds > 0 else None
    return None


def describe_duration(seconds: float) -> str:
    """600 -> "10 min", 604800 -> "7 d", 90 -> "90 s": how a window reads beside a figure."""
    for size, word in ((86400.0, "d"), (3600.0, "h"), (60.0, "min")):
        # a whole number of days past a million would print every digit of a window like 1e300 s
        if seconds >= size and (seconds / size).is_integer() and seconds / size < 1e6:
            return f"{int(seconds / size)} {word}"
    return format_value(seconds, "s")


def threshold_in(value: float, word: str | None, kpi_unit: str) -> float | None:
    """``value word`` (a target's number and unit) in ``kpi_unit``; None when the two cannot be compared
    (a target in ms for a KPI in percent). A bare number is taken in the KPI's unit."""
    if word is None or not word.strip():
        return value
    folded = word.strip().casefold()
    if folded in _BYTES:
        return value * _BYTES[folded] if kpi_unit == "bytes" else None
    if folded in _MINUTES and kpi_unit in ("s", "ms"):
        return convert(value * _MINUTES[folded], "s", kpi_unit)
    unit = unit_of_word(folded)
    if unit is None:
        # "ops/hour", "req/s": the thing counted, then the rate's unit
        rate = re.fullmatch(r"[^/\s]*\s*(/\s*\w+)", folded)
        unit = unit_of_word(rate[1].replace(" ", "")) if rate else None
    if unit is None:
        return None
    return convert(value, unit, kpi_unit)


def default_aggregate(op: str, kind: str) -> str:
    """What decides a bound criterion when the file names no ``aggregate``: the worst case worth holding
    a line against. A ceiling ("< 120 ms") is held at p95, a floor ("≥ 99.9%") at the minimum; a counter's
    growth over the window is summed across agents; an equality looks at the latest figure."""
    if kind == "counter":
        return "sum"
    if op in ("<", "<="):
        return "p95"
    if op in (">", ">="):
        return "min"
    return "last"
