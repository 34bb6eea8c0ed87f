"""How to reach one Ray cluster's dashboard: the keys of its config ``[[nodes]]`` entry (:class:`RayOptions`),
and the settings made from them, checked up front.

A bad entry is an :class:`~backends.errors.Invalid` naming the key, variable or file at fault, raised when
the console starts rather than at the first poll. The token is read here and never put in a message:
messages name where it came from (``$RAY_TOKEN``, ``token file /etc/...``).

The state dir holds what Ray itself does not keep for us: checkpoints (job specs), the audit trail and
dispatch keys. It is ``state_dir`` (or ``options.state_dir``), else ``$XDG_STATE_HOME/fleetdeck/ray/<name>``.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.errors import Invalid
from backends.plugin import NodeSettings
from backends.remote import RemoteOptions, checked_url, read_token

DEFAULT_OPTIONS: dict[str, Any] = {
    "connect_timeout_s": 3.0,
    "read_timeout_s": 10.0,
    "attempts": 3,
    "insecure": False,
    "log_poll_s": 1.0,  # how often a following log stream asks the dashboard for new lines
    "max_jobs": 50,  # the newest jobs shown as phases and tasks, and whose logs are read
    "max_log_streams": 16,  # log files followed at once (each holds one of the dashboard's request slots)
    "task_figures_s": 10.0,  # how often each actor's call counts are fetched (the task list); 0: never
    "state_dir": None,
}
_SECONDS = ("connect_timeout_s", "read_timeout_s", "log_poll_s")


class RayOptions(RemoteOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A Ray cluster's keys: ``url`` (the dashboard, required), ``token_env`` or ``token_file``,
    ``ca_bundle``, ``state_dir``, and in ``options`` the tuning in :data:`DEFAULT_OPTIONS`."""

    #: where checkpoints, the audit trail and dispatch keys are kept (also ``options.state_dir``)
    state_dir: Path | None = None


@dataclass(frozen=True)
class RaySettings:
    node_name: str
    url: str  # the dashboard's base URL, without a trailing slash
    state_dir: Path
    token: str | None = field(default=None, repr=False)
    token_source: str = "no token configured"  # where the token came from, for messages
    ca_bundle: Path | None = None
    insecure: bool = False
    environment: str = "dev"
    read_only: bool = False
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    attempts: int = 3
    log_poll_s: float = 1.0
    max_jobs: int = 50
    max_log_streams: int = 16
    task_figures_s: float = 10.0

    @property
    def is_https(self) -> bool:
        return self.url.startswith("https://")

    def verify(self) -> ssl.SSLContext | bool:
        if self.insecure:
            return False
        if self.ca_bundle is None:
            return True
        try:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise Invalid(
                f"node {self.node_name}: ca_bundle {self.ca_bundle} is not usable ({exc})"
            ) from None


def default_state_dir(node_name: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleetdeck" / "ray" / node_name


def settings_from_config(node: NodeSettings[RayOptions]) -> RaySettings:
    """The settings for one configured cluster; :class:`Invalid` naming the key, variable or file at fault."""
    name, entry = node.name or "ray", node.backend_options
    url = _checked_url(name, entry.url)
    options = _checked_options(name, dict(entry.options or {}))
    token, source = read_token(name, entry.token_env, entry.token_file)
    ca_bundle = entry.ca_bundle
    state_dir = entry.state_dir or options["state_dir"]
    settings = RaySettings(
        node_name=name,
        url=url,
        state_dir=Path(state_dir).expanduser() if state_dir else default_state_dir(name),
        token=token,
        token_source=source,
        ca_bundle=Path(ca_bundle).expanduser() if ca_bundle is not None else None,
        insecure=bool(options["insecure"]),
        environment=node.environment,
        read_only=node.read_only,
        connect_timeout_s=float(options["connect_timeout_s"]),
        read_timeout_s=float(options["read_timeout_s"]),
        attempts=int(options["attempts"]),
        log_poll_s=float(options["log_poll_s"]),
        max_jobs=int(options["max_jobs"]),
        max_log_streams=int(options["max_log_streams"]),
        task_figures_s=float(options["task_figures_s"]),
    )
    if settings.ca_bundle is not None and settings.insecure:
        raise Invalid(f"node {name}: ca_bundle and options.insecure are both set; keep one")
    if settings.is_https:
        settings.verify()  # a missing or broken CA file is a config error, reported at start
    return settings


def _checked_url(name: str, url: Any) -> str:
    return checked_url(
        name, url, needs="the ray backend needs the dashboard url", example="http://127.0.0.1:8265"
    )


def _checked_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        known = ", ".join(DEFAULT_OPTIONS)
        raise Invalid(f"node {name}: unknown ray option {unknown[0]!r} (known: {known})")
    merged = {**DEFAULT_OPTIONS, **options}
    if not isinstance(merged["insecure"], bool):
        raise Invalid(f"node {name}: option 'insecure' must be true or false, not {merged['insecure']!r}")
    for key, low, high in (("attempts", 1, 10), ("max_jobs", 1, 10_000), ("max_log_streams", 1, 64)):
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Invalid(
                f"node {name}: option {key!r} must be a whole number from {low} to {high}, not {value!r}"
            )
    for key in _SECONDS:
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            raise Invalid(f"node {name}: option {key!r} must be a number of seconds above 0, not {value!r}")
    pace = merged["task_figures_s"]
    if isinstance(pace, bool) or not isinstance(pace, int | float) or not 0 <= pace <= 3600:
        raise Invalid(
            f"node {name}: option 'task_figures_s' must be a number of seconds from 0 (never) to 3600,"
            f" not {pace!r}"
        )
    if merged["state_dir"] is not None and not isinstance(merged["state_dir"], str):
        raise Invalid(f"node {name}: option 'state_dir' must be a path, not {merged['state_dir']!r}")
    return merged
