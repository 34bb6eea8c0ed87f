"""Turn one line of an agent's stdout/stderr into (level, message, fields).

Agents log in many styles; the level is read from what is there, in this order:
JSON lines (``{"level": "error", "msg": ...}``, also ``levelname``/``severity``), logfmt (``level=warn``),
and common prefixes (``ERROR:``, ``[WARN]``, ``2026-... INFO ...``, ``E1121 ...`` from glog). Anything else
is info; a stderr line is marked with ``stream=stderr``.

A Python traceback is an error as a whole: :class:`OutputParser` follows each stream, so every line from
``Traceback (most recent call last):`` through the final ``XxxError: ...`` line (chained tracebacks,
exception groups and a SyntaxError's ``File`` block included) is at error level, not only the first and last.
Every line of a traceback after its first carries ``traceback=continued``, so a crash counts as one error
in the error rate however deep its stack (see store_agents.error_counts).

A JSON line may carry the agent's KPIs: ``{"level": "info", "msg": "served", "kpis": {"latency_p95_ms":
131, "queue_depth": [12, "count"]}}`` (a number, or ``[number, unit]``). The line is logged as any other,
the object kept among its fields; :func:`kpis_of` reads the figures out of it for the supervisor to record.
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
# the first line of a traceback: at the margin; indented for an exception group ("  + Exception Group ...")
_TRACEBACK_HEADER = re.compile(r"^(\s*\+ )?(Exception Group )?Traceback \(most recent call last\):\s*$")
# a SyntaxError is reported without a header: its block starts at the offending file's line
_SYNTAX_ERROR_FILE = re.compile(r'^  File "[^"]*", line \d+\s*$')
_CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
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


#: the field of a JSON log line that carries KPI figures
KPIS_FIELD = "kpis"


def kpis_of(fields: dict[str, Any]) -> tuple[dict[str, float | tuple[float, str]], list[str]]:
    """The KPI figures a parsed line carries in its ``kpis`` field, as the store takes them ({name: value}
    or {name: (value, unit)}), and a problem for each entry not in either form (the figures themselves are
    validated by the store). Nothing, and no problem, for a line without the field."""
    given = fields.get(KPIS_FIELD)
    if given is None:
        return {}, []
    if not isinstance(given, dict):
        return {}, [f"'kpis' must be an object of name: number, got {type(given).__name__}"]
    figures: dict[str, float | tuple[float, str]] = {}
    problems = []
    for name, value in given.items():
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
            value = (value[0], value[1])
        number = value[0] if isinstance(value, tuple) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            shown = name if len(name) <= 40 else name[:40] + "..."
            problems.append(f"KPI {shown!r}: value must be a number or [number, unit], got {value!r:.40}")
            continue
        figures[name] = value
    return figures, problems


#: the field, and its value, that mark a line as the continuation of a traceback begun on an earlier line
TRACEBACK_FIELD, CONTINUED = "traceback", "continued"


class OutputParser:
    """Parses one incarnation's output line by line, following a Python traceback on each stream.

    Inside a traceback, its frame lines (indented) are error lines; the first line back at the margin is
    the exception itself (also an error), after which only a blank line, a "During handling of the above
    exception" sentence or a new traceback continue it. An exception group is indented all through, so
    its end is the first line at the margin, which is not part of it."""

    _FRAMES, _GROUP, _AFTER = "frames", "group", "after"

    def __init__(self) -> None:
        self._state: dict[str, str] = {}  # stream -> where in a traceback it is; absent: not in one

    def parse(self, line: str, stream: str = "stdout") -> tuple[LogLevel, str, dict[str, Any]]:
        level, message, fields = parse_line(line, stream)
        text = message.rstrip()
        was_in_one = stream in self._state
        if self._in_traceback(text, stream):
            if level != "critical":
                level = "error"
            if was_in_one and not _TRACEBACK_HEADER.match(text):
                fields[TRACEBACK_FIELD] = CONTINUED
        return level, message, fields

    def _in_traceback(self, text: str, stream: str) -> bool:
        state = self._state.get(stream)
        indented = text[:1].isspace()
        if state == self._FRAMES:
            if not indented and text:
                self._state[stream] = self._AFTER  # the exception line ends the frames
            return True
        if state == self._GROUP and indented:
            return True
        if state in (self._AFTER, self._GROUP) and (not text or text in _CHAINED):
            self._state[stream] = self._AFTER
            return True
        if match := _TRACEBACK_HEADER.match(text):
            self._state[stream] = self._GROUP if match.group(1) else self._FRAMES
            return True
        if state is None and _SYNTAX_ERROR_FILE.match(text):
            self._state[stream] = self._FRAMES
            return True
        self._state.pop(stream, None)
        return False
