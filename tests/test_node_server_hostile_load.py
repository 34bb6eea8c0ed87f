"""The node server under hostile load, and its idempotency keys across a real restart.

Real ``fleetdeck node serve`` processes on 127.0.0.1, raw sockets for the slow clients, real httpx for the
normal ones. Every loop is bounded in count and in time; nothing here asserts how long anything took.
"""

from __future__ import annotations

import concurrent.futures
import resource
import selectors
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from backends.model import AuditEntry, Checkpoint, from_json
from backends.node_api import ACTION_PATHS, IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER
from tests.conftest import one_line_error
from tests.serving import ServedNode

SLOW_CLIENTS = 1100
NORMAL_REQUESTS = 20
SERVER_FD_LIMIT = 1024
HEADER_TIMEOUT_S = 3
CLIENT_TIMEOUT_S = 15.0  # a bound on failure, never a measure of speed
DEADLINE_S = 60.0


def limit_server_fds() -> None:
    """In the server's child process, before exec: the 1,024-fd limit of many default setups."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FD_LIMIT, SERVER_FD_LIMIT))


@contextmanager
def fds_for_this_test(needed: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"this test opens {needed} sockets; the hard fd limit here is {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_slow_clients(port: int, count: int, deadline: float) -> list[socket.socket]:
    """``count`` connections that each send part of a request line and then nothing more."""
    opened: list[socket.socket] = []
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


def wait_until_closed(sockets: list[socket.socket], deadline: float) -> Counter[str]:
    """What the server answered each of ``sockets`` it closed (EOF or reset) before ``deadline``: its status
    line and content type, or "" for nothing."""
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytes] = {}
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    answers: Counter[str] = Counter()
    while sum(answers.values()) < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            sock = ready
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            received[sock] += data[:4096]
            if not data:  # EOF or reset: the server let go of it
                selector.unregister(sock)
                head = received[sock].split(b"\r\n\r\n", 1)[0].decode("latin-1").lower().splitlines()
                kind = [line for line in head if line.startswith("content-type:")]
                answers[" ".join(head[:1] + kind)] += 1
    selector.close()
    return answers


def test_normal_requests_answer_while_1100_slow_clients_hang_on(cli_env: dict[str, str]) -> None:
    served = ServedNode(
        "--demo",
        "--agents",
        "20",
        "--listen",
        "127.0.0.1:0",
        "--header-timeout",
        str(HEADER_TIMEOUT_S),
        env=cli_env,
        preexec_fn=limit_server_fds,
    )
    slow: list[socket.socket] = []
    with fds_for_this_test(SLOW_CLIENTS + 256), served:
        deadline = time.monotonic() + DEADLINE_S
        try:
            slow = open_slow_clients(served.port, SLOW_CLIENTS, deadline)
            headers = served.auth()

            def normal(index: int) -> int:
                path = "/healthz" if index % 2 else "/v1/snapshot"
                try:
                    return httpx.get(
                        f"{served.url}{path}", headers=headers, timeout=CLIENT_TIMEOUT_S
                    ).status_code
                except httpx.TransportError:
                    return 0

            with concurrent.futures.ThreadPoolExecutor(NORMAL_REQUESTS) as pool:
                answers = list(pool.map(normal, range(NORMAL_REQUESTS)))
            farewells = wait_until_closed(slow, deadline)
        finally:
            for sock in slow:
                sock.close()
        assert served.running
        served.stop()
        stderr = served.stderr_text()
    assert len(slow) == SLOW_CLIENTS
    assert answers == [200] * NORMAL_REQUESTS, f"{answers.count(200)} of {NORMAL_REQUESTS} answered"
    closed = sum(farewells.values())
    assert closed == len(slow), f"the server closed {closed} of {len(slow)} slow connections"
    problem = "content-type: application/problem+json"
    # each told why: 503 (evicted to let others in, at the connection limit) or 408 (headers too late)
    assert set(farewells) <= {
        f"http/1.1 503 service unavailable {problem}",
        f"http/1.1 408 request timeout {problem}",
    }, farewells
    assert len(stderr.encode()) < 20_000, f"{len(stderr.encode())} bytes of stderr: {stderr[-2000:]}"


# --- idempotency keys outlive the server ------------------------------------------------------------------


def test_an_idempotent_retry_after_a_restart_is_a_replay(tmp_path: Path, cli_env: dict[str, str]) -> None:
    state = tmp_path / "node"
    node = ServedNode("--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-access-log", env=cli_env)
    path = ACTION_PATHS["checkpoint"]
    body = {"label": "exactly once", "reason": "a retry after a restart"}
    with node:
        headers = {**node.auth(), IDEMPOTENCY_KEY_HEADER: "restart-0001"}
        first = httpx.post(f"{node.url}{path}", json=body, headers=headers)
        assert first.status_code == 201, first.text
        assert node.stop() == 0  # SIGTERM: a real, clean restart
        node.restart()
        headers = {**node.auth(), IDEMPOTENCY_KEY_HEADER: "restart-0001"}
        retry = httpx.post(f"{node.url}{path}", json=body, headers=headers)
        other = httpx.post(f"{node.url}{path}", json={**body, "reason": "x"}, headers=headers)
        auth = node.auth()
        checkpoints = from_json(
            httpx.get(f"{node.url}/v1/checkpoints", headers=auth).content, list[Checkpoint]
        )
        audit = from_json(httpx.get(f"{node.url}/v1/audit", headers=auth).content, list[AuditEntry])
    assert retry.status_code == 201 and retry.headers.get(IDEMPOTENCY_REPLAYED_HEADER) == "true"
    assert retry.content == first.content
    assert other.status_code == 422  # the key still stands for the first body
    assert [c.label for c in checkpoints].count("exactly once") == 1
    assert [e.action for e in audit].count("checkpoint") == 1


def test_a_corrupt_idempotency_file_is_one_line(tmp_path: Path, fleetdeck) -> None:
    state = tmp_path / "node"
    state.mkdir(mode=0o700)
    (state / "idempotency.db").write_bytes(b"this is not a database" * 200)
    result = fleetdeck("node", "serve", "--state-dir", str(state), "--listen", "127.0.0.1:0", timeout=30)
    line = one_line_error(result)
    assert result.returncode == 2 and str(state / "idempotency.db") in line


async def test_a_key_whose_first_request_was_cut_off_is_a_conflict_and_the_file_is_bounded(
    tmp_path: Path,
) -> None:
    from backends.node_server.idempotency import Answer, IdempotencyStore
    from backends.node_server.problems import ProblemError

    path = tmp_path / "idempotency.db"
    scope = ("alice", "/v1/actions/dispatch", "k-cut-off")
    crashed = IdempotencyStore(path)
    acting = crashed.claim(scope, b"{}")
    await acting.__aenter__()  # it acts... and the process dies before its answer is kept
    restarted = IdempotencyStore(path)
    with pytest.raises(ProblemError) as refused:
        async with restarted.claim(scope, b"{}"):
            raise AssertionError("acted a second time")
    assert refused.value.problem.status == 409 and "unknown" in refused.value.problem.detail
    crashed.close()

    bounded = IdempotencyStore(tmp_path / "bounded.db", max_bytes=1000)
    for n in range(5):
        async with bounded.claim(("alice", "/p", f"k{n}"), b"{}") as claim:
            claim.answer = Answer(201, b"x" * 400, "application/json")
    assert len(bounded) == 2  # the two newest answers: 800 bytes
    bounded.close()
    again = IdempotencyStore(tmp_path / "bounded.db", max_bytes=1000)
    async with again.claim(("alice", "/p", "k4"), b"{}") as claim:
        assert claim.replay is not None and claim.replay.body == b"x" * 400  # kept across a reopen
    again.close()
