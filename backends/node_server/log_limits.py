"""The node server's stderr: warnings and errors rate-limited, so an attack cannot fill the disk with them.

When accept fails for want of fds, asyncio logs a traceback per failed accept; under a flood that once
wrote 25 MB in 15 s. :class:`RateLimit` lets one record of each kind (logger and message template) through
per window; the next one let through says how many like it were held back. The access log has its own
handler without this filter: every answered request is one line there, by design.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

WINDOW_S = 10.0
MAX_KINDS = 1000  # loggers that format their own messages make a new "kind" each time: forget the oldest
ERROR_LOGGERS = ("fleetdeck", "uvicorn", "asyncio")
ACCESS_LOGGER = "fleetdeck.access"


class RateLimit(logging.Filter):
    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._kinds: dict[tuple[str, str], list[float]] = {}  # kind -> [window start, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg))
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return False
        held = int(seen[1]) if seen is not None else 0
        self._kinds.pop(kind, None)
        self._kinds[kind] = [now, 0]
        if len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        if held:
            # no "%" in the addition, so the record's own %-arguments still format as they did
            record.msg = (
                f"{record.msg} ({held} more like this in the last {self.window_s:g} s were not logged)"
            )
        return True


def configure(access_log: bool, stream: TextIO | None = None) -> None:
    """Warnings and errors of fleetdeck, uvicorn and asyncio to stderr, rate-limited; the access log (when
    on) to stderr too, each line. Stdout is left to the startup line."""
    out = stream or sys.stderr
    plain = logging.Formatter("%(levelname)s:     %(message)s")
    errors = logging.StreamHandler(out)
    errors.setFormatter(plain)
    errors.addFilter(RateLimit())
    for name in ERROR_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [errors]
        logger.propagate = False
    logging.getLogger("fleetdeck").setLevel(logging.INFO)
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False
    access.setLevel(logging.INFO)
    access.disabled = not access_log
    handler = logging.StreamHandler(out)
    handler.setFormatter(plain)
    access.handlers = [handler]
