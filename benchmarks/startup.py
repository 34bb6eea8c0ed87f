"""Start-up: how long until ``fleetdeck demo`` shows its first frame, how long ``fleetdeck snapshot`` and
``fleetdeck status --json`` take, and what importing ``console.app`` costs.

Everything runs as a fresh process of the installed ``fleetdeck`` script (the one beside this interpreter,
so a version manager's shim does not add its own start-up), with its config and state in a temporary
directory so a user's config cannot change what is measured.

- ``first_frame_s``: from spawning ``fleetdeck demo`` in a pseudo-terminal (120x40, TERM=xterm-256color)
  until the Fleet screen is drawn with the demo's nodes in its table and the footer below: what the user
  first reads. ``first_paint_s``: until the footer alone is drawn (the app is up, data may not be yet).
  Then ``q`` quits it and the process is reaped.
- ``snapshot_s``: ``fleetdeck snapshot --demo -o FILE.svg`` (the Fleet screen of the 3-node demo, rendered
  headless); ``snapshot_5000_s``: ``fleetdeck snapshot --demo --nodes 100 --agents 5000 --screen node`` as
  text (one node of a 5,000-agent fleet on screen).
- ``status_json_s``: ``fleetdeck status --demo --json`` (exit 2 is the demo's critical alert, not a failure).
- ``import_console_app_s``: ``import console.app`` timed inside a fresh interpreter; ``python_start_s``: a
  bare interpreter's start and exit, for reference.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmarks.measure import Target
from benchmarks.programs import fleetdeck_command, isolated_env
from benchmarks.terminal import TerminalProcess

TITLE = "Start-up: first frame of fleetdeck demo, snapshot, status --json, imports"
TARGETS = {
    "first_frame_s": Target(1.0, "first frame < 1.0 s"),
    "snapshot_s": Target(1.0, "< 1.0 s"),
    "snapshot_5000_s": Target(1.5, "< 1.5 s"),
}

SIZE = (120, 40)
# The demo fleet's (seed 7) node names, in the Fleet table, and the footer's palette key: the footer's
# right end, which stays when a narrow footer drops other keys.
FIRST_FRAME = ("gpu-prod-01", "gpu-stage-02", "cpu-dev-03", "Palette")
FOOTER = ("Palette",)
TIMEOUT_S = 60.0


def first_frame(command: list[str], env: Mapping[str, str]) -> tuple[float, float]:
    """(first paint, first frame with the fleet) in seconds for one start of ``fleetdeck demo``."""
    terminal = TerminalProcess([*command, "demo"], size=SIZE, env=env)
    try:
        paint = terminal.wait_for(FOOTER, TIMEOUT_S)
        frame = terminal.wait_for(FIRST_FRAME, TIMEOUT_S)
    finally:
        code = terminal.close()
    if code != 0:
        raise RuntimeError(f"fleetdeck demo exited {code} on q: {terminal.text()[-300:]!r}")
    return paint, frame


def wall_time(
    argv: list[str], env: Mapping[str, str], ok: Callable[[int], bool] = lambda rc: rc == 0
) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, timeout=TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if not ok(done.returncode):
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return elapsed


def import_time(module: str) -> float:
    """Seconds ``import module`` takes in a fresh interpreter, as that interpreter measures it."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def measure(quick: bool) -> dict[str, float | str]:
    samples = 2 if quick else 7
    command = fleetdeck_command()
    figures: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-startup-") as tmp:
        home = Path(tmp)
        env = isolated_env(home)
        # One untimed start first: compiled bytecode and the page cache are then what a user has warm.
        first_frame(command, env)
        paints, frames = zip(*(first_frame(command, env) for _ in range(samples)), strict=True)
        figures["first_frame_s"] = _median(list(frames))
        figures["first_frame_max_s"] = round(max(frames), 3)
        figures["first_paint_s"] = _median(list(paints))

        svg = str(home / "demo.svg")
        figures["snapshot_s"] = _median(
            [wall_time([*command, "snapshot", "--demo", "-o", svg], env) for _ in range(samples)]
        )
        if not Path(svg).read_text().lstrip().startswith("<svg"):
            raise RuntimeError("fleetdeck snapshot wrote no SVG")
        # --agents is the fleet's total: 100 nodes of 50 (quick mode: the harness works, not the figure)
        nodes, agents = ("10", "500") if quick else ("100", "5000")
        big = [*command, "snapshot", "--demo", "--nodes", nodes, "--agents", agents, "--screen", "node"]
        text = str(home / "big.txt")
        figures["snapshot_5000_s"] = _median([wall_time([*big, "-o", text], env) for _ in range(samples)])
        status = [*command, "status", "--demo", "--json"]
        figures["status_json_s"] = _median(
            [wall_time(status, env, ok=lambda rc: rc in (0, 1, 2)) for _ in range(samples)]
        )

    figures["import_console_app_s"] = _median([import_time("console.app") for _ in range(samples)])
    figures["python_start_s"] = _median(
        [wall_time([sys.executable, "-c", "pass"], {}) for _ in range(samples)]
    )
    figures["note"] = f"{' '.join(Path(c).name for c in command)}; median of {samples} starts each"
    return figures
