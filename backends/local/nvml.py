"""GPUs of this machine through NVML (the ``pynvml`` module of the ``nvidia-ml-py`` distribution).

NVML is initialised once and its device handles are kept: initialising costs milliseconds to seconds
(the driver may have to wake every GPU), far too much for a console refreshing several times a second.
Each field is read on its own, because consumer and virtualised GPUs answer ``NotSupported`` or
``NoPermission`` for some queries (fan speed on passively cooled boards, processes inside containers) and
one missing number must not hide the others. No subprocess (nvidia-smi) is ever started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from backends.model import Gpu, GpuProcess, GpuStatus

log = logging.getLogger(__name__)

# After a failed nvmlInit, try again at most this often: a driver loaded after the console started is
# found within a minute, while a machine without GPUs does not pay for a failing dlopen on every refresh.
INIT_RETRY_INTERVAL_S = 60.0

# NVML reports "not available" process memory (e.g. under WDDM, or without permission) as unsigned -1.
NVML_VALUE_NOT_AVAILABLE = 2**64 - 1

# nvmlInit errors meaning "there is no usable NVIDIA driver here", as opposed to a driver that is present
# but broken (version mismatch, permissions), which is reported as an error.
_NO_DRIVER_ERRORS = ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded")

# Errors after which a device is treated as failed as a whole, even if some calls still answered.
_DEVICE_FATAL_ERRORS = ("NVMLError_GpuIsLost",)

OwnerOfPid = Callable[[int], str | None]


def _text(value: Any) -> str:
    # pynvml decodes names itself in Python 3, but older releases (and some wrappers) hand back bytes.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _percent(value: Any) -> float:
    # NVML has been seen reporting fan speeds above 100; the wire model accepts only 0-100.
    return min(100.0, max(0.0, float(value)))


def _memory(value: Any) -> int | None:
    if value is None:
        return None
    memory = int(value)
    if memory < 0 or memory >= NVML_VALUE_NOT_AVAILABLE:
        return None
    return memory


class _DeviceReading:
    """Collects the fields of one device, remembering which calls failed and why."""

    def __init__(self, nvml: Any, index: int) -> None:
        self._nvml = nvml
        self.index = index
        self.answered = 0
        self.errors: list[BaseException] = []

    def read(self, call: Callable[[], Any]) -> Any:
        try:
            value = call()
        except Exception as exc:
            # NotSupported / NoPermission are routine on many boards: the field is simply unknown. Not only
            # NVMLError: pynvml raises NVMLLibraryMismatchError when the driver predates a versioned call.
            self.errors.append(exc)
            return None
        self.answered += 1
        return value

    def failed_entirely(self) -> bool:
        fatal = tuple(getattr(self._nvml, name) for name in _DEVICE_FATAL_ERRORS if hasattr(self._nvml, name))
        return self.answered == 0 or any(isinstance(exc, fatal) for exc in self.errors)

    def reason(self) -> str:
        first = self.errors[0] if self.errors else "no answer"
        return f"GPU {self.index}: {first}"


class GpuSampler:
    """Reads every GPU through NVML; ``nvml_module`` is injectable (tests pass a fake with the same names).

    ``monotonic`` is injectable so the init-retry interval can be tested without waiting.
    Thread-safe: the local backend may sample from a worker thread while ``close()`` comes from another.
    """

    def __init__(
        self,
        nvml_module: Any | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        retry_interval_s: float = INIT_RETRY_INTERVAL_S,
    ) -> None:
        self._monotonic = monotonic
        self._retry_interval_s = retry_interval_s
        self._lock = threading.Lock()
        self._import_error: str | None = None
        if nvml_module is None:
            try:
                import pynvml  # imported here so importing this module never loads NVML bindings

                nvml_module = pynvml
            except ImportError as exc:
                self._import_error = f"pynvml is not installed (pip install nvidia-ml-py): {exc}"
        self._nvml: Any = nvml_module
        self._initialised = False
        self._handles: dict[int, Any] = {}  # index -> handle, for the devices that gave one
        self._count = 0
        self._init_failure: GpuStatus | None = None
        self._next_init_at = 0.0

    # --- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Shut NVML down (once, and only if it was initialised). A later sample() initialises again."""
        with self._lock:
            self._shutdown()

    def __enter__(self) -> GpuSampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _shutdown(self) -> None:
        if self._initialised:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as exc:
                log.debug("nvmlShutdown failed: %s", exc)
        self._initialised = False
        self._handles = {}
        self._count = 0

    def _ensure_initialised(self) -> GpuStatus | None:
        """Initialise NVML if needed; return the status to report when it is not usable, else None."""
        if self._import_error is not None:
            return GpuStatus(status="no_driver", reason=self._import_error)
        if self._initialised:
            return None
        now = self._monotonic()
        if self._init_failure is not None and now < self._next_init_at:
            return self._init_failure
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            self._fail_init(now, self._init_status(exc))
            return self._init_failure
        except Exception as exc:  # e.g. NVMLLibraryMismatchError, which is not an NVMLError
            self._fail_init(now, GpuStatus(status="error", reason=f"NVML could not start: {exc}"))
            return self._init_failure
        self._initialised = True
        try:
            self._count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            self._shutdown()
            self._fail_init(now, GpuStatus(status="error", reason=f"cannot count GPUs: {exc}"))
            return self._init_failure
        self._init_failure = None
        return None

    def _init_status(self, exc: BaseException) -> GpuStatus:
        no_driver = tuple(
            getattr(self._nvml, name) for name in _NO_DRIVER_ERRORS if hasattr(self._nvml, name)
        )
        if isinstance(exc, no_driver):
            return GpuStatus(status="no_driver", reason=str(exc))
        return GpuStatus(status="error", reason=f"NVML could not start: {exc}")

    def _fail_init(self, now: float, status: GpuStatus) -> None:
        log.debug("NVML unavailable: %s", status.reason)
        self._init_failure = status
        self._next_init_at = now + self._retry_interval_s

    def _handle(self, index: int) -> Any:
        """The cached handle of a device; fetched on first use (and again while fetching it fails)."""
        handle = self._handles.get(index)
        if handle is None:
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            self._handles[index] = handle
        return handle

    # --- sampling --------------------------------------------------------------------------------------

    def sample(self, owner_of_pid: OwnerOfPid) -> tuple[tuple[Gpu, ...], GpuStatus]:
        """Every GPU that answers, and the overall status (``error`` names the first device that failed).

        ``owner_of_pid`` maps a process using a GPU to the agent it belongs to (None: not an agent's).
        """
        with self._lock:
            unusable = self._ensure_initialised()
            if unusable is not None:
                return (), unusable
            gpus: list[Gpu] = []
            failures: list[str] = []
            uninitialised = False
            for index in range(self._count):
                try:
                    handle = self._handle(index)
                except self._nvml.NVMLError as exc:
                    failures.append(f"GPU {index}: {exc}")
                    uninitialised = uninitialised or self._is_uninitialised(exc)
                    continue
                reading = _DeviceReading(self._nvml, index)
                gpu = self._read_device(reading, handle, owner_of_pid)
                if reading.failed_entirely():
                    failures.append(reading.reason())
                    uninitialised = uninitialised or any(self._is_uninitialised(e) for e in reading.errors)
                    continue
                gpus.append(gpu)
            if uninitialised:
                # Someone shut NVML down under us (it is reference counted per process): start it again on
                # the next refresh rather than reporting every GPU as broken from now on.
                self._initialised = False
                self._handles = {}
            if failures:
                return tuple(gpus), GpuStatus(status="error", reason="; ".join(failures))
            if not gpus:
                return (), GpuStatus(status="ok", reason="NVML reports no GPUs")
            return tuple(gpus), GpuStatus(status="ok")

    def _is_uninitialised(self, exc: BaseException) -> bool:
        cls = getattr(self._nvml, "NVMLError_Uninitialized", None)
        return cls is not None and isinstance(exc, cls)

    def _read_device(self, reading: _DeviceReading, handle: Any, owner_of_pid: OwnerOfPid) -> Gpu:
        nvml = self._nvml
        # The sensor id of the GPU die; 0 in NVML's C API should a binding not export the name.
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        name = reading.read(lambda: nvml.nvmlDeviceGetName(handle))
        uuid = reading.read(lambda: nvml.nvmlDeviceGetUUID(handle))
        util = reading.read(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        memory = reading.read(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        temperature = reading.read(lambda: nvml.nvmlDeviceGetTemperature(handle, sensor))
        power_mw = reading.read(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        limit_mw = reading.read(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        fan = reading.read(lambda: nvml.nvmlDeviceGetFanSpeed(handle))
        compute = reading.read(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle))
        graphics = reading.read(lambda: nvml.nvmlDeviceGetGraphicsRunningProcesses(handle))
        return Gpu(
            index=reading.index,
            uuid=None if uuid is None else _text(uuid),
            name=None if name is None else _text(name),
            util_percent=None if util is None else _percent(util.gpu),
            mem_total=None if memory is None else int(memory.total),
            mem_used=None if memory is None else int(memory.used),
            temperature_c=None if temperature is None else float(temperature),
            power_w=None if power_mw is None else power_mw / 1000.0,  # NVML reports milliwatts
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
            fan_percent=None if fan is None else _percent(fan),
            processes=self._processes([*(compute or ()), *(graphics or ())], owner_of_pid),
        )

    @staticmethod
    def _processes(infos: list[Any], owner_of_pid: OwnerOfPid) -> tuple[GpuProcess, ...]:
        # A process doing both compute and graphics is listed twice; keep one entry with the known memory.
        memory_by_pid: dict[int, int | None] = {}
        for info in infos:
            pid = int(info.pid)
            used = _memory(getattr(info, "usedGpuMemory", None))
            known = memory_by_pid.get(pid)
            memory_by_pid[pid] = used if known is None else max(known, used or 0)
        processes = []
        for pid, used in sorted(memory_by_pid.items()):
            processes.append(GpuProcess(pid=pid, used_memory=used, agent_id=_owner(owner_of_pid, pid)))
        return tuple(processes)


def _owner(owner_of_pid: OwnerOfPid, pid: int) -> str | None:
    # The join is the backend's code, but a bug in it must not cost the operator the whole GPU panel.
    try:
        return owner_of_pid(pid)
    except Exception as exc:
        log.warning("could not find the agent owning GPU process %d: %s", pid, exc)
        return None
