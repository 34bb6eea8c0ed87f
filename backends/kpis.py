"""KPIs as figures: their units, how a name implies its unit and kind, how people read them, and the
arithmetic every side needs the same (a counter's rate across resets, p95 of a window).

One module, no I/O, so the store, the demo fleet, the console's judging and the report card agree on what
``latency_p95_ms = 97`` means and how it is shown ("97 ms"). Figures are plain floats in the wire unit
(``backends.model.KpiUnit``); "ratio" is 0-1 and shown as a percentage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Final, Literal, get_args

from .model import KPI_UNITS, Kpi, KpiKind, KpiUnit

Aggregate = Literal["last", "min", "max", "mean", "p50", "p95", "p99", "sum"]
AGGREGATES: Final[tuple[str, ...]] = get_args(Aggregate)

# A name's ending says its unit, the Prometheus way (`_ms`, `_ratio`, `_total`): checked longest first.
_SUFFIX_UNITS: Final[tuple[tuple[str, KpiUnit], ...]] = (
    ("_per_hour", "per_hour"), ("_per_min", "per_min"), ("_per_s", "per_s"), ("_per_second", "per_s"),
    ("_ms", "ms"), ("_milliseconds", "ms"), ("_seconds", "s"), ("_s", "s"),
    ("_ratio", "ratio"), ("_percent", "percent"), ("_pct", "percent"),
    ("_bytes", "bytes"), ("_usd", "usd"), ("_tokens", "tokens"),
)  # fmt: skip

# Units one can be converted into another: (family, scale to the family's base).
_FAMILY: Final[dict[str, tuple[str, float]]] = {
    "ms": ("time", 1e-3), "s": ("time", 1.0),
    "ratio": ("share", 1.0), "percent": ("share", 0.01),
    "per_s": ("rate", 1.0), "per_min": ("rate", 1 / 60), "per_hour": ("rate", 1 / 3600),
}  # fmt: skip

# Words people write after a number in a target ("< 120 ms", "≥ 99.9%", "1000+ ops/hour") -> wire unit.
_UNIT_WORDS: Final[dict[str, KpiUnit]] = {
    "ms": "ms", "s": "s", "sec": "s", "secs": "s", "seconds": "s", "%": "percent", "percent": "percent",
    "ratio": "ratio", "b": "bytes", "bytes": "bytes", "tokens": "tokens", "tok": "tokens", "usd": "usd",
    "$": "usd", "/s": "per_s", "/min": "per_min", "/h": "per_hour", "/hour": "per_hour",
}  # fmt: skip

# A window or look-back as people write it ("30s", "10m", "1.5h", "7d", "500ms"); a bare number is seconds.
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$")
_DURATION_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def infer_unit(name: str) -> KpiUnit:
    """The unit a KPI's name implies: ``latency_p95_ms`` -> ms, ``success_ratio`` -> ratio,
    ``cost_usd_total`` -> usd, ``tokens_out_total`` -> tokens; "count" when the name says none."""
    stem = name.removesuffix("_total")
    for suffix, unit in _SUFFIX_UNITS:
        if stem.endswith(suffix):
            return unit
    return "tokens" if "tokens" in stem.split("_") else "count"


def infer_kind(name: str) -> KpiKind:
    """A name ending in ``_total`` is a counter (Prometheus' convention); any other is a gauge."""
    return "counter" if name.endswith("_total") else "gauge"


def unit_of_word(word: str) -> KpiUnit | None:
    """The wire unit a person's word means ("ms", "%", "/h", "tokens", or a wire unit itself); None if
    none."""
    word = word.strip().casefold()
    if word in KPI_UNITS:
        return word  # type: ignore[return-value]
    return _UNIT_WORDS.get(word)


def convert(value: float, unit: str, to: str) -> float | None:
    """``value`` in ``unit`` expressed in ``to``; None when the two cannot be compared (ms against %)."""
    if unit == to:
        return value
    have, want = _FAMILY.get(unit), _FAMILY.get(to)
    if have is None or want is None or have[0] != want[0]:
        return None
    return value * have[1] / want[1]


# --- for people ----------------------------------------------------------------------------------------


def format_value(value: float | None, unit: str) -> str:
    """A figure as a person reads it: ``97 ms``, ``1.2 s``, ``99.93%``, ``1.2k/h``, ``$3.41``,
    ``12.4k tok``, ``1.5 GiB``; "n/a" for None."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        value = 0.0  # -0.0 is a figure an agent may send; it reads as 0, not "-0%" or "$-0.00"
    if abs(value) >= _HUGE or (abs(value) < _TINY and value != 0):
        return _scientific(value, unit)  # fixed-point would print hundreds of digits
    if unit == "ms":
        return f"{_plain(value)} ms" if abs(value) < 1000 else format_value(value / 1000, "s")
    if unit == "s":
        if abs(value) < 120:
            return f"{_plain(value)} s"
        return f"{_plain(value / 60)} min" if abs(value) < 7200 else f"{_plain(value / 3600)} h"
    if unit == "ratio":
        return _percent(value * 100)
    if unit == "percent":
        return _percent(value)
    if unit == "usd":
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    if unit == "bytes":
        return _bytes(value)
    if unit == "tokens":
        return f"{_short(value)} tok"
    if unit in ("per_s", "per_min", "per_hour"):
        return f"{_short(value)}/{ {'per_s': 's', 'per_min': 'min', 'per_hour': 'h'}[unit] }"
    return _short(value)


def format_kpi(kpi: Kpi) -> str:
    """A KPI's latest figure for people; a counter's rate after it where known (``12.4k tok · 31/s``)."""
    shown = format_value(kpi.value, kpi.unit)
    if kpi.kind == "counter" and kpi.rate_per_s is not None:
        shown += f" · {format_rate(kpi.rate_per_s, kpi.unit)}"
    return shown


def format_rate(per_s: float, unit: str) -> str:
    """A counter's rate in the unit that reads best: per second when at least 1/s, else per hour."""
    what = "" if unit in ("count", "tokens") else f" {unit}"
    if unit == "usd":
        return f"{format_value(per_s * 3600, 'usd')}/h"
    if abs(per_s) >= 1:
        return f"{_short(per_s)}{what}/s"
    return f"{_short(per_s * 3600)}{what}/h"


_HUGE, _TINY = 1e15, 1e-6  # past these a figure reads in scientific notation, in its own unit
_SUFFIX = {"ms": " ms", "s": " s", "percent": "%", "bytes": " B", "tokens": " tok"}
_SUFFIX.update({"per_s": "/s", "per_min": "/min", "per_hour": "/h"})


def _scientific(value: float, unit: str) -> str:
    """``1e+308 ms``, ``5e-324 s``, ``$1e+20``; a ratio as a percent, scaled in the exponent so that
    the largest float does not overflow to inf."""
    if unit == "ratio":
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{float(mantissa):g}e{int(exponent) + 2:+03d}%"
    if unit == "usd":
        return f"-${-value:.3g}" if value < 0 else f"${value:.3g}"
    return f"{value:.3g}{_SUFFIX.get(unit, '')}"


def _plain(value: float) -> str:
    """Up to three significant figures, no trailing zeros: 97, 1.2, 0.042, 127."""
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _percent(pct: float) -> str:
    # Two decimals, because the figures that matter sit near 100 (99.9% against 99.93%); no trailing zeros.
    text = f"{pct:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _short(value: float) -> str:
    """1.2k, 3.4M, 12, 0.5: counts and rates at a glance."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{_plain(value / scale)}{suffix}"
    return _plain(value)


def _bytes(value: float) -> str:
    for scale, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= scale:
            return f"{_plain(value / scale)} {suffix}"
    return f"{_plain(value)} B"


# --- arithmetic ----------------------------------------------------------------------------------------


def counter_increase(points: Iterable[tuple[float, float]]) -> float:
    """How much a counter grew over ``points`` (oldest first), reading a drop as a reset: the agent
    restarted and counted again from 0, so the new value is all growth since (Prometheus' ``increase``)."""
    total = 0.0
    previous: float | None = None
    for _, value in points:
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


def counter_rate(points: Sequence[tuple[float, float]]) -> float | None:
    """A counter's increase per second over ``points``; None with fewer than two points or no time
    between them."""
    if len(points) < 2:
        return None
    elapsed = points[-1][0] - points[0][0]
    if elapsed <= 0:
        return None
    return counter_increase(points) / elapsed


def aggregate(values: Sequence[float], how: str) -> float | None:
    """``how`` (one of :data:`AGGREGATES`) of ``values`` in the order measured; None for no values.
    Percentiles interpolate linearly between the two nearest ranks, as numpy's default does."""
    if not values:
        return None
    if how == "last":
        return values[-1]
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    if how == "sum":
        return math.fsum(values)
    if how == "mean":
        return math.fsum(values) / len(values)
    if how in ("p50", "p95", "p99"):
        return percentile(sorted(values), int(how[1:]))
    raise ValueError(f"unknown aggregate {how!r}: one of {', '.join(AGGREGATES)}")


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile of already sorted, non-empty ``ordered``, linearly interpolated."""
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def parse_duration(text: str) -> float:
    """``"10m"`` -> 600.0, ``"1.5h"`` -> 5400.0, ``"90"`` -> 90.0: seconds, more than 0. One reading for a
    plan's ``over`` and the report card's ``--since``, so a window written in one is accepted by the other.
    Raises ValueError saying what is wanted."""
    found = _DURATION.match(text)
    if found is None:
        raise ValueError("give a number and a unit, e.g. 90m, 1.5h, 7d or 2w")
    seconds = float(found[1]) * _DURATION_S[found[2] or "s"]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("must be more than 0")
    return seconds


def compact_duration(seconds: float) -> str:
    """How long, compactly and sign aside: 42s, 7m12s, 3h05m, 2d04h (the console's tables and the report
    card read durations alike)."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
