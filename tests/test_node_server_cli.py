"""``fleetdeck node serve`` and ``fleetdeck node token`` end to end: the real CLI as a subprocess."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trustme

from backends.model import Agent, AuditEntry, from_json
from backends.node_api import ACTION_PATHS
from tests.conftest import one_line_error
from tests.serving import STARTUP_LINE, ServedNode


def test_non_loopback_without_tokens_is_refused(fleetdeck) -> None:
    for listen in ("0.0.0.0:0", "[::]:0", "example.com:8765"):
        result = fleetdeck("node", "serve", "--demo", "--listen", listen, timeout=30)
        assert result.returncode == 2, result.stderr
        line = one_line_error(result)
        assert "--tokens" in line and "refusing" in line
        assert result.stdout == ""


def test_bad_listen_tls_and_tokens_options_are_one_line_usage_errors(fleetdeck, tmp_path: Path) -> None:
    cases = {
        ("--listen", "8765"): "HOST:PORT",
        ("--listen", "127.0.0.1:99999"): "out of range",
        ("--certfile", str(tmp_path / "cert.pem")): "both",
        ("--certfile", str(tmp_path / "c.pem"), "--keyfile", str(tmp_path / "k.pem")): "no such file",
        ("--tokens", str(tmp_path / "missing.toml")): "no such file",
        ("--node", "nowhere"): "nowhere",
    }
    for args, words in cases.items():
        result = fleetdeck("node", "serve", *args, timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert words in one_line_error(result), args
    bad = tmp_path / "tokens.toml"
    bad.write_text('[[tokens]]\nname = "ops"\nrole = "admin"\nsha256 = "' + "a" * 64 + '"\n')
    result = fleetdeck("node", "serve", "--tokens", str(bad), timeout=30)
    line = one_line_error(result)
    assert result.returncode == 2 and str(bad) in line and "tokens[0].role" in line
    bad.write_text('[[tokens]]\nname = "ops"\nrole = "viewer"\n')
    line = one_line_error(fleetdeck("node", "serve", "--tokens", str(bad), timeout=30))
    assert "tokens[0]" in line and "sha256" in line


def test_a_port_in_use_is_one_line(fleetdeck) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = fleetdeck("node", "serve", "--demo", "--listen", f"127.0.0.1:{port}", timeout=30)
    assert result.returncode == 2
    assert "already in use" in one_line_error(result)


def test_startup_line_and_clean_shutdown_on_sigterm(cli_env: dict[str, str], tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console",
            "node",
            "serve",
            "--state-dir",
            str(tmp_path / "node"),
            "--listen",
            "127.0.0.1:0",
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().rstrip("\n")
        match = STARTUP_LINE.match(line)
        assert match is not None, line
        assert match["name"] == "local" and match["scheme"] == "http" and match["host"] == "127.0.0.1"
        url = match["url"]
        assert httpx.get(f"{url}/healthz").json()["backend"] == "local"
        assert httpx.get(f"{url}/v1/snapshot").status_code == 401  # only the owner, with its token
        token = (Path(cli_env["XDG_STATE_HOME"]) / "fleetdeck" / "local-operator.token").read_text().strip()
        assert (
            httpx.get(f"{url}/v1/snapshot", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out == ""  # stdout carries the startup line only; the access log is on stderr
    assert "GET /healthz" in err and "Traceback" not in err


def test_a_configured_node_can_be_served(fleetdeck, cli_env: dict[str, str], tmp_path: Path) -> None:
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[[nodes]]\nname = "lab"\nbackend = "demo"\nseed = 3\n')
    with ServedNode("--node", "lab", "--listen", "127.0.0.1:0", env=cli_env) as node:
        assert node.name == "lab"
        assert httpx.get(f"{node.url}/v1/info", headers=node.auth()).json()["name"] == "lab"
    result = fleetdeck("node", "serve", "--node", "lab", "--demo", timeout=30)
    assert result.returncode == 2 and "cannot be combined" in one_line_error(result)


# --- tokens ------------------------------------------------------------------------------------------------


def test_node_token_writes_a_private_file_and_prints_the_token_once(fleetdeck, tmp_path: Path) -> None:
    tokens = tmp_path / "secrets" / "tokens.toml"
    made = fleetdeck("node", "token", "alice", "--role", "operator", "--tokens", str(tokens), timeout=30)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    text = tokens.read_text()
    assert token not in text and hashlib.sha256(token.encode()).hexdigest() in text
    again = fleetdeck("node", "token", "alice", "--role", "viewer", "--tokens", str(tokens), timeout=30)
    assert again.returncode == 2 and "already exists" in one_line_error(again)
    other = fleetdeck("node", "token", "bob", "--role", "viewer", "--tokens", str(tokens), timeout=30)
    assert other.returncode == 0 and other.stdout.strip() != token
    assert text.count("[[tokens]]") == 1 and tokens.read_text().count("[[tokens]]") == 2


def test_served_with_tokens_end_to_end(fleetdeck, cli_env: dict[str, str], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    alice = fleetdeck("node", "token", "alice", "--role", "operator", "--tokens", str(tokens)).stdout.strip()
    viewer = fleetdeck("node", "token", "dash", "--role", "viewer", "--tokens", str(tokens)).stdout.strip()
    # with tokens, a non-loopback address is allowed (plain http only when asked for)
    args = ("--demo", "--tokens", str(tokens), "--listen", "0.0.0.0:0", "--allow-plain-http")
    with ServedNode(*args, env=cli_env) as node:
        url = f"http://127.0.0.1:{node.port}"
        assert httpx.get(f"{url}/v1/agents").status_code == 401
        agents = from_json(
            httpx.get(f"{url}/v1/agents", headers={"Authorization": f"Bearer {viewer}"}).content, list[Agent]
        )
        path = f"{url}{ACTION_PATHS['pause']}"
        denied = httpx.post(
            path, json={"target": agents[0].id}, headers={"Authorization": f"Bearer {viewer}"}
        )
        assert denied.status_code == 403 and "dash" in denied.json()["detail"]
        headers = {"Authorization": f"Bearer {alice}", "X-Fleetdeck-Operator": "someone-else"}
        assert httpx.post(path, json={"target": agents[0].id}, headers=headers).status_code == 200
        audit = from_json(httpx.get(f"{url}/v1/audit", headers=headers).content, list[AuditEntry])
        assert audit[-1].operator == "alice" and audit[-1].action == "pause"
        node.stop()
        log = node.stderr_text()
    assert alice not in log and viewer not in log  # tokens are never logged
    assert "POST /v1/actions/pause" in log


# --- TLS ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def test_tls_with_a_self_signed_certificate(
    cli_env: dict[str, str], tmp_path: Path, certificate_authority: trustme.CA
) -> None:
    cert = certificate_authority.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    os.chmod(keyfile, 0o600)
    with ServedNode(
        "--demo",
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
        "--listen",
        "127.0.0.1:0",
        env=cli_env,
    ) as node:
        assert node.scheme == "https" and node.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context()
        certificate_authority.configure_trust(trusted)
        assert httpx.get(f"{node.url}/healthz", verify=trusted).status_code == 200
        with pytest.raises(httpx.ConnectError):  # an unknown CA is refused by the client
            httpx.get(f"{node.url}/healthz", verify=ssl.create_default_context())
        with pytest.raises(httpx.TransportError):  # plain http to the TLS port gets nothing
            httpx.get(f"http://127.0.0.1:{node.port}/healthz", timeout=5)
        # the server is still fine after the plain-text attempt
        assert httpx.get(f"{node.url}/healthz", verify=trusted).status_code == 200


def test_a_bad_certificate_is_one_line(fleetdeck, tmp_path: Path) -> None:
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_text("not a certificate")
    keyfile.write_text("not a key")
    result = fleetdeck(
        "node", "serve", "--demo", "--certfile", str(certfile), "--keyfile", str(keyfile), timeout=30
    )
    assert result.returncode == 2 and "certificate" in one_line_error(result)


def test_restart_pins_the_port(cli_env: dict[str, str]) -> None:
    node = ServedNode("--demo", "--listen", "127.0.0.1:0", "--no-access-log", env=cli_env)
    with node:
        port = node.port
        node.kill()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{node.url}/healthz", timeout=2)
        time.sleep(0.05)
        node.restart()
        assert node.port == port and httpx.get(f"{node.url}/healthz").status_code == 200
