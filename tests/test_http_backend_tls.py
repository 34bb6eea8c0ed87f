"""TLS: ``fleetdeck node serve --certfile --keyfile`` with a trustme CA. Verification is on by default; the
node's CA is given by ``ca_bundle``; ``insecure`` turns it off and says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from backends.errors import Unreachable

from .serving import ServedNode, same_state_home
from .test_http_backend_support import backend_for


@pytest.fixture
def tls_node(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[tuple[ServedNode, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, ca_file = tmp_path / "node.pem", tmp_path / "node.key", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_file))
    args = ("--demo", "--listen", "127.0.0.1:0", "--certfile", str(certfile), "--keyfile", str(keyfile))
    with ServedNode(*args, "--no-access-log", env=same_state_home(cli_env)) as node:
        assert node.url.startswith("https://")
        yield node, ca_file


async def test_the_nodes_ca_verifies_it(tls_node: tuple[ServedNode, Path]) -> None:
    node, ca_file = tls_node
    async with backend_for(node.url, ca_bundle=ca_file) as backend:
        snapshot = await backend.snapshot()
        assert snapshot.agents
        assert backend.info.labels["tls"] == f"verified against {ca_file}"


async def test_without_the_ca_the_certificate_is_refused(tls_node: tuple[ServedNode, Path]) -> None:
    node, _ = tls_node
    backend = backend_for(node.url)
    with pytest.raises(Unreachable) as caught:
        await backend.open()
    await backend.close()
    message = str(caught.value)
    assert message.startswith(f"cannot reach node gpu-01 at {node.url}: TLS certificate verify failed: ")
    assert "certificate" in message.split("verify failed: ", 1)[1]


async def test_another_ca_is_refused_too(tls_node: tuple[ServedNode, Path], tmp_path: Path) -> None:
    node, _ = tls_node
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    backend = backend_for(node.url, ca_bundle=other)
    with pytest.raises(Unreachable, match="TLS certificate verify failed"):
        await backend.snapshot()
    await backend.close()


async def test_insecure_connects_and_says_so(tls_node: tuple[ServedNode, Path]) -> None:
    node, _ = tls_node
    async with backend_for(node.url, options={"insecure": True}) as backend:
        assert (await backend.snapshot()).agents
        assert backend.info.labels["tls"] == "CERTIFICATE NOT VERIFIED (options.insecure = true)"


async def test_plain_http_to_a_tls_node_hints_at_https(tls_node: tuple[ServedNode, Path]) -> None:
    node, _ = tls_node
    backend = backend_for(node.url.replace("https://", "http://"), options={"attempts": 1})
    with pytest.raises(
        Unreachable, match=r"closed the connection without answering \(does it serve https\?\)"
    ):
        await backend.open()
    await backend.close()
