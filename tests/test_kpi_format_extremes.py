"""A figure an agent may send (any finite float: 1e308, 5e-324, -0.0) reads as a short figure in every
unit: never hundreds of digits in a table cell, never "inf%" for a finite ratio, never a negative zero."""

from __future__ import annotations

import pytest

from backends.kpis import format_value

UNITS = ("count", "ms", "s", "ratio", "percent", "bytes", "tokens", "usd", "per_s", "per_min", "per_hour")
EXTREMES = (1e308, -1e308, 1.7976931348623157e308, 1e-320, -1e-320, 5e-324, 1e20, 1e-9)


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("value", EXTREMES)
def test_an_extreme_figure_reads_short_and_finite(unit: str, value: float) -> None:
    shown = format_value(value, unit)
    assert len(shown) <= 16, shown
    assert "inf" not in shown and "nan" not in shown, shown


@pytest.mark.parametrize("unit", UNITS)
def test_negative_zero_reads_as_zero(unit: str) -> None:
    assert format_value(-0.0, unit) == format_value(0.0, unit)
    assert "-" not in format_value(-0.0, unit)


def test_ordinary_figures_keep_their_form() -> None:
    assert format_value(97, "ms") == "97 ms"
    assert format_value(0.9993, "ratio") == "99.93%"
    assert format_value(1200, "per_hour") == "1.2k/h"
    assert format_value(3.41, "usd") == "$3.41"
    assert format_value(0.042, "s") == "0.042 s"
    assert format_value(2.5e15, "count") == "2.5e+15"
    assert format_value(1e308, "ratio") == "1e+310%"
