"""How long a report card looks back (``--since 7d``), and times and durations as the card prints them."""

from __future__ import annotations

from datetime import UTC, datetime

from backends.kpis import compact_duration, parse_duration

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MAX_PERIOD_S = 366 * 86400  # a year and a day: further back than any node keeps figures


class PeriodError(ValueError):
    """A period that cannot be read; the message says what is wanted."""


def parse_period(text: str) -> float:
    """``"7d"`` -> 604800.0, ``"1.5h"`` -> 5400.0: read as a plan's ``over`` is; at most 366 days."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise PeriodError(f"--since {text!r}: {exc}") from None
    if seconds > MAX_PERIOD_S:
        raise PeriodError(f"--since {text!r}: must be more than 0 and at most 366d")
    return seconds


def utc_text(ts: float | None) -> str:
    """``2026-12-02 09:30 UTC`` (seconds shown only when there are some); "—" for None."""
    if ts is None:
        return "—"
    moment = datetime.fromtimestamp(ts, UTC)
    shape = "%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC"
    return moment.strftime(shape)


def short_utc_text(ts: float | None) -> str:
    """``Sep 21 09:30`` (UTC, to the minute below): for tables whose header says UTC and whose period gives
    the year (the JSON keeps the seconds); "—" for None."""
    if ts is None:
        return "—"
    moment = datetime.fromtimestamp(ts, UTC)
    return f"{_MONTHS[moment.month - 1]} {moment.day} {moment:%H:%M}"  # not %b: that follows the locale


def duration_text(seconds: float) -> str:
    """A compact duration, as the console's tables write one: 42s, 7m12s, 3h05m, 2d04h; never negative."""
    return compact_duration(max(0.0, seconds))
