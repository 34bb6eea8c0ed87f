"""How a command talks to one node and to the person running it: one backend call with every failure
turned into a line and an exit code, JSON and lines made safe for a terminal, and the confirmation a
destructive action needs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from backends.base import Backend
from backends.errors import BackendError, Unreachable
from backends.model import ModelError, to_builtins
from backends.safe_text import json_safe, terminal_safe
from console.cli.exits import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, CliError
from console.core.describe_error import describe_error
from console.core.node_link import NodeLink

T = TypeVar("T")


def run_on_backend(backend: Backend, call: Callable[[Backend], Awaitable[T]], *, warn: bool = True) -> T:
    """Open the backend, run one call, close it; every failure becomes one line and an exit code. With
    ``warn``, a rollback left unfinished on the node is pointed out first, on stderr."""

    async def go() -> T:
        try:
            await backend.open()
            if warn:
                await warn_if_interrupted(backend)
            return await call(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(go())
    except BackendError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    except (ModelError, ValueError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(describe_error(Unreachable(str(exc))), EXIT_UNREACHABLE) from None


def emit_json(value: Any) -> None:
    print(json_safe(json.dumps(to_builtins(value), indent=2, ensure_ascii=False)))


def say(line: str) -> None:
    """One line for people, made terminal-safe: it names things the node chose (ids, labels, targets)."""
    print(terminal_safe(line))


async def warn_if_interrupted(backend: Backend) -> None:
    """Say on stderr that a rollback on the node is unfinished, and what to run; never fails the command."""
    try:
        notice = await backend.interrupted_rollback()
    except Exception:  # a warning must not stop the command it comes with
        return
    if notice:
        print(terminal_safe(f"fleetdeck: warning: {notice}"), file=sys.stderr)


def confirm(link: NodeLink, action: str, what: str, args: argparse.Namespace) -> None:
    """Destructive actions need --yes, or a person at a terminal who confirms; production needs its name."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"refusing to {action} {what} without --yes (no terminal to confirm on)", EXIT_USAGE)
    production = link.environment == "production"
    expected = link.name if production else "yes"
    prompt = f"{action} {what} on {link.name}"
    if production:
        prompt += f" (PRODUCTION) — type the node name '{link.name}' to confirm: "
    else:
        prompt += "? type 'yes' to confirm: "
    answer = input(terminal_safe(prompt)).strip()
    if answer != expected:
        raise CliError(f"{action} cancelled", EXIT_FAILED)
