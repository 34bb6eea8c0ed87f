"""The agents behind a benchmarked local node: registered through the store API, kept alive by heartbeats
from a process of their own, and a reporting agent whose log lines carry the wall-clock time of their write.

The functions that run in child processes take plain arguments (paths as str, multiprocessing events), so
they work under the ``spawn`` start method, which never copies the parent's threads or event loop.
"""

from __future__ import annotations

import os
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from backends.local.reporter import AgentReporter
from backends.local.store import Store


def agent_names(count: int) -> list[str]:
    return [f"agent-{index:04d}" for index in range(count)]


def register(state_dir: Path, count: int) -> list[str]:
    """``count`` reporting agents, registered and heartbeating once, in one Store (as a fleet's start
    would leave them, minus the processes); returns their ids."""
    names = agent_names(count)
    with Store(state_dir) as store:
        for index, name in enumerate(names):
            store.register_agent(
                name,
                kind="reporting",
                state="running",
                pid=os.getpid(),
                labels={"role": "worker", "rack": f"r{index % 8}"},
            )
            store.heartbeat(name, progress=0.5, message="training step 1200/2400")
    return names


def keep_alive(state_dir: str, names: list[str], period_s: float, stop: Event) -> None:
    """Heartbeat every agent once per ``period_s``, spread evenly over the period, until ``stop``."""
    with Store(Path(state_dir), verify=False) as store:
        gap = period_s / max(1, len(names))
        next_at = time.monotonic()
        index = 0
        while not stop.is_set():
            name = names[index % len(names)]
            store.heartbeat(name, progress=(index % 1000) / 1000, message=f"step {index}")
            index += 1
            next_at += gap
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def write_stamped_logs(
    state_dir: str, agent: str, rate: float, seconds: float, ready: Event, go: Event
) -> None:
    """As ``agent`` (an AgentReporter), log ``rate`` lines a second for ``seconds`` once ``go`` is set;
    each line's ``sent_at`` field is ``time.time()`` just before its write."""
    reporter = AgentReporter(agent, state_dir=state_dir, register=False, verify=False)
    try:
        ready.set()
        go.wait(60)
        count = max(1, round(rate * seconds))
        begin = time.monotonic()
        for index in range(count):
            delay = begin + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            reporter.log("info", f"stamped line {index}", sent_at=time.time())
    finally:
        reporter.store.close()
