"""When and how long to wait before trying a remote node again.

Exponential backoff with "equal jitter": attempt ``n`` waits a random time between half and all of
``min(cap, base * 2**n)``. The jitter keeps a fleet of consoles from hammering a node that just came back
in lock-step; the lower half keeps a retry from firing at once into the same failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Statuses worth another try: a gateway or the node itself says it is momentarily unable to answer.
# Never a 4xx: the same request would be refused the same way.
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    #: tries per call, the first one included
    attempts: int = 3
    base_s: float = 0.2
    cap_s: float = 2.0
    #: no new try starts once this much time has passed since the call began, so a call never runs
    #: much longer than ``budget_s`` plus one request's own timeout
    budget_s: float = 15.0
    #: how long a following log stream keeps reconnecting to a node that went away before it gives up
    stream_reconnect_s: float = 20.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based).

        A server's ``Retry-After`` is honoured but never beyond ``cap_s``: the console has its own
        timeout and a node that asks for minutes is better reported as down now."""
        ceiling = min(self.cap_s, self.base_s * (2 ** max(attempt, 0)))
        wait = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap_s))
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """The seconds form of a ``Retry-After`` header; the HTTP-date form is ignored (None)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
