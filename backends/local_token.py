"""The local operator token: how a node served without ``--tokens`` tells its owner from other local users.

Every local user can connect to 127.0.0.1, so the loopback address alone says nothing about who calls. A
server started without ``--tokens`` therefore makes, on its first start, a random token in a file only
its OS user can read:

    $XDG_STATE_HOME/fleetdeck/local-operator.token     (default ~/.local/state/fleetdeck/...)
    mode 0600, in a directory no one else may write; one token per user, kept across restarts

and answers only requests that carry it (``Authorization: Bearer``). The owner's console and CLI read the
same file when a loopback node has no token configured; another user cannot read it and gets 401. The
audit trail names the server's OS user: the token proves "the owner of this file", nothing finer.

Why a file and not a Unix socket with peer credentials: every client here speaks HTTP over TCP (httpx,
curl, Prometheus, the OpenAPI tools), a TCP port is what ``--listen`` and the config's ``url`` name, and a
bearer token works through all of them unchanged; a Prometheus scrape reads it with ``credentials_file``.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from .private_files import PrivateFileError, create_private, ensure_private_dir, read_checked, user_name

FILE_NAME = "local-operator.token"
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits
WHAT = "local operator token"


class LocalTokenError(Exception):
    """The server cannot use the local operator token file; one line naming it and what to do."""


def state_home(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_STATE_HOME/fleetdeck (default ~/.local/state/fleetdeck), as ``console.core.paths.state_dir``: a
    relative XDG value is ignored, as the spec says."""
    env = os.environ if environ is None else environ
    value = env.get("XDG_STATE_HOME", "")
    base = Path(value) if value and os.path.isabs(value) else Path.home() / ".local" / "state"
    return base / "fleetdeck"


def token_path(environ: Mapping[str, str] | None = None) -> Path:
    return state_home(environ) / FILE_NAME


def os_user() -> str:
    """The server's OS user, from its uid (not from $USER, which any parent process may set)."""
    return user_name(os.geteuid())


def ensure_token(path: Path | None = None) -> str:
    """The server's side: the token in ``path``, made first if there is none. Raises
    :class:`LocalTokenError` for a file that is a symlink, not ours, or readable or writable by others:
    such a token may be known to someone else, so it must not admit anyone."""
    file = path or token_path()
    try:
        ensure_private_dir(file.parent, f"the directory of the {WHAT}")
        for _ in range(3):  # made by a concurrent start between our read and our create: read theirs
            try:
                return _parse(read_checked(file, WHAT)[0], file)
            except FileNotFoundError:
                if create_private(file, secrets.token_urlsafe(TOKEN_BYTES) + "\n"):
                    return _parse(read_checked(file, WHAT)[0], file)
    except PrivateFileError as exc:
        raise LocalTokenError(str(exc)) from None
    except OSError as exc:
        raise LocalTokenError(f"{WHAT} {file}: {exc.strerror or exc}") from None
    raise LocalTokenError(f"{WHAT} {file} keeps disappearing while it is read")


def read_token(path: Path | None = None) -> tuple[str | None, str]:
    """The client's side: ``(token, where)`` when the file is there, ours and private; else
    ``(None, why not)`` in words. Never raises: a client without the token simply gets a 401."""
    file = path or token_path()
    try:
        return _parse(read_checked(file, WHAT)[0], file), f"the {WHAT} {file}"
    except FileNotFoundError:
        return None, f"there is no {WHAT} at {file} (a node served without --tokens makes it)"
    except (PrivateFileError, LocalTokenError) as exc:
        return None, f"the {WHAT} is not used: {exc}"
    except OSError as exc:
        return None, f"the {WHAT} {file} cannot be read ({exc.strerror or exc})"


def matches(expected: str, presented: str) -> bool:
    """Constant-time comparison of two tokens (as bytes: compare_digest wants ASCII for str)."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogateescape"), presented.encode("utf-8", "surrogateescape")
    )


def _parse(text: str, file: Path) -> str:
    token = text.strip()
    if len(token) < 32 or not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise LocalTokenError(
            f"{WHAT} {file} does not hold a token (32+ visible ASCII characters): delete it, and the next "
            "start makes a new one"
        )
    return token
