"""The tokens file: who may call the node server, and with which role.

    [[tokens]]
    name = "alice"                 # the operator the audit trail names for this token
    role = "operator"              # operator: read and act; viewer: read only; reporter: send telemetry only
    sha256 = "9f86d0...<64 hex>"   # preferred: the SHA-256 of the token, so the file holds no secret

    [[tokens]]
    name = "grafana"
    role = "viewer"
    token = "a-literal-token"      # allowed, but then the file itself is a secret

``fleetdeck node token NAME --role ROLE --tokens FILE`` appends an entry with a fresh token's sha256.

The file decides who may act, so one that another user owns, or that group or others may write, is
refused. One that others may read is fine while it holds only sha256 digests of generated 256-bit tokens
(nothing in it helps whoever reads it); with plain ``token`` entries it is warned about at start.
A token is checked against every entry with ``hmac.compare_digest`` and no early exit, so the time taken
tells nothing about which entry (or how much of one) matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from backends.private_files import PrivateFileError, mode_text, read_checked, readable_by_others

# reporter: an agent's token for the OTLP receiver, which may send telemetry and read or do nothing else
Role = Literal["viewer", "operator", "reporter"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "reporter")
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits

_Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
_Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$")]
_Token = Annotated[str, Meta(min_length=16, max_length=1000, pattern=r"^[\x21-\x7e]+$")]


class TokenEntry(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: _Name
    role: Role
    sha256: _Sha256 | None = None
    token: _Token | None = None


class TokensFile(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tokens: list[TokenEntry]


class TokensError(Exception):
    """A tokens file that cannot be used; the message names the file, the key and the problem."""


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, as the server takes it."""

    name: str
    role: Role
    authenticated: bool

    @property
    def may_act(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class _Known:
    name: str
    role: Role
    digest: bytes  # SHA-256 of the token


class TokenBook:
    """The tokens of one file, ready to check bearer tokens against."""

    def __init__(self, entries: list[TokenEntry], source: str = "<memory>") -> None:
        self.source = source
        self.has_plain_tokens = any(e.token is not None for e in entries)
        self.warnings: list[str] = []  # said once at start by the serve command
        self._known = [
            _Known(
                e.name,
                e.role,
                bytes.fromhex(e.sha256) if e.sha256 else hashlib.sha256((e.token or "").encode()).digest(),
            )
            for e in entries
        ]

    def __len__(self) -> int:
        return len(self._known)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(k.name for k in self._known)

    def check(self, token: str) -> Caller | None:
        """The caller a bearer token belongs to, or None; compares with every entry, never stopping early."""
        presented = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: _Known | None = None
        for known in self._known:
            if hmac.compare_digest(known.digest, presented) and found is None:
                found = known
        return Caller(found.name, found.role, True) if found is not None else None


def load_tokens(path: Path | str) -> TokenBook:
    """Read and validate a tokens file; raise :class:`TokensError` naming the file and the key at fault."""
    file = Path(path)
    try:
        text, info = read_checked(file, "tokens file", others_may_read=True)
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise TokensError(f"tokens file {file}: no such file") from None
    except PrivateFileError as exc:
        raise TokensError(str(exc)) from None
    except OSError as exc:
        raise TokensError(f"tokens file {file}: cannot read it: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TokensError(f"tokens file {file}: not valid TOML: {exc}") from None
    book = parse_tokens(data, str(file))
    if book.has_plain_tokens and readable_by_others(info):
        book.warnings.append(
            f"tokens file {file} holds plain tokens and can be read by others ({mode_text(info.st_mode)}): "
            f"chmod 600 {file}, or keep only sha256 entries (`fleetdeck node token` writes those)"
        )
    return book


def parse_tokens(data: object, source: str) -> TokenBook:
    try:
        parsed = msgspec.convert(data, type=TokensFile)
    except msgspec.ValidationError as exc:
        raise TokensError(f"tokens file {source}: {_key_message(str(exc))}") from None
    seen: set[str] = set()
    for index, entry in enumerate(parsed.tokens):
        key = f"tokens[{index}]"
        if (entry.sha256 is None) == (entry.token is None):
            raise TokensError(f"tokens file {source}: {key}: give exactly one of sha256 or token")
        if entry.name in seen:
            raise TokensError(f"tokens file {source}: {key}.name: {entry.name!r} is named twice")
        seen.add(entry.name)
    if not parsed.tokens:
        raise TokensError(f"tokens file {source}: tokens: no [[tokens]] entries (nobody could call the node)")
    return TokenBook(parsed.tokens, source)


_AT = re.compile(r"^(?P<msg>.*) - at `\$\.?(?P<key>[^`]*)`$")
_NAMED = re.compile(r"(missing required field|contains unknown field) `(?P<name>[^`]+)`")


def _key_message(message: str) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.tokens[0].role``` as ``tokens[0].role: Expected ...``."""
    at = _AT.match(message)
    key, text = (at["key"], at["msg"]) if at else ("", message)
    named = _NAMED.search(text)
    if named:
        key = f"{key}.{named['name']}" if key else named["name"]
    return f"{key}: {text}" if key else text


# --- writing (fleetdeck node token) -----------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def add_token(path: Path | str, name: str, role: Role) -> str:
    """Append a ``[[tokens]]`` entry holding a fresh token's sha256 to ``path``; return the token.

    The file is created with mode 0600. An existing file is validated first (a broken file is not made
    worse) and the name must be new to it.
    """
    file = Path(path)
    if role not in ROLES:
        raise TokensError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name or len(name) > 100 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise TokensError(f"token name {name!r} must be 1 to 100 printable characters")
    if file.exists():
        book = load_tokens(file) if file.read_text(encoding="utf-8").strip() else None
        if book is not None and name in book.names:
            raise TokensError(f"tokens file {file}: a token named {name!r} already exists")
    token = new_token()
    digest = hashlib.sha256(token.encode()).hexdigest()
    entry = f'\n[[tokens]]\nname = {_toml_string(name)}\nrole = "{role}"\nsha256 = "{digest}"\n'
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(entry)
    return token


def _toml_string(text: str) -> str:
    import tomli_w

    return tomli_w.dumps({"x": text}).split("=", 1)[1].strip()
