"""The http backend's config entry: url, token, TLS and options are checked when the backend is built, and
every problem is an Invalid naming the key, variable or file -- never the token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backends.errors import Invalid
from backends.http import HttpBackend
from backends.http.retry import RetryPolicy, parse_retry_after
from backends.model import ALL_CAPABILITIES
from backends.registry import resolve
from console.core.config import NodeConfig

from .test_http_backend_support import backend_for, write_token

SECRET = "s3cret-token-value-0123456789"


def test_registry_names_the_http_backend() -> None:
    assert resolve("http") is HttpBackend
    assert HttpBackend.name == "http"


def test_token_from_env_and_placeholder_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETDECK_TOKEN_GPU01", f"  {SECRET}\n")
    backend = backend_for(
        "https://gpu-01.example:8765/", token_env="FLEETDECK_TOKEN_GPU01", environment="production"
    )
    assert backend.settings.token == SECRET  # stripped
    assert backend.settings.url == "https://gpu-01.example:8765"
    assert SECRET not in repr(backend) and SECRET not in repr(backend.settings)
    info = backend.info  # before open: no I/O, the config's name and environment
    assert (info.id, info.name, info.backend, info.environment) == ("gpu-01", "gpu-01", "http", "production")
    assert info.labels["tls"] == "verified (system CAs)"
    assert backend.capabilities == ALL_CAPABILITIES
    assert backend.served_backend is None


def test_missing_or_empty_env_var_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETDECK_TOKEN_NOPE", raising=False)
    with pytest.raises(Invalid, match=r"\$FLEETDECK_TOKEN_NOPE.*not set"):
        backend_for("http://127.0.0.1:1", token_env="FLEETDECK_TOKEN_NOPE")
    monkeypatch.setenv("FLEETDECK_TOKEN_NOPE", "   ")
    with pytest.raises(Invalid, match=r"\$FLEETDECK_TOKEN_NOPE.*empty"):
        backend_for("http://127.0.0.1:1", token_env="FLEETDECK_TOKEN_NOPE")


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = write_token(tmp_path / "token", SECRET)
    backend = backend_for("http://127.0.0.1:1", token_file=path)
    assert backend.settings.token == SECRET
    assert backend.settings.token_source == f"token file {path}"


def test_unreadable_token_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(Invalid, match=f"token file {missing} does not exist"):
        backend_for("http://127.0.0.1:1", token_file=missing)
    with pytest.raises(Invalid, match=f"token file {tmp_path} cannot be read"):
        backend_for("http://127.0.0.1:1", token_file=tmp_path)  # a directory
    empty = write_token(tmp_path / "empty", "")
    with pytest.raises(Invalid, match="is empty"):
        backend_for("http://127.0.0.1:1", token_file=empty)


def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = write_token(tmp_path / "token", "two words")
    with pytest.raises(Invalid) as caught:
        backend_for("http://127.0.0.1:1", token_file=path)
    assert "two words" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (None, "needs a url"),
        ("ftp://gpu-01:8765", "http:// or https://"),
        ("gpu-01:8765", "http:// or https://"),
        ("http://gpu-01:port", "invalid port"),
        ("http://gpu-01:8765/?x=1", "query"),
    ],
)
def test_bad_urls(url: str | None, problem: str) -> None:
    with pytest.raises(Invalid, match=problem):
        HttpBackend.from_config(NodeConfig(name="gpu-01", backend="http", url=url), clock=time.time)


def test_ca_bundle_must_be_a_readable_pem(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=f"ca_bundle {tmp_path / 'ca.pem'} does not exist"):
        backend_for("https://127.0.0.1:1", ca_bundle=tmp_path / "ca.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(Invalid, match="no usable PEM"):
        backend_for("https://127.0.0.1:1", ca_bundle=junk)


def test_insecure_is_said_loudly_and_excludes_a_ca_bundle(tmp_path: Path) -> None:
    backend = backend_for("https://127.0.0.1:1", options={"insecure": True})
    assert backend.settings.verify() is False
    assert "NOT VERIFIED" in backend.info.labels["tls"]
    with pytest.raises(Invalid, match="keep one"):
        backend_for("https://127.0.0.1:1", options={"insecure": True}, ca_bundle=tmp_path / "ca.pem")


def test_options_are_checked() -> None:
    backend = backend_for(
        "http://127.0.0.1:1", options={"connect_timeout_s": 1, "read_timeout_s": 2.5, "attempts": 5}
    )
    assert (backend.settings.connect_timeout_s, backend.settings.read_timeout_s) == (1.0, 2.5)
    assert backend.settings.retry.attempts == 5
    with pytest.raises(Invalid, match="unknown http option 'timeout'"):
        backend_for("http://127.0.0.1:1", options={"timeout": 3})
    with pytest.raises(Invalid, match="read_timeout_s"):
        backend_for("http://127.0.0.1:1", options={"read_timeout_s": "10"})
    with pytest.raises(Invalid, match="attempts"):
        backend_for("http://127.0.0.1:1", options={"attempts": 0})
    with pytest.raises(Invalid, match="insecure"):
        backend_for("http://127.0.0.1:1", options={"insecure": "yes"})


def test_backoff_grows_with_jitter_under_the_cap() -> None:
    import random

    policy = RetryPolicy(base_s=0.2, cap_s=2.0, rng=random.Random(1))
    for attempt, ceiling in enumerate([0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        delays = {policy.delay(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, not lock-step
    assert policy.delay(0, retry_after=1.5) >= 1.5  # the server's Retry-After is honoured ...
    assert policy.delay(0, retry_after=600) <= 2.0  # ... up to the cap
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_a_loopback_node_without_a_token_uses_the_local_operator_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backends.http.settings import settings_from_config
    from backends.local_token import token_path

    local = settings_from_config(NodeConfig(name="here", backend="http", url="http://127.0.0.1:8765"))
    assert local.token is None and local.local_auth is not None
    assert local.local_auth.path == token_path() and local.local_auth.port == 8765
    assert str(token_path()) in local.token_source
    remote = settings_from_config(NodeConfig(name="gpu", backend="http", url="https://gpu-01.example:8765"))
    assert remote.local_auth is None  # the owner's token never leaves this host
    monkeypatch.setenv("FLEETDECK_TOKEN_HERE", SECRET)
    configured = settings_from_config(
        NodeConfig(name="here", backend="http", url="http://127.0.0.1:8765", token_env="FLEETDECK_TOKEN_HERE")
    )
    assert configured.token == SECRET and configured.local_auth is None
