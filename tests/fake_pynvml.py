"""A stand-in for the ``pynvml`` module, for testing GpuSampler on machines without NVIDIA GPUs.

It exposes the real pynvml names GpuSampler calls, with the real signatures, and raises the real
exception classes from pynvml itself (``pynvml.NVMLError_NotSupported`` ...), so the sampler's except
clauses are exercised with the types NVML will actually throw. Like NVML, every device call made before
``nvmlInit`` (or after ``nvmlShutdown``) raises ``NVMLError_Uninitialized``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

GIB = 1024**3

# The real exception types, re-exported so tests name them the way the sampler sees them.
NVMLError = pynvml.NVMLError
NVMLError_NotSupported = pynvml.NVMLError_NotSupported
NVMLError_NoPermission = pynvml.NVMLError_NoPermission
NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost
NVMLError_Uninitialized = pynvml.NVMLError_Uninitialized
NVMLError_Unknown = pynvml.NVMLError_Unknown
NVML_VALUE_NOT_AVAILABLE = pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value

# Every per-device query GpuSampler makes (handles aside): fail them all to simulate a dead device.
DEVICE_CALLS = (
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetGraphicsRunningProcesses",
)


@dataclass
class FakeGpu:
    """One simulated device, in NVML's own units (milliwatts, bytes, percent, °C)."""

    name: str | bytes = "NVIDIA H100 80GB HBM3"
    uuid: str | bytes = "GPU-00000000-0000-0000-0000-000000000000"
    util: int = 0
    mem_total: int = 80 * GIB
    mem_used: int = 0
    temperature: int = 30
    power_mw: int = 70_000
    power_limit_mw: int = 700_000
    fan: int = 0
    # (pid, usedGpuMemory): memory may be None or NVML_VALUE_NOT_AVAILABLE, as NVML hands them out
    compute_procs: list[tuple[int, int | None]] = field(default_factory=list)
    graphics_procs: list[tuple[int, int | None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Handle:
    index: int


# Failure spec: function name -> error class (every device), or (device index, function name) -> class.
FailSpec = dict[Any, type[BaseException]]


class FakeNvml:
    """Quacks like the pynvml module for the calls GpuSampler makes; counts every call.

    Tests may change ``gpus``, ``fail`` and ``init_error`` between samples to simulate a driver appearing
    or a device breaking.
    """

    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVMLError = pynvml.NVMLError
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost
    NVMLError_Uninitialized = pynvml.NVMLError_Uninitialized
    NVMLError_Unknown = pynvml.NVMLError_Unknown

    def __init__(
        self,
        gpus: list[FakeGpu],
        fail: FailSpec | None = None,
        init_error: type[BaseException] | None = None,
    ) -> None:
        self.gpus = gpus
        self.fail: FailSpec = dict(fail or {})
        self.init_error = init_error
        self.initialised = False
        self.calls: Counter[str] = Counter()

    @property
    def init_calls(self) -> int:
        return self.calls["nvmlInit"]

    @property
    def shutdown_calls(self) -> int:
        return self.calls["nvmlShutdown"]

    # --- helpers -----------------------------------------------------------------------------------------

    def _enter(self, name: str, handle: _Handle | None = None) -> FakeGpu | None:
        self.calls[name] += 1
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        error = self.fail.get(name)
        if handle is not None:
            error = self.fail.get((handle.index, name), error)
        if error is not None:
            raise error()
        if handle is None:
            return None
        if handle.index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return self.gpus[handle.index]

    def _gpu(self, name: str, handle: _Handle) -> FakeGpu:
        gpu = self._enter(name, handle)
        assert gpu is not None
        return gpu

    @staticmethod
    def _procs(entries: list[tuple[int, int | None]]) -> list[SimpleNamespace]:
        # pynvml returns friendly objects with these attribute names (nvmlFriendlyObject).
        return [
            SimpleNamespace(
                pid=pid, usedGpuMemory=memory, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF
            )
            for pid, memory in entries
        ]

    # --- the pynvml API ----------------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise self.init_error()
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self.calls["nvmlDeviceGetHandleByIndex"] += 1
        if not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        error = self.fail.get(
            (index, "nvmlDeviceGetHandleByIndex"), self.fail.get("nvmlDeviceGetHandleByIndex")
        )
        if error is not None:
            raise error()
        if index >= len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return _Handle(index)

    def nvmlDeviceGetName(self, handle: _Handle) -> str | bytes:
        return self._gpu("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str | bytes:
        return self._gpu("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> SimpleNamespace:
        gpu = self._gpu("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=gpu.util, memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: int | None = None) -> SimpleNamespace:
        gpu = self._gpu("nvmlDeviceGetMemoryInfo", handle)
        return SimpleNamespace(total=gpu.mem_total, used=gpu.mem_used, free=gpu.mem_total - gpu.mem_used)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._gpu("nvmlDeviceGetTemperature", handle)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetFanSpeed(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetFanSpeed", handle).fan

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        return self._procs(self._gpu("nvmlDeviceGetComputeRunningProcesses", handle).compute_procs)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[SimpleNamespace]:
        return self._procs(self._gpu("nvmlDeviceGetGraphicsRunningProcesses", handle).graphics_procs)


def two_gpus() -> list[FakeGpu]:
    """A busy H100 and an idle A100. The H100's name comes as bytes (as older pynvml returns), pid 4242 is
    in both process lists (its memory known in only one), and 5151 / 6161 have unknown memory, once as None
    and once as NVML's not-available marker."""
    return [
        FakeGpu(
            name=b"NVIDIA H100 80GB HBM3",
            uuid="GPU-aaaa",
            util=87,
            mem_total=80 * GIB,
            mem_used=61 * GIB,
            temperature=71,
            power_mw=612_345,
            power_limit_mw=700_000,
            fan=55,
            compute_procs=[(4242, 30 * GIB), (5151, None)],
            graphics_procs=[(4242, None), (6161, NVML_VALUE_NOT_AVAILABLE)],
        ),
        FakeGpu(name="NVIDIA A100-SXM4-40GB", uuid="GPU-bbbb", util=3, mem_total=40 * GIB, mem_used=GIB),
    ]


def make_fake_nvml(
    gpus: list[FakeGpu] | None = None,
    fail: FailSpec | None = None,
    init_error: type[BaseException] | None = None,
) -> FakeNvml:
    """A fake NVML with these devices (default: :func:`two_gpus`), failures and an optional nvmlInit error."""
    return FakeNvml(two_gpus() if gpus is None else gpus, fail=fail, init_error=init_error)
