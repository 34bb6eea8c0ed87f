"""Host and process metrics for the local backend, read through psutil.

Every reading is taken field by field: a field whose call fails (a container hiding /proc/meminfo, a
platform without load averages, a permission error) becomes ``None`` and the rest still arrive. An unknown
value is never reported as 0, because the console would show it as a real, alarming (or reassuring) number.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from backends.model import LoadAvg, SystemMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# Each sampler measures CPU use between its own readings of psutil.cpu_times(). Two readings closer
# together than a few scheduler ticks see (almost) no elapsed CPU time, and their ratio would be noise or
# a made-up idle 0.0; below this gap the last real value (or None) is repeated instead.
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


def _busy_and_total(before: Any, after: Any) -> tuple[float, float]:
    """Busy and total CPU seconds between two psutil.cpu_times() readings, counted as psutil's cpu_percent
    counts them: total is every field but guest time (Linux already counts it in user and nice), busy is
    total less idle and iowait. A field that went backwards (a kernel accounting glitch psutil and top
    also meet) counts as 0 rather than subtracting."""
    deltas = {name: max(0.0, getattr(after, name) - getattr(before, name)) for name in after._fields}
    total = sum(deltas.values()) - deltas.get("guest", 0.0) - deltas.get("guest_nice", 0.0)
    busy = total - deltas.get("idle", 0.0) - deltas.get("iowait", 0.0)
    return max(0.0, busy), total


def _cpu_seconds(times: Any) -> float:
    return float(sum(times))


class HostSampler:
    """Samples this machine's CPU, load, memory, swap, disk (of the state dir) and uptime.

    CPU use is measured between this sampler's own readings of the CPU counters, never through psutil's
    process-wide (per-thread) ``cpu_percent`` baseline: another sampler, a /metrics scrape or a second
    backend in the same process cannot shorten this one's interval to nothing, and a thread-pool worker
    sampling for the first time does not read the 0.0 of an unprimed baseline. The first sample is None
    unless ``MIN_CPU_INTERVAL_S`` has passed since the sampler was made.

    ``monotonic``, ``wall`` and ``cpu_times`` are injectable so tests can control the CPU-interval gate,
    uptime and the counters.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        cpu_times: Callable[[], Any] = psutil.cpu_times,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._monotonic = monotonic
        self._wall = wall
        self._cpu_times = cpu_times
        self._cpu_lock = threading.Lock()  # snapshots may be taken in two worker threads at once
        self._last_cpu: float | None = None
        # The baseline: counters and when they were read. Primed now, so the first sample() that comes a
        # refresh later measures a real interval.
        self._cpu_base: Any = None
        self._cpu_base_at = 0.0
        self._prime(self._monotonic())

    def sample(self) -> SystemMetrics:
        vm = _attempt("virtual_memory", psutil.virtual_memory)
        swap = _attempt("swap_memory", psutil.swap_memory)
        # psutil's `free` is statvfs f_bavail (what an unprivileged user may still write: df's Avail);
        # `used` is f_blocks - f_bfree, as df counts it
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
            disk_available=None if disk is None else int(disk.free),
            uptime_s=_attempt("uptime", self._uptime),
        )

    def _prime(self, now: float) -> None:
        self._cpu_base = _attempt("cpu_times", self._cpu_times)
        self._cpu_base_at = now

    def _cpu_percent(self) -> float | None:
        with self._cpu_lock:
            now = self._monotonic()
            if self._cpu_base is None:
                # Priming failed (at construction or last time): this reading only sets the baseline.
                self._prime(now)
                return None
            if now - self._cpu_base_at < MIN_CPU_INTERVAL_S:
                # Too soon to measure anything: repeat the last real value; None if there has been none yet.
                return self._last_cpu
            times = _attempt("cpu_times", self._cpu_times)
            if times is None:
                return None  # unknown this time; the baseline stays, so the next reading spans the gap
            if _cpu_seconds(times) < _cpu_seconds(self._cpu_base):
                # The counters went back as a whole (a restored VM, a CPU taken offline): what lies
                # between is not an interval. Start again from here.
                self._cpu_base, self._cpu_base_at, self._last_cpu = times, now, None
                return None
            busy, total = _busy_and_total(self._cpu_base, times)
            if total <= 0:
                return self._last_cpu  # no tick counted yet: nothing measured, keep the baseline
            self._cpu_base, self._cpu_base_at = times, now
            self._last_cpu = _clamp_percent(round(busy / total * 100.0, 1))
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
