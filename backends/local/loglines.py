"""Turn one line of an agent's stdout/stderr into (level, message, fields).

Agents log in many styles; the level is read from what is there, in this order:
JSON lines (``{"level": "error", "msg": ...}``, also ``levelname``/``severity``), logfmt (``level=warn``),
and common prefixes (``ERROR:``, ``[WARN]``, ``2026-... INFO ...``, ``E1121 ...`` from glog). A Python
traceback is an error. Anything else is info; a stderr line is marked with ``stream=stderr``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from backends.model import LogLevel

_ALIASES: dict[str, LogLevel] = {
    "trace": "debug",
    "debug": "debug",
    "dbg": "debug",
    "info": "info",
    "inf": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "wrn": "warning",
    "error": "error",
    "err": "error",
    "fatal": "critical",
    "critical": "critical",
    "crit": "critical",
    "panic": "critical",
    "emergency": "critical",
    "alert": "critical",
}
_JSON_LEVEL_KEYS = ("level", "levelname", "severity", "lvl")
_JSON_MESSAGE_KEYS = ("message", "msg", "event", "text")
_LOGFMT = re.compile(r"(?:^|\s)(?:level|lvl|severity)=\"?(\w+)\"?", re.IGNORECASE)
# a level word near the start, bare or bracketed, maybe after a timestamp: "ERROR:", "[warn]", "... INFO ..."
_LEVEL_WORDS = "trace|debug|dbg|info|inf|notice|warn|warning|wrn|error|err|fatal|critical|crit|panic"
_PREFIX = re.compile(rf"^(?:\S*\d\S*\s+){{0,2}}[\[(<]?({_LEVEL_WORDS})[\])>]?(?::|\s|$)", re.IGNORECASE)
_GLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")
_GLOG_LEVELS: dict[str, LogLevel] = {"I": "info", "W": "warning", "E": "error", "F": "critical"}
_TRACEBACK = re.compile(r"^(Traceback \(most recent call last\)|\w+(Error|Exception): )")
MAX_MESSAGE = 8192  # a runaway line must not bloat the store


def parse_line(line: str, stream: str = "stdout") -> tuple[LogLevel, str, dict[str, Any]]:
    text = line.rstrip("\r\n")
    fields: dict[str, Any] = {"stream": "stderr"} if stream == "stderr" else {}
    if text.startswith("{"):
        parsed = _parse_json(text)
        if parsed is not None:
            level, message, extra = parsed
            fields.update(extra)
            return level, message[:MAX_MESSAGE], fields
    level = _level_of(text)
    return level, text[:MAX_MESSAGE], fields


def _level_of(text: str) -> LogLevel:
    if match := _LOGFMT.search(text):
        return _ALIASES.get(match.group(1).lower(), "info")
    if match := _GLOG.match(text):
        return _GLOG_LEVELS[match.group(1)]
    if match := _PREFIX.match(text):
        return _ALIASES[match.group(1).lower()]
    if _TRACEBACK.match(text):
        return "error"
    return "info"


def _parse_json(text: str) -> tuple[LogLevel, str, dict[str, Any]] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    level: LogLevel = "info"
    for key in _JSON_LEVEL_KEYS:
        value = data.pop(key, None)
        if isinstance(value, str):
            level = _ALIASES.get(value.lower(), "info")
            break
    message = ""
    for key in _JSON_MESSAGE_KEYS:
        value = data.pop(key, None)
        if value is not None:
            message = str(value)
            break
    # keep the remaining keys as structured fields, but only JSON-friendly scalars and small values
    extra = {k: v for k, v in data.items() if isinstance(k, str) and len(k) <= 64}
    return level, message or text, extra
