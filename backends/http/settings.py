"""How to reach one remote node: the keys of its config ``[[nodes]]`` entry (:class:`HttpOptions`), and
the settings made from them, checked once, up front.

A bad entry is an :class:`~backends.errors.Invalid` naming the key, variable or file at fault, raised
when the console starts rather than at the first poll. The token is read here and never put in a
message: messages name where it came from (``$FLEETDECK_TOKEN_GPU01``, ``token file /etc/...``).

A loopback node with no token configured gets the local operator token of the user running the console
(``local_auth.py``): a node served without ``--tokens`` answers only its owner.

TLS certificates are verified by default, against the system's CAs or the entry's ``ca_bundle``.
``options = {insecure = true}`` turns verification off; the backend then says so in its info labels.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from backends.errors import Invalid
from backends.local_token import token_path
from backends.loopback import is_loopback
from backends.plugin import NodeSettings
from backends.remote import RemoteOptions, checked_url, read_token

from .local_auth import LocalOperatorAuth
from .retry import RetryPolicy

# option name -> default; every option is a number of seconds but ``insecure`` and ``attempts``
DEFAULT_OPTIONS: dict[str, Any] = {
    "connect_timeout_s": 3.0,
    "read_timeout_s": 10.0,
    # a following log stream is silent between lines but for the server's keepalive (every ~10 s), so it
    # waits longer than an ordinary answer before it calls the connection dead
    "stream_timeout_s": 30.0,
    "stream_reconnect_s": 20.0,
    "attempts": 3,
    "insecure": False,
}


class HttpOptions(RemoteOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An http node's keys: ``url`` (required), ``token_env`` or ``token_file``, ``ca_bundle``, and in
    ``options`` the tuning in :data:`DEFAULT_OPTIONS`."""


@dataclass(frozen=True)
class HttpSettings:
    node_name: str
    url: str  # the node's base URL, without a trailing slash
    token: str | None = field(default=None, repr=False)
    token_source: str = "no token configured"  # where the token came from, for messages
    ca_bundle: Path | None = None
    insecure: bool = False
    environment: str = "dev"
    read_only: bool = False
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    stream_timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # the owner's local operator token, for a loopback node with no token configured (made here: every
    # way of building settings gets it); None for any other node
    local_auth: LocalOperatorAuth | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.token is None and self.local_auth is None:
            local = _local_auth(self.url)
            if local is not None:
                object.__setattr__(self, "local_auth", local)
                if self.token_source == "no token configured":
                    object.__setattr__(self, "token_source", f"the local operator token {local.path}")

    @property
    def is_https(self) -> bool:
        return self.url.startswith("https://")

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies the server's certificate with (an error here names the CA file)."""
        if self.insecure:
            return False
        if self.ca_bundle is None:
            return True
        return ssl_context_for(self.ca_bundle)

    def tls_label(self) -> str:
        """How the connection is protected, in words; loud when it is not."""
        if not self.is_https:
            return "none (plain http)"
        if self.insecure:
            return "CERTIFICATE NOT VERIFIED (options.insecure = true)"
        return f"verified against {self.ca_bundle}" if self.ca_bundle else "verified (system CAs)"


def settings_from_config(node: NodeSettings[HttpOptions]) -> HttpSettings:
    """The settings for one configured node; :class:`Invalid` naming the key, variable or file at fault."""
    name, entry = node.name or "http", node.backend_options
    url = _checked_url(name, entry.url)
    options = _checked_options(name, dict(entry.options or {}))
    token, source = read_token(name, entry.token_env, entry.token_file)
    ca_path = Path(entry.ca_bundle).expanduser() if entry.ca_bundle is not None else None
    if ca_path is not None and options["insecure"]:
        raise Invalid(f"node {name}: ca_bundle and options.insecure are both set; keep one")
    settings = HttpSettings(
        node_name=name,
        url=url,
        token=token,
        token_source=source,
        ca_bundle=ca_path,
        insecure=bool(options["insecure"]),
        environment=node.environment,
        read_only=node.read_only,
        connect_timeout_s=float(options["connect_timeout_s"]),
        read_timeout_s=float(options["read_timeout_s"]),
        stream_timeout_s=float(options["stream_timeout_s"]),
        retry=RetryPolicy(
            attempts=int(options["attempts"]), stream_reconnect_s=float(options["stream_reconnect_s"])
        ),
    )
    if settings.is_https:
        settings.verify()  # a missing or broken CA file is a config error, reported at start
    return settings


def _local_auth(url: str) -> LocalOperatorAuth | None:
    """The local operator token, for a node on this host (only there can it be this user's own node)."""
    parts = urlsplit(url)
    if not parts.hostname or not is_loopback(parts.hostname):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return LocalOperatorAuth(token_path(), port)


def ssl_context_for(ca_bundle: Path) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except FileNotFoundError:
        raise Invalid(f"ca_bundle {ca_bundle} does not exist") from None
    except ssl.SSLError as exc:  # before OSError, which it is a kind of
        raise Invalid(
            f"ca_bundle {ca_bundle} holds no usable PEM certificate ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise Invalid(f"ca_bundle {ca_bundle} cannot be read ({exc.strerror or exc})") from None


def _checked_url(name: str, url: Any) -> str:
    return checked_url(name, url, needs="the http backend needs a url", example="https://gpu-01.example:8765")


def _checked_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        known = ", ".join(DEFAULT_OPTIONS)
        raise Invalid(f"node {name}: unknown http option {unknown[0]!r} (known: {known})")
    merged = {**DEFAULT_OPTIONS, **options}
    if not isinstance(merged["insecure"], bool):
        raise Invalid(f"node {name}: option 'insecure' must be true or false, not {merged['insecure']!r}")
    attempts = merged["attempts"]
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 10:
        raise Invalid(f"node {name}: option 'attempts' must be a whole number from 1 to 10, not {attempts!r}")
    for key in ("connect_timeout_s", "read_timeout_s", "stream_timeout_s", "stream_reconnect_s"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            raise Invalid(f"node {name}: option {key!r} must be a number of seconds above 0, not {value!r}")
    return merged
