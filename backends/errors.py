"""The one error hierarchy every backend raises; each message is written to be shown to an operator."""

from __future__ import annotations


class BackendError(Exception):
    """Base of every error a backend raises. ``str(error)`` is one line fit for a notification."""

    #: the CLI's exit code for this kind of failure (DESIGN.md §6: 1 refused/failed, 3 unreachable)
    exit_code = 1


class Unreachable(BackendError):
    """The node did not answer, or answered something that is not the wire model."""

    exit_code = 3


class TimedOut(Unreachable):
    """The node did not answer in time: it may be slow rather than gone, so its last data is shown as
    stale for a while before the node is called offline."""


class AuthFailed(BackendError):
    """The node rejected our credentials."""


class Forbidden(BackendError):
    """The node is read-only, or our role may not do this."""


class NotFound(BackendError):
    """No agent, phase, task or checkpoint with that id."""


class Conflict(BackendError):
    """The action does not fit the current state (e.g. resuming a running agent)."""


class Invalid(BackendError):
    """The request itself is malformed."""


class Unsupported(BackendError):
    """This backend has no such capability."""
