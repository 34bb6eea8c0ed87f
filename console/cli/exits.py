"""How a ``fleetdeck`` command ends: its exit codes, and the one error every command raises to end with a
line of text instead of a traceback.

Exit codes (DESIGN.md §6): 0 success, 1 the node refused or failed, 2 usage or config error, 3 unreachable;
``status`` exits 0 ok, 1 warning, 2 critical, 3 unreachable.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class CliError(Exception):
    """A failure to report as one line with an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
