"""Host and process metrics for the local backend, read through psutil.

Every reading is taken field by field: a field whose call fails (a container hiding /proc/meminfo, a
platform without load averages, a permission error) becomes ``None`` and the rest still arrive. An unknown
value is never reported as 0, because the console would show it as a real, alarming (or reassuring) number.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from backends.model import LoadAvg, SystemMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# psutil.cpu_percent(interval=None) compares against the previous call. Two calls closer together than a
# few scheduler ticks see (almost) no elapsed CPU time and psutil answers 0.0, which would be a made-up
# idle reading; below this gap we repeat the last real value (or None) instead of asking again.
MIN_CPU_INTERVAL_S = 0.1

# A guard against a cycle or an absurdly deep tree when walking parents (pid namespaces can be odd).
_MAX_ANCESTRY = 1024


def _attempt(what: str, read: Callable[[], T]) -> T | None:
    """Run one reading; any failure makes that one field unknown instead of failing the whole sample."""
    try:
        return read()
    except Exception as exc:  # psutil raises OSError, psutil.Error, RuntimeError... depending on platform
        log.debug("could not read %s: %s", what, exc)
        return None


def _clamp_percent(value: float) -> float:
    # Rounding in psutil/NVML can step just outside 0-100; the wire model rejects that on decode.
    return min(100.0, max(0.0, float(value)))


def _existing_path(path: Path) -> Path:
    """The path itself or its nearest existing parent: the state dir may not have been created yet, and
    sampling must not create it (a read-only console has no business writing there)."""
    candidate = path.absolute()
    while not candidate.exists() and candidate.parent != candidate:
        candidate = candidate.parent
    return candidate


class HostSampler:
    """Samples this machine's CPU, load, memory, swap, disk (of the state dir) and uptime.

    ``monotonic`` and ``wall`` are injectable so tests can control the CPU-interval gate and uptime.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._monotonic = monotonic
        self._wall = wall
        self._last_cpu: float | None = None
        # Prime psutil's baseline now, so the first sample() that comes a refresh later measures a real
        # interval rather than returning the meaningless 0.0 of a first call.
        primed = _attempt("cpu_percent", lambda: psutil.cpu_percent(interval=None))
        self._cpu_asked_at: float | None = self._monotonic() if primed is not None else None

    def sample(self) -> SystemMetrics:
        vm = _attempt("virtual_memory", psutil.virtual_memory)
        swap = _attempt("swap_memory", psutil.swap_memory)
        disk = _attempt("disk_usage", lambda: psutil.disk_usage(str(_existing_path(self._state_dir))))
        return SystemMetrics(
            cpu_percent=self._cpu_percent(),
            cpu_count=_attempt("cpu_count", lambda: psutil.cpu_count(logical=True)),
            load_avg=self._load_avg(),
            mem_total=None if vm is None else int(vm.total),
            mem_used=None if vm is None else int(vm.used),
            mem_available=None if vm is None else int(vm.available),
            swap_total=None if swap is None else int(swap.total),
            swap_used=None if swap is None else int(swap.used),
            disk_total=None if disk is None else int(disk.total),
            disk_used=None if disk is None else int(disk.used),
            uptime_s=_attempt("uptime", self._uptime),
        )

    def _cpu_percent(self) -> float | None:
        now = self._monotonic()
        if self._cpu_asked_at is not None and now - self._cpu_asked_at < MIN_CPU_INTERVAL_S:
            # Too soon to measure anything: repeat the last real value; None if there has been none yet.
            return self._last_cpu
        value = _attempt("cpu_percent", lambda: psutil.cpu_percent(interval=None))
        if value is None:
            return None
        first_call = self._cpu_asked_at is None
        self._cpu_asked_at = now
        if first_call:
            # Priming failed at construction, so this call only set psutil's baseline: its 0.0 means nothing.
            return None
        self._last_cpu = _clamp_percent(value)
        return self._last_cpu

    @staticmethod
    def _load_avg() -> LoadAvg | None:
        # os.getloadavg, not psutil.getloadavg: on Windows psutil emulates it and its first readings are
        # zeros, a made-up idle machine. Where the OS has no load average this is simply unknown.
        getloadavg = getattr(os, "getloadavg", None)
        if getloadavg is None:
            return None
        loads = _attempt("getloadavg", getloadavg)
        if loads is None:
            return None
        m1, m5, m15 = loads
        return LoadAvg(m1=float(m1), m5=float(m5), m15=float(m15))

    def _uptime(self) -> float:
        # A clock stepped backwards could make this negative for a moment; the model allows only >= 0.
        return max(0.0, self._wall() - psutil.boot_time())


# --- processes -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """CPU and memory of one process tree. ``alive`` False: the pid is gone (or a zombie awaiting reaping).

    ``cpu_percent`` is None on the first sample of a tree (no interval measured yet) and whenever unknown;
    it is the sum over the tree, so it may exceed 100 on a multi-core machine.
    """

    cpu_percent: float | None
    rss_bytes: int | None
    alive: bool


_GONE = ProcessUsage(cpu_percent=None, rss_bytes=None, alive=False)

# A process's identity: a pid alone can be reused by an unrelated process after the first one exits.
_ProcKey = tuple[int, float]


class ProcessSampler:
    """Measures CPU% and RSS of a pid together with all its descendants.

    psutil's per-process cpu_percent is a delta since the previous call on the *same* Process object, so
    the objects are kept between calls, keyed by (pid, create_time) so a reused pid starts afresh.
    """

    def __init__(self, *, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        # root pid -> the processes of its tree seen last time. Replaced wholesale on each sample, so
        # processes that left the tree are dropped with it.
        self._trees: dict[int, dict[_ProcKey, psutil.Process]] = {}

    def sample(self, pid: int) -> ProcessUsage:
        try:
            root = psutil.Process(pid)
            if root.status() == psutil.STATUS_ZOMBIE:
                # Exited, only waiting for its parent to reap it: as far as an operator cares, it is gone.
                self._trees.pop(pid, None)
                return _GONE
            tree = [root, *root.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self._trees.pop(pid, None)
            return _GONE
        except psutil.Error as exc:  # AccessDenied: the process exists but we may not look at it
            log.debug("cannot inspect pid %d: %s", pid, exc)
            return ProcessUsage(cpu_percent=None, rss_bytes=None, alive=True)

        previous = self._trees.get(pid, {})
        root_key = (pid, root.create_time())
        root_known = root_key in previous
        now = self._wall()
        seen: dict[_ProcKey, psutil.Process] = {}
        cpu_total = 0.0
        cpu_known = root_known
        rss_total = 0
        rss_known = False
        for position, proc in enumerate(tree):
            try:
                key = (proc.pid, proc.create_time())
                cached = previous.get(key)
                if cached is not None:
                    proc = cached  # the object holding the cpu_percent baseline
                    cpu_total += proc.cpu_percent(interval=None)
                else:
                    proc.cpu_percent(interval=None)  # set the baseline for next time
                    if root_known:
                        cpu_total += self._lifetime_cpu_percent(proc, now)
                rss_total += int(proc.memory_info().rss)
                rss_known = True
                seen[key] = proc
            except psutil.Error as exc:
                # A child that exited mid-walk, or one we may not inspect: it is left out of the sum
                # (an undercount of one short-lived process beats failing the whole reading).
                log.debug("skipping pid %d in tree of %d: %s", proc.pid, pid, exc)
                if position == 0:  # without the root's own share the sum would be misleading
                    cpu_known = False
        self._trees[pid] = seen
        return ProcessUsage(
            cpu_percent=cpu_total if cpu_known else None,
            rss_bytes=rss_total if rss_known else None,
            alive=True,
        )

    @staticmethod
    def _lifetime_cpu_percent(proc: psutil.Process, now: float) -> float:
        """CPU% of a process new to the tree, averaged over its life so far.

        It appeared since the previous sample, so its whole life lies inside the interval being measured;
        counting it as 0 until its second sample would hide a busy worker that was just spawned.
        """
        times = proc.cpu_times()
        age = now - proc.create_time()
        if age <= 0:
            return 0.0
        return max(0.0, (times.user + times.system) / age * 100.0)

    def forget(self, pid: int) -> None:
        """Drop the cached tree of a pid no longer watched, so the cache does not grow without bound."""
        self._trees.pop(pid, None)

    def retain(self, pids: set[int]) -> None:
        """Keep cached trees only for these root pids (call once per refresh with the agents' pids)."""
        for pid in [p for p in self._trees if p not in pids]:
            del self._trees[pid]


def ancestors(pid: int) -> list[int]:
    """``pid`` then its parent, grandparent... up to pid 1 (or as far as visible). [] if pid is not there.

    Used to join a GPU process to the agent that spawned it: a worker several levels below an agent's
    process still belongs to that agent.
    """
    chain: list[int] = []
    current = pid
    while current > 0 and current not in chain and len(chain) < _MAX_ANCESTRY:
        try:
            parent = psutil.Process(current).ppid()
        except psutil.Error:
            break  # gone, or outside our pid namespace: the chain stops here
        chain.append(current)
        if current == 1:
            break
        current = parent
    return chain
