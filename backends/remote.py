"""What the backends that reach a node over HTTP share (the http and ray backends): the keys of their
config entries, checking the configured URL, reading the token, and building the pooled client. Not a
backend itself, so both may import it."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import msgspec

from .errors import Invalid
from .plugin import BackendOptions, Problem

_ENV_VAR_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Where a token may travel over plain http: it never leaves this host.
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})


class RemoteOptions(BackendOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The keys of a node reached over HTTP. Secrets never live here: only where to find them."""

    #: the node's base URL (for ray, the dashboard's); without one the backend has nothing to reach
    url: str
    #: the name of the environment variable that holds the bearer token
    token_env: str | None = None
    #: a file that holds the bearer token (keep it private: mode 0600)
    token_file: Path | None = None
    #: the CA certificates (PEM) an https node's certificate is verified against; default: the system's
    ca_bundle: Path | None = None
    #: the backend's tuning (timeouts, attempts, insecure, ...), checked when the backend is built
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def problems(self) -> Iterator[Problem]:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            yield "url", f"expected an http:// or https:// URL, got {self.url!r}"
        if self.token_env is not None and not _ENV_VAR_PATTERN.fullmatch(self.token_env):
            # Never echo the value: a token pasted here by mistake must not land in a terminal log.
            yield "token_env", "expected the name of an environment variable, not the token itself"
        if self.token_env is not None and self.token_file is not None:
            yield None, "token_env and token_file are both set; keep one"

    def warnings(self, node: str) -> Iterator[Problem]:
        host = urlsplit(self.url).hostname
        has_token = self.token_env is not None or self.token_file is not None
        if has_token and self.url.startswith("http://") and host not in _LOOPBACK:
            yield "url", f"the token for {node!r} would cross the network unencrypted; use https://"


def read_token(name: str, token_env: Any, token_file: Any) -> tuple[str | None, str]:
    """The bearer token a node's config points at (``token_env`` or ``token_file``) and where it came from,
    said without the token; ``(None, "no token configured")`` when neither is set."""
    if token_env and token_file:
        raise Invalid(f"node {name}: token_env and token_file are both set; keep one")
    if token_env:
        value = os.environ.get(str(token_env))
        if value is None:
            raise Invalid(f"node {name}: environment variable ${token_env} (token_env) is not set")
        token, source = value.strip(), f"${token_env}"
    elif token_file:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise Invalid(f"node {name}: token file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise Invalid(f"node {name}: token file {path} cannot be read ({why})") from None
        source = f"token file {path}"
    else:
        return None, "no token configured"
    if not token:
        raise Invalid(f"node {name}: the token from {source} is empty")
    # A token goes into a header: a pasted newline or non-ASCII character would fail every request later.
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise Invalid(
            f"node {name}: the token from {source} holds spaces or characters a header cannot carry"
        )
    return token, source


def checked_url(name: str, url: Any, *, needs: str, example: str) -> str:
    """The node's base URL without a trailing slash; :class:`Invalid` in words for anything else."""
    if not url:
        raise Invalid(f"node {name}: {needs} (e.g. {example})")
    text = str(url).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"node {name}: url must be an http:// or https:// URL, not {text!r}")
    if parts.query or parts.fragment:
        raise Invalid(f"node {name}: url must not carry a query or fragment: {text!r}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise Invalid(f"node {name}: url has an invalid port: {text!r}") from None
    return text.rstrip("/")


def pooled_client(
    url: str,
    *,
    token: str | None,
    user_agent: str,
    connect_timeout_s: float,
    read_timeout_s: float,
    verify: ssl.SSLContext | bool,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """``token``: a fixed bearer token; ``auth``: one that is worked out per request (the http backend's
    local operator token)."""
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(
        base_url=url,
        headers=headers,
        auth=auth,
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
        verify=verify,
        follow_redirects=False,  # a redirect would carry the token somewhere the config did not name
        trust_env=False,  # no proxy from the environment: the token goes only to the configured URL
    )
