"""A plan's ``over`` may be any positive finite number of seconds; beside a figure it reads short."""

from __future__ import annotations

import pytest

from backends.local.plan_targets import describe_duration, parse_duration


@pytest.mark.parametrize("over", [1e300, 8.64e19, 1.7976931348623157e308])
def test_a_huge_window_reads_in_a_few_characters(over: float) -> None:
    seconds = parse_duration(over)
    assert seconds == over  # accepted, as any finite positive number of seconds is
    assert len(describe_duration(seconds)) <= 16, describe_duration(seconds)


def test_ordinary_windows_keep_their_words() -> None:
    assert describe_duration(600) == "10 min"
    assert describe_duration(604800) == "7 d"
    assert describe_duration(90) == "90 s"
    assert describe_duration(86400 * 999_999) == "999999 d"
