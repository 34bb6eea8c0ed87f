"""WCAG 2.x contrast ratios, so theme legibility is a number we can test, not a matter of taste."""

from __future__ import annotations

from textual.color import Color

# WCAG thresholds for normal-size text; the console's text is all "normal size" in WCAG terms.
AA_TEXT = 4.5
AAA_TEXT = 7.0
# WCAG 1.4.11: borders and other non-text indicators (e.g. the production-node frame).
AA_NON_TEXT = 3.0


def _channel(value: int) -> float:
    """Linearise one sRGB channel (WCAG 2.x relative-luminance formula)."""
    srgb = value / 255
    return srgb / 12.92 if srgb <= 0.04045 else ((srgb + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str | Color) -> float:
    """Relative luminance (0 = black, 1 = white) of an opaque colour."""
    red, green, blue = Color.parse(colour).rgb
    return 0.2126 * _channel(red) + 0.7152 * _channel(green) + 0.0722 * _channel(blue)


def contrast_ratio(foreground: str | Color, background: str | Color) -> float:
    """The WCAG contrast ratio of two colours, from 1.0 (identical) to 21.0 (black on white).

    Alpha is ignored: callers pass the colours as they end up on screen.
    """
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
