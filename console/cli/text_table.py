"""Plain aligned tables for the command line: readable in a terminal, easy to cut with awk.

Rich would also do, but its box drawing and wrapping get in the way of scripts; this is kubectl-style output.
Every cell holds text from a node (names, messages, labels, reasons): each is made terminal-safe here, one
line each, so no table can carry an escape sequence or a line break to the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.safe_text import terminal_safe


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    headers = [terminal_safe(h) for h in headers]
    rows = [[terminal_safe(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> None:
    if not rows:
        print(terminal_safe(empty))
        return
    print("\n".join(format_table(headers, rows)))
