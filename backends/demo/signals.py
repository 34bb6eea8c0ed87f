"""Deterministic building blocks for the simulation: hashing, noise and smooth waves.

Every moving number in the demo fleet is a pure function of (seed, node, thing, time), built from these
helpers, so a snapshot at time T never depends on which snapshots were taken before it. We hash with
splitmix64 rather than Python's ``hash()`` because string hashing is salted per process.
"""

from __future__ import annotations

import math
import zlib

MASK64 = (1 << 64) - 1
TAU = 2.0 * math.pi
_GOLDEN = 0x9E3779B97F4A7C15


def mix(*parts: int) -> int:
    """A 64-bit hash of a tuple of ints (splitmix64 folded over the parts); stable across runs."""
    h = _GOLDEN
    for part in parts:
        h = (h ^ (part & MASK64)) & MASK64
        h = (h + _GOLDEN) & MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK64
        h ^= h >> 31
    return h


def text_key(text: str) -> int:
    """A stable int for a name, to feed :func:`mix` (crc32 is unsalted, unlike ``hash(str)``)."""
    return zlib.crc32(text.encode("utf-8"))


def unit(h: int) -> float:
    """Map a 64-bit hash to a float in [0, 1)."""
    return (h >> 11) * (1.0 / (1 << 53))


def jitter(key: int, step: int) -> float:
    """Noise in [-1, 1) for one whole time step; the same (key, step) always gives the same value."""
    return unit(mix(key, step)) * 2.0 - 1.0


def smooth_noise(key: int, t: float) -> float:
    """Noise in [-1, 1] that changes every second but glides between seconds instead of jumping."""
    step = math.floor(t)
    frac = t - step
    a = jitter(key, step)
    if frac == 0.0:  # on the second (every sample on the minute): the glide has not begun
        return a
    b = jitter(key, step + 1)
    return a + (b - a) * frac


def wave(t: float, period_s: float, phase: float) -> float:
    """A sine in [-1, 1] with the given period; ``phase`` (radians) comes from a seeded hash."""
    return math.sin(TAU * t / period_s + phase)


def phase_of(h: int) -> float:
    """A phase angle in [0, 2*pi) from a hash, so each seeded thing oscillates out of step."""
    return unit(h) * TAU


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value
