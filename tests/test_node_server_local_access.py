"""Who may call a served node: another local user may not, the owner may, and no credential is ever logged.

Real ``fleetdeck node serve`` processes on 127.0.0.1, real curl run as another OS user (uid 65534 through
``setpriv``), the real CLI as the owner. We are root here and in CI; the other-user test says why it
skips where it cannot switch users.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backends.model import AuditEntry, from_json
from backends.node_api import ACTION_PATHS
from tests.agents.local_node import LocalNode
from tests.conftest import one_line_error
from tests.serving import ServedNode

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
CURL = shutil.which("curl")
SERVER_USER = pwd.getpwuid(os.geteuid()).pw_name


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    assert SETPRIV is not None
    return subprocess.run(
        [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


def curl_as_nobody(url: str, *options: str) -> str:
    """The HTTP status another local user gets (curl's ``%{http_code}``)."""
    assert CURL is not None
    result = as_nobody(CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15", *options, url)
    return result.stdout.strip()


def write_config(env: dict[str, str], text: str) -> None:
    config = Path(env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


@pytest.mark.skipif(
    SETPRIV is None or CURL is None or os.geteuid() != 0,
    reason="acting as another local user needs setpriv, curl and root (to switch to uid 65534)",
)
def test_another_local_user_can_neither_read_nor_act(tmp_path: Path, cli_env: dict[str, str]) -> None:
    node = LocalNode(tmp_path, cli_env)
    marker = tmp_path / "dispatched-by-nobody"
    served = ServedNode("--listen", "127.0.0.1:0", env=node.env, cwd=tmp_path)
    try:
        with served:
            url = served.url
            dispatch = json.dumps({"request": {"command": ["touch", str(marker)], "name": "intruder"}})
            post = ("-X", "POST", "-H", "Content-Type: application/json", "-H", "X-Fleetdeck-Operator: root")
            assert curl_as_nobody(f"{url}/v1/snapshot") == "401"
            assert curl_as_nobody(f"{url}{ACTION_PATHS['dispatch']}", *post, "--data", dispatch) == "401"
            assert curl_as_nobody(f"{url}/metrics") == "401"
            assert curl_as_nobody(f"{url}/healthz") == "200"  # public: says nothing about the fleet
            # the owner's token is there, but not for another user to read
            assert served.local_token_file.is_file()
            assert as_nobody("cat", str(served.local_token_file)).returncode != 0

            # the owner's CLI, configured with nothing but the URL, reads and acts
            write_config(
                node.env, f'operator = "mallory"\n[[nodes]]\nname = "lab"\nbackend = "http"\nurl = "{url}"\n'
            )
            assert node.json("agents", "--node", "lab") == []  # no "intruder" agent was started
            node.ok("checkpoint", "--node", "lab", "--label", "by the owner")
            # a header cannot choose who the audit names: the credential does
            headers = {**served.auth(), "X-Fleetdeck-Operator": "mallory"}
            made = httpx.post(
                f"{url}{ACTION_PATHS['checkpoint']}", json={"label": "claimed"}, headers=headers
            )
            assert made.status_code == 201, made.text
            audit = from_json(httpx.get(f"{url}/v1/audit", headers=served.auth()).content, list[AuditEntry])
        assert not marker.exists()  # nothing ran for the other user
        checkpoints = [(e.operator, e.params.get("label")) for e in audit if e.action == "checkpoint"]
        assert checkpoints == [(SERVER_USER, "by the owner"), (SERVER_USER, "claimed")]
        assert "mallory" not in {e.operator for e in audit}
    finally:
        node.reap()


def test_the_local_operator_token_is_private_and_kept(cli_env: dict[str, str]) -> None:
    served = ServedNode("--demo", "--listen", "127.0.0.1:0", "--no-access-log", env=cli_env)
    with served:
        token_file = served.local_token_file
        first = token_file.read_text()
        assert httpx.get(f"{served.url}/v1/snapshot").status_code == 401
        assert (
            httpx.get(f"{served.url}/v1/snapshot", headers={"Authorization": "Bearer x" * 3}).status_code
            == 401
        )
        assert httpx.get(f"{served.url}/v1/snapshot", headers=served.auth()).status_code == 200
        assert httpx.get(f"{served.url}/metrics", headers=served.auth()).status_code == 200
        whoami = httpx.get(f"{served.url}/v1/whoami", headers=served.auth()).json()
        assert (whoami["name"], whoami["role"]) == (SERVER_USER, "operator")
        served.stop()
        served.restart()
        assert token_file.read_text() == first  # the same token across restarts: clients keep working
    assert oct(token_file.stat().st_mode & 0o777) == oct(0o600)
    assert oct(token_file.parent.stat().st_mode & 0o777) == oct(0o700)
    assert len(first.strip()) >= 40


def test_a_local_operator_token_others_can_read_or_a_symlink_is_refused(
    fleetdeck, cli_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = Path(cli_env["XDG_STATE_HOME"]) / "fleetdeck" / "local-operator.token"
    token_file.parent.mkdir(parents=True, mode=0o700)
    token_file.write_text(secrets.token_urlsafe(32) + "\n")
    token_file.chmod(0o644)
    result = fleetdeck("node", "serve", "--demo", "--listen", "127.0.0.1:0", timeout=30)
    line = one_line_error(result)
    assert result.returncode == 2 and str(token_file) in line and "others" in line
    token_file.unlink()
    elsewhere = tmp_path / "elsewhere.token"
    elsewhere.write_text(secrets.token_urlsafe(32) + "\n")
    elsewhere.chmod(0o600)
    token_file.symlink_to(elsewhere)
    result = fleetdeck("node", "serve", "--demo", "--listen", "127.0.0.1:0", timeout=30)
    line = one_line_error(result)
    assert result.returncode == 2 and str(token_file) in line and "symbolic link" in line


NOBODYS_SERVER = """
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("authorization:", self.headers.get("Authorization"), flush=True)
        self.send_response(401)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.mark.skipif(
    SETPRIV is None or os.geteuid() != 0,
    reason="listening as another local user needs setpriv and root (to switch to uid 65534)",
)
async def test_the_token_is_not_sent_to_a_port_another_user_listens_on() -> None:
    """Another user who takes a loopback port (say, while the owner's node is down) collects nothing."""
    from backends.errors import AuthFailed
    from backends.local_token import ensure_token
    from tests.test_http_backend_support import backend_for

    token = ensure_token()  # the owner has one: a node of theirs ran here before
    squatter = subprocess.Popen(
        [
            str(SETPRIV),
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            sys.executable,
            "-c",
            NOBODYS_SERVER,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert squatter.stdout is not None
        port = int(squatter.stdout.readline())
        backend = backend_for(f"http://127.0.0.1:{port}", options={"attempts": 1})
        with pytest.raises(AuthFailed, match=f"port {port} is listened on by"):
            await backend.open()
        await backend.close()
    finally:
        squatter.kill()
        seen, _ = squatter.communicate(timeout=10)
    assert "authorization: None" in seen and token not in seen


# --- the tokens file ------------------------------------------------------------------------------------


def make_tokens(fleetdeck, path: Path) -> str:
    made = fleetdeck("node", "token", "alice", "--role", "operator", "--tokens", str(path), timeout=30)
    assert made.returncode == 0, made.stderr
    return str(made.stdout.strip())


def test_a_tokens_file_others_can_write_is_refused(fleetdeck, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    make_tokens(fleetdeck, tokens)
    for mode in (0o666, 0o620, 0o602):
        tokens.chmod(mode)
        result = fleetdeck("node", "serve", "--demo", "--tokens", str(tokens), timeout=30)
        line = one_line_error(result)
        assert result.returncode == 2 and str(tokens) in line and "write" in line, (oct(mode), line)
        assert result.stdout == ""
    tokens.chmod(0o600)
    if os.geteuid() == 0:  # only root can give a file away
        os.chown(tokens, NOBODY, NOBODY)
        result = fleetdeck("node", "serve", "--demo", "--tokens", str(tokens), timeout=30)
        line = one_line_error(result)
        assert result.returncode == 2 and str(tokens) in line and "owned by" in line


def test_a_readable_tokens_file_with_plain_tokens_is_warned_about(
    cli_env: dict[str, str], fleetdeck, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text('[[tokens]]\nname = "grafana"\nrole = "viewer"\ntoken = "a-plain-token-0123456789"\n')
    plain.chmod(0o644)
    with ServedNode("--demo", "--tokens", str(plain), "--listen", "127.0.0.1:0", env=cli_env) as node:
        plain_auth = {"Authorization": "Bearer a-plain-token-0123456789"}
        assert httpx.get(f"{node.url}/v1/snapshot", headers=plain_auth).status_code == 200
        node.stop()
        warnings = [line for line in node.stderr_text().splitlines() if str(plain) in line]
    assert len(warnings) == 1 and "readable" in warnings[0] and "chmod 600" in warnings[0]
    hashed = tmp_path / "hashed.toml"
    make_tokens(fleetdeck, hashed)
    hashed.chmod(0o644)  # only sha256 of 256-bit tokens: nothing in it helps whoever reads it
    with ServedNode("--demo", "--tokens", str(hashed), "--listen", "127.0.0.1:0", env=cli_env) as node:
        node.stop()
        assert str(hashed) not in node.stderr_text()


def test_tokens_on_a_network_address_need_tls_unless_plain_http_is_asked_for(
    fleetdeck, cli_env: dict[str, str], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    alice = make_tokens(fleetdeck, tokens)
    result = fleetdeck(
        "node", "serve", "--demo", "--tokens", str(tokens), "--listen", "0.0.0.0:0", timeout=30
    )
    line = one_line_error(result)
    assert result.returncode == 2 and "--allow-plain-http" in line and "TLS" in line
    args = ("--demo", "--tokens", str(tokens), "--listen", "0.0.0.0:0", "--allow-plain-http")
    with ServedNode(*args, "--no-access-log", env=cli_env) as node:
        url = f"http://127.0.0.1:{node.port}"
        assert (
            httpx.get(f"{url}/v1/snapshot", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
        )


# --- no credential in a log -------------------------------------------------------------------------------


def test_no_credential_reaches_the_log_whatever_the_client_sends(
    fleetdeck, cli_env: dict[str, str], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    alice = make_tokens(fleetdeck, tokens)
    secret = "s3cret-" + secrets.token_hex(12)
    attempts: list[tuple[str, str, dict[str, str]]] = [
        ("GET", f"/v1/snapshot?access_token={secret}", {}),
        ("GET", f"/v1/audit?since_seq=0&token={secret}", {}),
        ("GET", f"/v1/audit?{secret}", {}),
        ("GET", "/v1/snapshot", {"Authorization": f"Bearer {secret}"}),
        ("GET", "/v1/snapshot", {"Authorization": f"Basic {secret}"}),
        ("GET", "/v1/snapshot", {"Authorization": f"Bearer {alice}", "X-Api-Key": secret, "Cookie": secret}),
        ("GET", f"/v1/agents/{secret}", {"Authorization": f"Bearer {alice}"}),
        ("GET", f"/{secret}", {}),
        ("POST", f"{ACTION_PATHS['pause']}?access_token={secret}", {"Authorization": f"Bearer {alice}"}),
        ("GET", "/v1/snapshot", {"Authorization": f"Bearer {alice}", "X-Fleetdeck-Operator": secret}),
    ]
    for args in (("--tokens", str(tokens)), ()):
        with ServedNode("--demo", *args, "--listen", "127.0.0.1:0", env=cli_env) as node:
            with httpx.Client(base_url=node.url, timeout=15) as client:
                for method, path, headers in attempts:
                    client.request(method, path, headers=headers, json={} if method == "POST" else None)
                owner = node.auth() or {"Authorization": f"Bearer {alice}"}
                assert client.get("/v1/snapshot", headers=owner).status_code == 200
            node.stop()
            log = node.stderr_text()
        assert secret not in log and alice not in log, log
        token = node.local_token_file.read_text().strip() if node.local_token_file.exists() else None
        assert token is None or token not in log
        assert "GET /v1/snapshot" in log and "POST /v1/actions/pause" in log  # the access log is still there
