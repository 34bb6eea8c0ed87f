"""Key to screen: how long after a key the screen shows what it did, on the All agents screen of a big fleet.

``fleetdeck demo`` runs in a real pseudo-terminal (200x50, TERM=xterm-256color), so each key goes through
the terminal driver, Textual's input thread and the app, and its effect is read back off the terminal. Each
key is sent when the screen is quiet (nothing drawn for a while after a refresh), and timed until:

- cursor move (Down, Up): the first frame drawn after it (it draws nothing else);
- filter keystroke (after ``/``): the title says how many agents the filter shows ("(filter: cod)");
- clearing the filter (esc): the title without the filter's count;
- opening a screen (enter on an agent, then esc back): the Agent screen's fields;
- quitting (q): the process has exited.

At 5,000 and 50,000 agents (100 nodes). Figures are medians and p99 (the slowest of few presses) in ms.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.measure import Target
from benchmarks.programs import fleetdeck_command, isolated_env
from benchmarks.terminal import _ESCAPES, TerminalProcess

TITLE = "Key to screen: All agents at 5,000 and 50,000 agents, in a pseudo-terminal"
SIZES = (5_000, 50_000)
QUICK_SIZES = {5_000: 300, 50_000: 600}  # quick mode: small fleets stand in for the sizes named
KEYS = ("cursor", "filter_key", "filter_clear", "open_screen", "quit")
TARGETS = {
    **{f"{key}_5000_p99_ms": Target(100, "p99 < 100 ms") for key in KEYS if key != "quit"},
    **{f"{key}_50000_p99_ms": Target(200, "p99 < 200 ms") for key in KEYS if key != "quit"},
    "quit_5000_ms": Target(500, "< 0.5 s"),
    "quit_50000_ms": Target(500, "< 0.5 s"),
}
SCREEN = (200, 50)
QUIET_S = 0.15  # nothing drawn for this long: the refresh's frame is done, a key's frame will be its own
TIMEOUT_S = 30.0
FIRST_PAINT_TIMEOUT_S = 400.0
DOWN, UP, ESC, ENTER = "\x1b[B", "\x1b[A", "\x1b", "\r"


class Session:
    """One ``fleetdeck demo`` on All agents, keys timed from the moment they are written."""

    def __init__(self, command: list[str], env: dict[str, str], nodes: int, agents: int) -> None:
        argv = [*command, "demo", "--nodes", str(nodes), "--agents", str(agents)]
        self.terminal = TerminalProcess(argv, size=SCREEN, env=env)
        try:
            # the demo's first snapshot of each node judges its plan from simulated history: slow at 50,000
            self.first_paint_s = self.terminal.wait_for(("Palette",), FIRST_PAINT_TIMEOUT_S)
            self.settle()
            self.terminal.send("0")  # every node's agents in one table
            self.wait_new(lambda text: f"{nodes} nodes" in text and "healthy" in text, TIMEOUT_S * 4)
            time.sleep(3.0)  # every node polled, the table full
            self.settle()
        except BaseException:
            self.terminal.close(quit_keys="")  # a demo left running would skew every figure after it
            raise

    def settle(self) -> None:
        """Read until nothing has been drawn for QUIET_S."""
        terminal = self.terminal
        while True:
            before = len(terminal.raw)
            terminal.read(QUIET_S)
            if len(terminal.raw) == before:
                return

    def press(self, keys: str, shown: re.Pattern[str] | None) -> float:
        """Milliseconds from writing ``keys`` until ``shown`` is in what was drawn since (None: anything)."""
        self.settle()
        mark = len(self.terminal.raw)
        start = time.perf_counter()
        self.terminal.send(keys)
        self.wait_new(lambda text: bool(text) if shown is None else bool(shown.search(text)), TIMEOUT_S, mark)
        return (time.perf_counter() - start) * 1000

    def wait_new(self, done: Callable[[str], bool], timeout: float, mark: int | None = None) -> None:
        terminal = self.terminal
        since = len(terminal.raw) if mark is None else mark
        deadline = time.perf_counter() + timeout
        while True:
            text = _visible(bytes(terminal.raw[since:]))
            if done(text):
                return
            if time.perf_counter() > deadline or not terminal.read(0.005):
                raise TimeoutError(f"no sign of the key's effect after {timeout} s: {text[-200:]!r}")

    def quit(self) -> float:
        self.settle()
        start = time.perf_counter()
        code = self.terminal.close(quit_keys="q", timeout=TIMEOUT_S)
        if code != 0:
            raise RuntimeError(f"fleetdeck demo exited {code} on q")
        return (time.perf_counter() - start) * 1000


def _visible(raw: bytes) -> str:
    return _ESCAPES.sub(b"", raw).decode("utf-8", "replace")


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 1)


def one_size(command: list[str], env: dict[str, str], agents: int, presses: int) -> dict[str, float]:
    session = Session(command, env, nodes=100, agents=agents)
    timings: dict[str, list[float]] = {key: [] for key in KEYS}
    try:
        for _ in range(presses):
            timings["cursor"].append(session.press(DOWN, None))
            timings["cursor"].append(session.press(UP, None))
        word = "coder"
        for _ in range(max(1, presses // 2)):
            session.press("/", None)
            typed = ""
            for char in word:
                typed += char
                timings["filter_key"].append(session.press(char, re.compile(re.escape(f"(filter: {typed})"))))
            session.press(ENTER, None)  # keep the filter, back to the table
            timings["filter_clear"].append(session.press(ESC, re.compile(r"healthy(?! · \d+ shown)")))
        for _ in range(presses):
            timings["open_screen"].append(session.press(ENTER, re.compile(r"Restarts|Heartbeat")))
            session.press(ESC, re.compile(r"All agents"))
    finally:
        quit_ms = session.quit()
    figures: dict[str, float] = {}
    for key, values in timings.items():
        if values:
            figures[f"{key}_p50_ms"] = round(statistics.median(values), 1)
            figures[f"{key}_p99_ms"] = _p99(values)
    figures["quit_ms"] = round(quit_ms, 1)
    figures["first_paint_s"] = round(session.first_paint_s, 2)
    return figures


def measure(quick: bool) -> dict[str, float | str]:
    sizes = QUICK_SIZES if quick else {size: size for size in SIZES}
    presses = 1 if quick else 10
    command = fleetdeck_command()
    figures: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-keys-") as tmp:
        env = isolated_env(Path(tmp))
        for size, agents in sizes.items():
            try:
                measured = one_size(command, env, agents, presses)
            except (TimeoutError, RuntimeError) as error:  # the other size's figures still count
                figures[f"note_{size}"] = f"{size} agents: {error}"[:300]
                continue
            for key, value in measured.items():
                name, _, unit = key.rpartition("_")
                if name.endswith(("_p50", "_p99")):
                    stem, _, stat = name.rpartition("_")
                    figures[f"{stem}_{size}_{stat}_{unit}"] = value
                else:
                    figures[f"{name}_{size}_{unit}"] = value
    if quick:
        stand_ins = ", ".join(f"{agents} for {size}" for size, agents in sizes.items())
        figures["note"] = f"quick mode: {stand_ins} agents, {presses} presses each"
    return figures
