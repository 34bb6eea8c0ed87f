"""The cluster's machines, from the dashboard's node list and node summary, as fleetdeck's host and GPU data.

A Ray cluster is one fleetdeck node, so :class:`SystemMetrics` holds cluster totals (CPUs, memory, load
summed over the live machines) and each machine is kept in words in the node's labels
(``machine 10.0.0.5`` → ``gpu-a · 32 CPU · 12.0/256.0 GiB · 4 GPU``). GPUs are listed machine by machine,
renumbered so an index is unique in the cluster, each named after its machine ("10.0.0.5 · A100").

Ray reports GPU memory in MiB (``memoryUsed``/``memoryTotal``/``gpuMemoryUsage``) and power in milliwatts
(``powerMw``); they are turned into bytes and watts here. Every field may be missing: a machine whose
reporter has not spoken yet has no ``loadAvg``, a CPU-only machine an empty ``gpus`` list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backends.model import Gpu, GpuProcess, LoadAvg, SystemMetrics

MIB = 1024 * 1024
GIB = 1024**3


@dataclass(frozen=True)
class Cluster:
    system: SystemMetrics
    gpus: tuple[Gpu, ...]
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None  # the head machine's
    gpu_pids: dict[int, int] = field(default_factory=dict)  # pid -> GPU memory in bytes, for actors


def nodes_from(payload: Any) -> list[dict[str, Any]]:
    """``/api/v0/nodes`` → its list of node records (``node_id``, ``node_ip``, ``state``, ...)."""
    return _state_api_list(payload)


def summaries_from(payload: Any) -> list[dict[str, Any]]:
    """``/nodes?view=summary`` → one record per machine (``data.summary``)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    summary = data.get("summary") if isinstance(data, dict) else None
    return [s for s in summary if isinstance(s, dict)] if isinstance(summary, list) else []


def _state_api_list(payload: Any) -> list[dict[str, Any]]:
    """The state API wraps lists twice: ``{"data": {"result": {"result": [...]}}}``."""
    try:
        rows = payload["data"]["result"]["result"]
    except (KeyError, TypeError):
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def cluster_from(
    nodes: list[dict[str, Any]], summaries: list[dict[str, Any]], *, agent_of_pid: dict[int, str]
) -> Cluster:
    alive_ids = {n.get("node_id") for n in nodes if n.get("state") == "ALIVE"}
    machines = [s for s in summaries if not alive_ids or _node_id(s) in alive_ids or _node_id(s) is None]
    labels = {"machines": f"{len(machines)} alive of {len(nodes) or len(machines)}"}
    dead = [n for n in nodes if n.get("state") not in (None, "ALIVE")]
    if dead:
        labels["machines down"] = ", ".join(str(n.get("node_ip") or n.get("node_id")) for n in dead)
    gpus: list[Gpu] = []
    gpu_pids: dict[int, int] = {}
    head = next((s for s in machines if _raylet(s).get("isHeadNode")), machines[0] if machines else None)
    for machine in machines:
        ip = str(machine.get("ip") or _raylet(machine).get("nodeManagerAddress") or "?")
        for raw in _list(machine.get("gpus")):
            gpu = _gpu(raw, index=len(gpus), machine=ip, agent_of_pid=agent_of_pid)
            gpus.append(gpu)
            for proc in gpu.processes:
                if proc.used_memory is not None:
                    gpu_pids[proc.pid] = gpu_pids.get(proc.pid, 0) + proc.used_memory
        labels[f"machine {ip}"] = _machine_words(machine)
    return Cluster(
        system=_system(machines, head),
        gpus=tuple(gpus),
        labels=labels,
        hostname=str(head.get("hostname")) if head and head.get("hostname") else None,
        gpu_pids=gpu_pids,
    )


def _system(machines: list[dict[str, Any]], head: dict[str, Any] | None) -> SystemMetrics:
    cpu_counts = [_num(_list(m.get("cpus"))[0]) if _list(m.get("cpus")) else None for m in machines]
    cpu_pcts = [_num(m.get("cpu")) for m in machines]
    # cluster CPU use: each machine's percent weighted by its CPU count
    weighted = [(p, c) for p, c in zip(cpu_pcts, cpu_counts, strict=True) if p is not None and c]
    cpu_percent = sum(p * c for p, c in weighted) / sum(c for _, c in weighted) if weighted else None
    mems = [_list(m.get("mem")) for m in machines]  # [total, available, percent, used]
    loads = [_list(_list(m.get("loadAvg"))[0]) if _list(m.get("loadAvg")) else [] for m in machines]
    disks = [_root_disk(m) for m in machines]
    uptime = None
    if head is not None and _num(head.get("now")) is not None and _num(head.get("bootTime")) is not None:
        uptime = max(0.0, float(head["now"]) - float(head["bootTime"]))
    return SystemMetrics(
        cpu_percent=min(100.0, max(0.0, cpu_percent)) if cpu_percent is not None else None,
        cpu_count=_sum_int(cpu_counts),
        load_avg=_sum_load(loads),
        mem_total=_sum_int([_at(m, 0) for m in mems]),
        mem_available=_sum_int([_at(m, 1) for m in mems]),
        mem_used=_sum_int([_at(m, 3) for m in mems]),
        disk_total=_sum_int([d[0] for d in disks]),
        disk_used=_sum_int([d[1] for d in disks]),
        disk_available=_disk_available(disks),
        uptime_s=uptime,
    )


def _gpu(raw: Any, *, index: int, machine: str, agent_of_pid: dict[int, str]) -> Gpu:
    row = raw if isinstance(raw, dict) else {}
    processes = []
    for proc in _list(row.get("processesPids")):
        pid = _num(proc.get("pid")) if isinstance(proc, dict) else None
        if pid is None or pid < 0:
            continue
        used = _num(proc.get("gpuMemoryUsage"))
        processes.append(
            GpuProcess(
                pid=int(pid),
                used_memory=int(used * MIB) if used is not None and used >= 0 else None,
                agent_id=agent_of_pid.get(int(pid)),
            )
        )
    util, used_mb, total_mb = (_num(row.get(k)) for k in ("utilizationGpu", "memoryUsed", "memoryTotal"))
    power_mw = _num(row.get("powerMw"))
    name = row.get("name")
    return Gpu(
        index=index,
        uuid=str(row["uuid"]) if row.get("uuid") else None,
        name=f"{machine} · {name}" if name else machine,
        util_percent=min(100.0, max(0.0, util)) if util is not None else None,
        mem_total=int(total_mb * MIB) if total_mb is not None and total_mb >= 0 else None,
        mem_used=int(used_mb * MIB) if used_mb is not None and used_mb >= 0 else None,
        temperature_c=_num(row.get("temperatureC")),
        power_w=power_mw / 1000 if power_mw is not None and power_mw >= 0 else None,
        processes=tuple(processes),
    )


def _machine_words(machine: dict[str, Any]) -> str:
    parts = [str(machine.get("hostname") or "?")]
    cpus = _list(machine.get("cpus"))
    if cpus and _num(cpus[0]) is not None:
        parts.append(f"{int(cpus[0])} CPU")
    if (cpu := _num(machine.get("cpu"))) is not None:
        parts.append(f"{cpu:.0f}% cpu")
    mem = _list(machine.get("mem"))
    if _at(mem, 0) is not None and _at(mem, 3) is not None:
        parts.append(f"{_at(mem, 3) / GIB:.1f}/{_at(mem, 0) / GIB:.1f} GiB")  # type: ignore[operator]
    if gpus := _list(machine.get("gpus")):
        parts.append(f"{len(gpus)} GPU")
    return " · ".join(parts)


def _node_id(summary: dict[str, Any]) -> Any:
    return _raylet(summary).get("nodeId")


def _raylet(summary: dict[str, Any]) -> dict[str, Any]:
    raylet = summary.get("raylet")
    return raylet if isinstance(raylet, dict) else {}


def _root_disk(machine: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """Total, used and available of a machine's ``/``: Ray's reporter sends psutil.disk_usage per mount, whose
    ``free`` is statvfs f_bavail (df's Avail, reserved blocks left out)."""
    disk = machine.get("disk")
    root = disk.get("/") if isinstance(disk, dict) else None
    if not isinstance(root, dict):
        return None, None, None
    free = _num(root.get("free"))
    return _num(root.get("total")), _num(root.get("used")), free if free is not None and free >= 0 else None


def _disk_available(disks: list[tuple[float | None, float | None, float | None]]) -> int | None:
    """The machines' available space summed, only where every machine counted in ``used`` says it: a part
    would set a partial Avail against the whole Used, and the console falls back to used / total."""
    counted = [d for d in disks if d[1] is not None and d[1] >= 0]
    if not counted or any(d[2] is None for d in counted):
        return None
    return _sum_int([d[2] for d in counted])


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _at(values: list[Any], i: int) -> float | None:
    return _num(values[i]) if len(values) > i else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _sum_int(values: list[float | None]) -> int | None:
    known = [v for v in values if v is not None and v >= 0]
    return int(sum(known)) if known else None


def _sum_load(loads: list[list[Any]]) -> LoadAvg | None:
    triples = [[_num(x) for x in load[:3]] for load in loads if len(load) >= 3]
    triples = [t for t in triples if all(x is not None for x in t)]
    if not triples:
        return None
    m1, m5, m15 = (sum(t[i] for t in triples) for i in range(3))  # type: ignore[misc]
    return LoadAvg(m1=m1, m5=m5, m15=m15)
