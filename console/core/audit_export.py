"""Audit entries as JSON lines: one ``AuditEntry`` per line with the node it came from, oldest first.

Each line is the wire model's own JSON (``backends.model.to_json``) with a ``"node"`` field put first, so a
line decodes straight back into an ``AuditEntry`` (the model tolerates unknown fields) and ``jq``/``grep``
can still tell the nodes apart. Pure functions: the Audit screen's `e` key and ``fleetdeck audit --jsonl``
share them, and tests need no terminal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from backends.model import AuditEntry, to_json


def audit_line(node: str, entry: AuditEntry) -> bytes:
    """One JSON object (no newline): ``{"node": ..., <the entry's fields in model order>}``."""
    body = to_json(entry)
    # Splice rather than re-encode through a dict: a dict would be key-sorted, losing the model's field order.
    return b'{"node":' + to_json(node) + (b"," + body[1:] if body != b"{}" else b"}")


def audit_lines(rows: Iterable[tuple[str, AuditEntry]]) -> Iterator[bytes]:
    """Lines in time order (oldest first, as a log reads), whatever order ``rows`` came in."""
    ordered = sorted(rows, key=lambda pair: (pair[1].ts, pair[0], pair[1].seq))
    for node, entry in ordered:
        yield audit_line(node, entry) + b"\n"


def default_export_path(now: float, directory: Path | None = None) -> Path:
    """``./fleetdeck-audit-YYYYmmdd-HHMMSS.jsonl`` (UTC, so two operators' exports sort together)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return (directory if directory is not None else Path.cwd()) / f"fleetdeck-audit-{stamp}.jsonl"


def write_audit_jsonl(path: Path, rows: Iterable[tuple[str, AuditEntry]], *, overwrite: bool = False) -> Path:
    """Write the lines to ``path`` and return the path written; raises ``OSError`` for the caller to report.

    Without ``overwrite`` an existing file is never replaced: the next free ``-2``, ``-3``... name is used,
    since two exports within the same second would otherwise get the same default name and lose the first.
    """
    data = b"".join(audit_lines(rows))
    candidate = path
    for attempt in range(2, 1000):
        try:
            with open(candidate, "wb" if overwrite else "xb") as out:
                out.write(data)
            return candidate
        except FileExistsError:
            candidate = path.with_name(f"{path.stem}-{attempt}{path.suffix}")
    raise FileExistsError(os.strerror(17), str(path))
