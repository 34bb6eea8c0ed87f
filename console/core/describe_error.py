"""Any failure of a backend call as one line an operator can act on (never a traceback)."""

from __future__ import annotations

from backends.errors import BackendError
from backends.model import ModelError


def describe_error(exc: BaseException) -> str:
    """One line an operator can act on, whatever went wrong inside a backend call."""
    if isinstance(exc, (BackendError, ModelError)):
        return str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
