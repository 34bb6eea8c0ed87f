"""The fleet file: one node described by hand (or by a script), in TOML or JSON, in fleetdeck's wire model.

    hostname = "lab-07"
    labels = { site = "basement" }

    [system]
    cpu_count = 16

    [[agents]]
    id = "coder-01"
    name = "coder 01"
    state = "running"
    health = "healthy"

    [[logs]]
    ts = 1767225600
    level = "info"
    source = "coder-01"
    message = "picked up issue 12"

``agents``, ``gpus``, ``phases`` and ``system`` are fleetdeck's own types (``backends.model``), so msgspec
checks them as strictly as it checks what a real node sends. A log line's ``seq`` is its place in the
list (the first is 1): append lines to add them, and a following console picks them up.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from backends.model import Agent, Gpu, LogLevel, LogRecord, Phase, SystemMetrics, Timestamp


class LogLine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ts: Timestamp
    message: str
    level: LogLevel = "info"
    source: str = "node"  # an agent id, or "node"
    fields: dict[str, Any] = msgspec.field(default_factory=dict)


class FleetFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hostname: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    system: SystemMetrics = msgspec.field(default_factory=SystemMetrics)
    gpus: tuple[Gpu, ...] = ()
    agents: tuple[Agent, ...] = ()
    phases: tuple[Phase, ...] = ()
    logs: tuple[LogLine, ...] = ()

    def records(self, since_seq: int = 0) -> list[LogRecord]:
        """The log lines after ``since_seq``, numbered by their place in the file."""
        return [
            LogRecord(
                seq=seq,
                ts=line.ts,
                level=line.level,
                source=line.source,
                message=line.message,
                fields=line.fields,
            )
            for seq, line in enumerate(self.logs[since_seq:], start=since_seq + 1)
        ]


class FleetFileError(Exception):
    """The file cannot be read or is not a fleet file; the message names the file and the problem."""


def read_fleet_file(path: Path) -> FleetFile:
    """Read and check ``path`` (``.toml`` or ``.json``). Raises FleetFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FleetFileError(f"fleet file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise FleetFileError(f"fleet file {path} cannot be read ({why})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise FleetFileError(f"fleet file {path} is not valid {path.suffix[1:].upper()} ({exc})") from None
    try:
        return msgspec.convert(data, type=FleetFile)
    except msgspec.ValidationError as exc:
        raise FleetFileError(f"fleet file {path}: {exc}") from None
