"""Peers: the CPU it costs to watch this machine at 1 Hz, fleetdeck (its local node) against glances and
htop doing the same job in the same run.

Each tool runs alone in a detached session of a tmux server of our own, at the same size (200x50,
TERM=xterm-256color), one after the other so they never compete: ``fleetdeck`` on the local node with
``refresh_s = 1.0`` (config and state in a temporary directory), ``glances -t 1``, ``htop -d 10``. Once its
screen is up and it has run a few seconds, the CPU seconds of the tool's process and its children (psutil)
are taken over the window (60 s; 3 s quick) and given as percent of one core. The tmux server's own CPU in
the same window is given too (``*_tmux_cpu_percent``): what the tool's redraws cost the terminal side.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import tomli_w

from benchmarks.measure import Target
from benchmarks.programs import fleetdeck_command, isolated_env
from benchmarks.tmux import TmuxServer

TITLE = "Peers: CPU of watching this machine at 1 Hz, fleetdeck vs glances and htop"
TARGETS = {
    "fleetdeck_vs_glances": Target(1.0, "fleetdeck's CPU no more than glances'", inclusive=True),
}
SIZE = (200, 50)
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Tool:
    name: str
    argv: list[str]
    ready: str  # text on its screen once it is up


def _beside_python(program: str) -> str | None:
    """A program installed with this interpreter first (no version-manager shim), else from PATH."""
    return shutil.which(program, path=str(Path(sys.executable).parent)) or shutil.which(program)


def _tree_cpu_s(root: psutil.Process) -> float:
    """CPU seconds of ``root`` and every descendant, live or already reaped by its parent."""
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = process.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _own_cpu_s(process: psutil.Process) -> float:
    """CPU seconds of ``process`` alone: the tmux server, without the programs running in its panes."""
    t = process.cpu_times()
    return t.user + t.system


def _tree_rss_mb(root: psutil.Process) -> float:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return round(total / (1024 * 1024), 1)


def _wait_ready(tmux: TmuxServer, session: str, tool: Tool, process: psutil.Process) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while tool.ready not in tmux.screen(session):
        if not process.is_running() or time.monotonic() > deadline:
            screen = " | ".join(line for line in tmux.screen(session).splitlines() if line.strip())[-300:]
            raise RuntimeError(f"{tool.name} did not come up in {READY_TIMEOUT_S:.0f} s: {screen!r}")
        time.sleep(0.1)


def watch(
    tmux: TmuxServer, tool: Tool, env: dict[str, str], warmup_s: float, seconds: float
) -> dict[str, float]:
    """Run ``tool`` in its own session; its CPU (and the tmux server's) over ``seconds`` after warming up."""
    pid = tmux.start(tool.name, tool.argv, size=SIZE, env=env)
    process = psutil.Process(pid)
    try:
        _wait_ready(tmux, tool.name, tool, process)
        time.sleep(warmup_s)
        server = psutil.Process(tmux.server_pid())
        tool0, server0, wall0 = _tree_cpu_s(process), _own_cpu_s(server), time.perf_counter()
        time.sleep(seconds)
        tool1, server1, wall1 = _tree_cpu_s(process), _own_cpu_s(server), time.perf_counter()
        if not process.is_running():
            raise RuntimeError(f"{tool.name} exited during the measurement")
        rss = _tree_rss_mb(process)
    finally:
        family = [process, *process.children(recursive=True)] if process.is_running() else []
        with contextlib.suppress(Exception):
            tmux.stop(tool.name)  # tmux hangs up on it
        _, alive = psutil.wait_procs(family, timeout=5)
        for leftover in alive:  # ours: started in our session
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        psutil.wait_procs(alive, timeout=5)
    wall = wall1 - wall0
    return {
        f"{tool.name}_cpu_percent": round(100.0 * (tool1 - tool0) / wall, 2),
        f"{tool.name}_tmux_cpu_percent": round(100.0 * (server1 - server0) / wall, 2),
        f"{tool.name}_rss_mb": rss,
    }


def _fleetdeck_home(home: Path) -> dict[str, str]:
    env = isolated_env(home)
    config = Path(env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True)
    node = {"name": "local", "backend": "local", "state_dir": str(home / "node")}
    config.write_text(tomli_w.dumps({"refresh_s": 1.0, "nodes": [node]}))
    return env


def measure(quick: bool) -> dict[str, float | str]:
    warmup_s, seconds = (1.0, 3.0) if quick else (5.0, 60.0)
    figures: dict[str, float | str] = {}
    if not TmuxServer.available():
        return {"note": "tmux is not installed: peers skipped"}
    # The footer's palette key: its right end, shown however many other keys the footer has room for.
    tools = [Tool("fleetdeck", fleetdeck_command(), "Palette")]
    glances, htop = _beside_python("glances"), _beside_python("htop")
    if glances:
        tools.append(Tool("glances", [glances, "-t", "1"], "LOAD"))
    else:
        figures["glances_note"] = "glances is not installed (pip install glances): skipped"
    if htop:
        tools.append(Tool("htop", [htop, "-d", "10"], "Load average"))
    else:
        figures["htop_note"] = "htop is not installed (an OS package): skipped"

    tmux = TmuxServer()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-peers-") as tmp:
        home = Path(tmp)
        env = _fleetdeck_home(home)
        try:
            for tool in tools:
                figures.update(watch(tmux, tool, env, warmup_s, seconds))
        finally:
            tmux.kill()
    ours = figures["fleetdeck_cpu_percent"]
    for peer in ("glances", "htop"):
        theirs = figures.get(f"{peer}_cpu_percent")
        if isinstance(ours, float) and isinstance(theirs, float) and theirs > 0:
            figures[f"fleetdeck_vs_{peer}"] = round(ours / theirs, 2)
    figures["note"] = f"{SIZE[0]}x{SIZE[1]} tmux, 1 Hz, {seconds:.0f} s each after {warmup_s:.0f} s warm-up"
    return figures
