"""Argument types for the parser: each turns a word into a value or says, in argparse's words, why not."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def screen_size(text: str) -> tuple[int, int]:
    """``120x40`` as (columns, rows), within what a terminal can be."""
    try:
        width, _, height = text.lower().partition("x")
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 120x40, got {text!r}") from None
    if not (20 <= size[0] <= 1000 and 5 <= size[1] <= 500):
        raise argparse.ArgumentTypeError(f"size {text!r} is out of range (20x5 to 1000x500)")
    return size


def bounded(kind: type[int] | type[float], low: float, high: float) -> Callable[[str], int | float]:
    """A number of ``kind`` between ``low`` and ``high``, both included."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range ({low}..{high})")
        return value

    return parse
