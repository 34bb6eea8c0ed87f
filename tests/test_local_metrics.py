"""The local backend's samplers: host metrics and process trees on this real machine through psutil, and
GPUs through the real pynvml (its no-driver path) and a fake NVML module for the devices we do not have."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from backends.local import metrics
from backends.local.metrics import HostSampler, ProcessSampler, ProcessUsage, ancestors
from backends.local.nvml import GpuSampler
from backends.model import Gpu, GpuStatus, SystemMetrics, from_json, to_json
from tests.fake_pynvml import (
    DEVICE_CALLS,
    GIB,
    NVMLError_DriverNotLoaded,
    NVMLError_GpuIsLost,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
    NVMLError_NotSupported,
    NVMLError_Unknown,
    make_fake_nvml,
)

MB = 1024 * 1024


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- host ----------------------------------------------------------------------------------------------


def test_host_sample_is_plausible_on_this_machine(tmp_path: Path) -> None:
    sampler = HostSampler(tmp_path)
    first = sampler.sample()
    assert first.cpu_percent is None or 0.0 <= first.cpu_percent <= 100.0
    assert first.cpu_count is not None and first.cpu_count >= 1
    assert first.mem_total is not None and first.mem_total > 0
    assert first.mem_used is not None and 0 < first.mem_used <= first.mem_total
    assert first.mem_available is not None and 0 < first.mem_available <= first.mem_total
    assert first.swap_total is not None and first.swap_used is not None
    assert first.disk_total == psutil.disk_usage(str(tmp_path)).total
    assert first.disk_total is not None and first.disk_used is not None
    assert 0 < first.disk_used <= first.disk_total
    assert first.uptime_s is not None and first.uptime_s > 0
    if hasattr(os, "getloadavg"):
        assert first.load_avg is not None and first.load_avg.m1 >= 0
    time.sleep(metrics.MIN_CPU_INTERVAL_S + 0.1)
    second = sampler.sample()
    assert second.cpu_percent is not None and 0.0 <= second.cpu_percent <= 100.0
    # What the sampler makes must pass the wire model's own validation (units, ranges).
    assert from_json(to_json(second), SystemMetrics) == second


def test_cpu_percent_is_none_until_an_interval_has_passed(tmp_path: Path) -> None:
    clock = Clock()
    sampler = HostSampler(tmp_path, monotonic=clock)
    assert sampler.sample().cpu_percent is None  # no time has passed: psutil would say a fake 0.0
    time.sleep(0.05)  # real CPU ticks for psutil to measure
    clock.now += 1.0
    measured = sampler.sample().cpu_percent
    assert measured is not None
    # Asked again too soon: the last real value is repeated, not a fresh near-zero reading.
    assert sampler.sample().cpu_percent == measured


def test_cpu_percent_not_made_up_when_priming_failed(tmp_path: Path) -> None:
    clock = Clock()
    zero = psutil.cpu_times()._replace(**dict.fromkeys(psutil.cpu_times()._fields, 0.0))
    counters: list[object] = [OSError("simulated failure"), zero, zero._replace(user=37.5, idle=62.5)]

    def cpu_times() -> object:
        value = counters.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    sampler = HostSampler(tmp_path, monotonic=clock, cpu_times=cpu_times)
    assert sampler.sample().cpu_percent is None  # this reading only set the baseline
    clock.now += 1.0
    assert sampler.sample().cpu_percent == 37.5


def test_disk_of_missing_state_dir_uses_nearest_parent_and_creates_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "not" / "yet"
    sample = HostSampler(state_dir).sample()
    assert sample.disk_total == psutil.disk_usage(str(tmp_path)).total
    assert not (tmp_path / "not").exists()


def _raise(*args: object, **kwargs: object) -> None:
    raise OSError("simulated failure")


@pytest.mark.parametrize(
    ("module", "function", "fields"),
    [
        (psutil, "virtual_memory", ("mem_total", "mem_used", "mem_available")),
        (psutil, "swap_memory", ("swap_total", "swap_used")),
        (psutil, "disk_usage", ("disk_total", "disk_used")),
        (psutil, "boot_time", ("uptime_s",)),
        (psutil, "cpu_count", ("cpu_count",)),
        (os, "getloadavg", ("load_avg",)),
    ],
)
def test_one_failing_call_makes_only_its_fields_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: object, function: str, fields: tuple[str, ...]
) -> None:
    monkeypatch.setattr(module, function, _raise, raising=False)
    sample = HostSampler(tmp_path).sample()
    for name in fields:
        assert getattr(sample, name) is None, name
    others = {"mem_total", "swap_total", "disk_total", "uptime_s", "cpu_count", "load_avg"} - set(fields)
    for name in others:
        assert getattr(sample, name) is not None, name


# --- processes -----------------------------------------------------------------------------------------

# The parent starts a child that fills ~50 MB (written, so the pages are really resident), waits for it to
# say so, prints the child's pid and sleeps.
_TREE_SCRIPT = r"""
import subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c",
     "import sys, time; data = b'x' * (50 << 20); print('ready', flush=True); time.sleep(120)"],
    stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline().strip() == "ready"
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.fixture
def process_tree() -> Iterator[tuple[subprocess.Popen[str], int]]:
    parent = subprocess.Popen([sys.executable, "-c", _TREE_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        yield parent, child_pid
    finally:
        for proc in [*_children(parent.pid), parent]:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                proc.kill()
        parent.wait(timeout=10)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_process_usage_includes_children(process_tree: tuple[subprocess.Popen[str], int]) -> None:
    parent, child_pid = process_tree
    sampler = ProcessSampler()
    first = sampler.sample(parent.pid)
    assert first.alive
    assert first.cpu_percent is None  # first sight of this tree: no interval measured yet
    parent_alone = psutil.Process(parent.pid).memory_info().rss
    assert first.rss_bytes is not None
    assert first.rss_bytes > parent_alone + 40 * MB
    assert psutil.Process(child_pid).memory_info().rss > 40 * MB
    time.sleep(0.2)
    second = sampler.sample(parent.pid)
    assert second.alive and second.cpu_percent is not None and second.cpu_percent >= 0.0


def test_vanished_pid_is_reported_gone(process_tree: tuple[subprocess.Popen[str], int]) -> None:
    parent, _ = process_tree
    sampler = ProcessSampler()
    assert sampler.sample(parent.pid).alive
    for proc in [*_children(parent.pid), psutil.Process(parent.pid)]:
        proc.kill()
    parent.wait(timeout=10)
    assert sampler.sample(parent.pid) == ProcessUsage(cpu_percent=None, rss_bytes=None, alive=False)


def test_forgotten_tree_starts_its_cpu_measurement_afresh() -> None:
    sampler = ProcessSampler()
    sampler.sample(os.getpid())
    time.sleep(0.05)
    assert sampler.sample(os.getpid()).cpu_percent is not None
    sampler.retain(set())  # this pid is no longer watched: its cached Process objects go
    assert sampler.sample(os.getpid()).cpu_percent is None


def test_unreaped_zombie_counts_as_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not waited for (psutil's and Popen's waits would reap it): it exits and stays a zombie until we do.
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert ProcessSampler().sample(proc.pid).alive is False
    finally:
        proc.wait(timeout=10)


def test_ancestors_walks_up_from_the_pid() -> None:
    chain = ancestors(os.getpid())
    assert chain[0] == os.getpid()
    assert chain[1] == os.getppid()
    assert len(chain) == len(set(chain))


def test_ancestors_of_missing_pid_is_empty() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)
    if psutil.pid_exists(proc.pid):  # reused already: vanishingly rare, but not this test's subject
        pytest.skip("pid was reused")
    assert ancestors(proc.pid) == []


# --- GPUs: the real NVML -------------------------------------------------------------------------------


def test_real_nvml_without_driver_reports_no_driver() -> None:
    sampler = GpuSampler()
    try:
        gpus, status = sampler.sample(lambda pid: None)
        if status.status == "ok":
            pytest.skip("this machine has an NVIDIA driver")
        assert gpus == ()
        assert status.status == "no_driver"
        assert status.reason in ("NVML Shared Library Not Found", "Driver Not Loaded")
        assert sampler.sample(lambda pid: None) == ((), status)  # and stays so, without raising
    finally:
        sampler.close()


def test_missing_pynvml_reports_no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    gpus, status = GpuSampler().sample(lambda pid: None)
    assert gpus == ()
    assert status.status == "no_driver"
    assert status.reason is not None and "nvidia-ml-py" in status.reason


# --- GPUs: a fake NVML ---------------------------------------------------------------------------------


def test_fake_gpus_are_mapped_with_units_and_owners() -> None:
    fake = make_fake_nvml()
    owners = {4242: "agent-trainer", 6161: "agent-eval"}
    gpus, status = GpuSampler(fake).sample(owners.get)
    assert status.status == "ok" and status.reason is None
    assert [g.index for g in gpus] == [0, 1]
    first = gpus[0]
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.uuid == "GPU-aaaa"
    assert first.util_percent == 87
    assert (first.mem_total, first.mem_used) == (80 * GIB, 61 * GIB)
    assert first.temperature_c == 71
    assert first.power_w == pytest.approx(612.345)  # milliwatts -> watts
    assert first.power_limit_w == pytest.approx(700.0)
    assert first.fan_percent == 55
    assert [p.pid for p in first.processes] == [4242, 5151, 6161]  # 4242 is in both lists: listed once
    by_pid = {p.pid: p for p in first.processes}
    assert by_pid[4242].used_memory == 30 * GIB and by_pid[4242].agent_id == "agent-trainer"
    assert by_pid[5151].used_memory is None and by_pid[5151].agent_id is None
    assert by_pid[6161].used_memory is None and by_pid[6161].agent_id == "agent-eval"
    assert gpus[1].name == "NVIDIA A100-SXM4-40GB" and gpus[1].processes == ()
    for gpu in gpus:
        assert from_json(to_json(gpu), Gpu) == gpu


def test_not_supported_field_is_none_and_the_rest_filled() -> None:
    fake = make_fake_nvml(fail={"nvmlDeviceGetFanSpeed": NVMLError_NotSupported})
    gpus, status = GpuSampler(fake).sample(lambda pid: None)
    assert status.status == "ok"
    assert [g.fan_percent for g in gpus] == [None, None]
    assert gpus[0].power_w == pytest.approx(612.345)
    assert gpus[0].temperature_c == 71 and gpus[0].util_percent == 87


def test_no_permission_on_processes_keeps_the_device() -> None:
    fake = make_fake_nvml(
        fail={
            (0, "nvmlDeviceGetComputeRunningProcesses"): NVMLError_NoPermission,
            (0, "nvmlDeviceGetGraphicsRunningProcesses"): NVMLError_NoPermission,
        },
    )
    gpus, status = GpuSampler(fake).sample(lambda pid: None)
    assert status.status == "ok"
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[0].processes == ()
    assert gpus[0].mem_used == 61 * GIB


def test_nvml_is_initialised_once_and_handles_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("GpuSampler must not start a subprocess")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    fake = make_fake_nvml()
    sampler = GpuSampler(fake)
    assert fake.init_calls == 0  # nothing happens until the first sample
    for _ in range(5):
        gpus, _status = sampler.sample(lambda pid: None)
        assert len(gpus) == 2
    assert fake.init_calls == 1
    assert fake.calls["nvmlDeviceGetCount"] == 1
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 2
    sampler.close()
    sampler.close()
    assert fake.shutdown_calls == 1


def test_device_failing_entirely_is_skipped_with_error_status() -> None:
    fail = {(1, name): NVMLError_GpuIsLost for name in DEVICE_CALLS}
    gpus, status = GpuSampler(make_fake_nvml(fail=fail)).sample(lambda pid: None)
    assert [g.index for g in gpus] == [0]
    assert status.status == "error"
    assert status.reason == "GPU 1: GPU is lost"


def test_lost_gpu_is_skipped_even_if_some_calls_answer() -> None:
    fake = make_fake_nvml(fail={(0, "nvmlDeviceGetUtilizationRates"): NVMLError_GpuIsLost})
    gpus, status = GpuSampler(fake).sample(lambda pid: None)
    assert [g.index for g in gpus] == [1]
    assert status.status == "error" and status.reason is not None and "GPU 0" in status.reason


def test_device_without_handle_is_skipped_and_retried() -> None:
    fake = make_fake_nvml(fail={(0, "nvmlDeviceGetHandleByIndex"): NVMLError_Unknown})
    sampler = GpuSampler(fake)
    gpus, status = sampler.sample(lambda pid: None)
    assert [g.index for g in gpus] == [1]
    assert status.status == "error" and status.reason == "GPU 0: Unknown Error"
    fake.fail.clear()
    gpus, status = sampler.sample(lambda pid: None)
    assert [g.index for g in gpus] == [0, 1] and status.status == "ok"
    assert fake.init_calls == 1


def test_init_failure_is_retried_only_after_the_interval() -> None:
    clock = Clock()
    fake = make_fake_nvml(init_error=NVMLError_LibraryNotFound)
    sampler = GpuSampler(fake, monotonic=clock)
    gpus, status = sampler.sample(lambda pid: None)
    assert gpus == () and status.status == "no_driver" and status.reason == "NVML Shared Library Not Found"
    clock.now += 30.0
    assert sampler.sample(lambda pid: None) == ((), status)
    assert fake.init_calls == 1  # not retried on every refresh
    fake.init_error = None  # the driver gets installed
    clock.now += 29.0
    assert sampler.sample(lambda pid: None)[1].status == "no_driver"
    assert fake.init_calls == 1
    clock.now += 2.0
    gpus, status = sampler.sample(lambda pid: None)
    assert status.status == "ok" and len(gpus) == 2
    assert fake.init_calls == 2


def test_driver_not_loaded_is_no_driver_but_other_init_errors_are_errors() -> None:
    fake = make_fake_nvml(init_error=NVMLError_DriverNotLoaded)
    sampler = GpuSampler(fake)
    assert sampler.sample(lambda pid: None) == ((), GpuStatus(status="no_driver", reason="Driver Not Loaded"))
    sampler.close()
    assert fake.shutdown_calls == 0  # never initialised, so nothing to shut down
    status = GpuSampler(make_fake_nvml(init_error=NVMLError_NoPermission)).sample(lambda pid: None)[1]
    assert status == GpuStatus(status="error", reason="NVML could not start: Insufficient Permissions")


def test_nvml_shut_down_underneath_is_initialised_again() -> None:
    fake = make_fake_nvml()
    sampler = GpuSampler(fake)
    assert len(sampler.sample(lambda pid: None)[0]) == 2
    fake.initialised = False  # another user of NVML in this process shut it down
    gpus, status = sampler.sample(lambda pid: None)
    assert gpus == () and status.status == "error"
    gpus, status = sampler.sample(lambda pid: None)
    assert len(gpus) == 2 and status.status == "ok"
    assert fake.init_calls == 2


def test_failing_owner_lookup_leaves_agent_unknown() -> None:
    def broken(pid: int) -> str | None:
        raise RuntimeError("store is locked")

    gpus, status = GpuSampler(make_fake_nvml()).sample(broken)
    assert status.status == "ok"
    assert gpus[0].processes and all(p.agent_id is None for p in gpus[0].processes)


def test_no_devices_is_ok_and_says_so() -> None:
    gpus, status = GpuSampler(make_fake_nvml([])).sample(lambda pid: None)
    assert gpus == () and status.status == "ok" and status.reason == "NVML reports no GPUs"
