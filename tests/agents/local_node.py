"""A real local node in a temporary state dir, driven through the real ``fleetdeck`` command line.

Every process a test starts on it (``fleetdeck run`` supervisors, their agents, detached dispatch
supervisors) inherits ``FLEETDECK_STATE_DIR`` pointing at this node's own directory, which is how
:meth:`LocalNode.reap` finds and ends them all afterwards, even those the test never saw a pid of.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import psutil

AGENTS_DIR = Path(__file__).resolve().parent
T = TypeVar("T")


def script(name: str) -> str:
    """The path of a helper agent in tests/agents/."""
    return str(AGENTS_DIR / name)


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and the last value seen)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def proc_state(pid: int) -> str | None:
    """The one-letter state in /proc/PID/status (R, S, T, Z...), None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return None


def gone(pid: int) -> bool:
    """No such process any more (a zombie counts as gone: it runs nothing and holds nothing)."""
    return proc_state(pid) in (None, "Z", "X")


class LocalNode:
    def __init__(self, tmp_path: Path, cli_env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.state_dir = tmp_path / "node"
        self.env = {**cli_env, "FLEETDECK_STATE_DIR": str(self.state_dir)}
        self.runs: list[subprocess.Popen[bytes]] = []

    def use_operator(self, name: str) -> None:
        """Write a config naming the operator (no nodes: the local node stays the default)."""
        config = Path(self.env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'operator = "{name}"\n')

    # --- the command line ------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console", *args],
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, timeout: float = 60) -> str:
        result = self.cli(*args, timeout=timeout)
        assert result.returncode == 0, f"fleetdeck {' '.join(args)} -> {result.returncode}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def agents(self) -> dict[str, dict[str, Any]]:
        return {agent["id"]: agent for agent in self.json("agents")}

    def agent(self, name: str) -> dict[str, Any] | None:
        return self.agents().get(name)

    def state(self, name: str) -> str | None:
        """The agent's state as `fleetdeck agents --json` shows it (None: no such agent)."""
        agent = self.agent(name)
        return None if agent is None else str(agent["state"])

    def logs(self, *args: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ok("logs", "--json", *args).splitlines() if line.strip()]

    def audit(self) -> list[dict[str, Any]]:
        return list(self.json("audit"))

    def wait_agent(
        self, name: str, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll ``fleetdeck agents --json`` until agent ``name`` passes ``check``; returns it."""

        def probe() -> dict[str, Any] | None:
            agent = self.agent(name)
            return agent if agent is not None and check(agent) else None

        return wait_for(probe, f"agent {name} {what}", timeout=timeout, interval=0.2)

    def wait_running(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_agent(
            name, lambda a: a["state"] == "running" and a["pid"] is not None, "running", timeout
        )

    # --- supervised agents -----------------------------------------------------------------------------

    def start(self, name: str, *command: str, options: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        """``fleetdeck run --name NAME [options] -- command`` in the background (its own session)."""
        out = self.tmp_path / f"run-{name}-{len(self.runs)}.out"
        with out.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "console", "run", "--name", name, *options, "--", *command],
                env=self.env,
                cwd=self.tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.runs.append(process)
        return process

    def start_python(self, name: str, helper: str, *args: str, options: tuple[str, ...] = ()) -> Any:
        return self.start(name, sys.executable, script(helper), *args, options=options)

    # --- leaving nothing behind ------------------------------------------------------------------------

    def own_processes(self) -> list[psutil.Process]:
        """Every live process started for this node: it carries the node's state dir in its environment."""
        marker = str(self.state_dir)
        me = os.getpid()
        found = []
        for process in psutil.process_iter():
            if process.pid == me:
                continue
            with suppress(psutil.Error):
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if process.environ().get("FLEETDECK_STATE_DIR") == marker:
                    found.append(process)
        return found

    def reap(self) -> None:
        """Stop every agent of this node: SIGTERM (supervisors stop their agents), then SIGKILL groups."""
        for process in self.own_processes():
            with suppress(psutil.Error):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        while self.own_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        ours = os.getpgid(0)
        for process in self.own_processes():
            with suppress(psutil.Error, ProcessLookupError, PermissionError):
                group = os.getpgid(process.pid)
                if group != ours:  # never the test run's own group
                    os.killpg(group, signal.SIGKILL)
            with suppress(psutil.Error):
                process.kill()
        for run in self.runs:
            with suppress(subprocess.TimeoutExpired):
                run.wait(timeout=10)
        leftovers = self.own_processes()
        assert not leftovers, f"processes left behind: {leftovers}"
