"""One real local Ray head for the whole test session (Ray takes ~20 s to start on two cores).

It runs with token auth (``RAY_AUTH_MODE=token``, Ray >= 2.52), so a wrong token is tested against the real
thing; on non-default ports, with its own ``--temp-dir`` and ``HOME``, so it neither meets nor stops a Ray
a developer runs: at the end only the processes started for this session (found by their temp dir) are
ended, never with ``ray stop``, which would end every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port

try:
    import ray  # noqa: F401 - only to know whether a head can be started here
except ImportError:
    RAY_MISSING = "ray is not installed (pip install -e '.[test]' installs ray[default])"
else:
    RAY_MISSING = ""

START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RayHead:
    url: str
    token: str
    temp_dir: Path
    env: dict[str, str]  # how to reach it as a client (submitting scripts)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if RAY_MISSING:
        for item in items:
            if "tests/ray/" in str(item.fspath).replace(os.sep, "/"):
                item.add_marker(pytest.mark.skip(reason=RAY_MISSING))


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    temp_dir = Path(tempfile.mkdtemp(prefix="fdray-", dir="/tmp"))  # short: Ray's socket paths must fit
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(temp_dir / "home"), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    dashboard_port = free_port()
    ports = [free_port() for _ in range(4)]
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--num-cpus=2",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", f"--port={ports[0]}",
        f"--ray-client-server-port={ports[1]}", f"--dashboard-agent-listen-port={ports[2]}",
        f"--metrics-export-port={ports[3]}", "--disable-usage-stats", f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        if started.returncode != 0:
            pytest.fail(f"ray start failed: {started.stderr[-2000:]}")
        _wait_for_dashboard(url, token)
        yield RayHead(url=url, token=token, temp_dir=temp_dir, env=env)
    finally:
        _end_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_dashboard(url: str, token: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    headers = {"Authorization": f"Bearer {token}"}
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            # the job API answers once the head's job agent is up, which is later than /api/version
            response = httpx.get(f"{url}/api/jobs/", headers=headers, timeout=5)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    pytest.fail(f"the Ray dashboard at {url} did not answer in time ({last})")


def _end_processes_under(temp_dir: Path) -> None:
    """End the Ray processes whose command line names this session's temp dir: TERM, then KILL."""
    import psutil

    marker = str(temp_dir)

    def ours() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(marker in part for part in proc.info["cmdline"] or ()):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs = ours()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        psutil.wait_procs(procs, timeout=10)
