"""The simulation of one demo node: host, GPUs and agents as pure functions of time.

Nothing here keeps state between calls. Each number is a slow sum of seeded sines plus a little smooth
noise, so charts move like a real machine's, and a snapshot at time T is identical however many snapshots
came before it. Operator changes (holds, dispatched work) come in as arguments, from ``state.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from backends.model import (
    Agent,
    AgentState,
    Gpu,
    GpuProcess,
    GpuStatus,
    Health,
    Kpi,
    LoadAvg,
    SystemMetrics,
)

from .catalog import MIB, NO_DRIVER_REASON, NodeSpec
from .figures import Profile, build_profile, kpis_at, value_at
from .plan import NEXT_PHASE_ID
from .roster import (
    CRASH_FAILED_S,
    CRASH_PERIOD_S,
    CRASH_STARTING_S,
    HEARTBEAT_INTERVAL_S,
    HOT_PERIOD_S,
    STALL_LENGTH_S,
    STALL_PERIOD_S,
    STALL_UNHEALTHY_AFTER_S,
    AgentSpec,
    Trouble,
)
from .signals import clamp, mix, phase_of, smooth_noise, wave
from .state import COMMAND_STARTUP_S, CommandAgent, Hold, stronger

DRIVER_RESERVED = 531 * MIB  # what NVML reports as used on an idle GPU (driver context)
BUSY_THRESHOLD = -0.55  # below this point of its busy wave a worker sits idle
CRASH_REASON = "exited with code 137 (OOM killed)"
CRASH_LOOP_WINDOW_S = 3600.0  # a supervisor calls an agent crash-looping for its crashes in the last hour


@dataclass(frozen=True, slots=True)
class Busy:
    """A dispatched task an agent is running right now, shown in place of its simulated work."""

    task_id: str
    message: str
    progress: float | None


@dataclass(frozen=True, slots=True)
class CrashView:
    state: str  # failed | starting | running
    crashed_at: float
    restarts_since_epoch: int


class World:
    def __init__(
        self, seed: int, spec: NodeSpec, roster: list[AgentSpec], trouble: Trouble, genesis: float
    ) -> None:
        self.seed = seed
        self.spec = spec
        self.roster = roster
        self.trouble = trouble
        self.genesis = genesis
        self.boot_time = genesis - spec.boot_age_s
        self._key = mix(seed, spec.index, 0x5157)
        self._phases = [phase_of(mix(self._key, i)) for i in range(8)]
        gpus = 0 if spec.gpu_error else spec.gpu_count
        # GPU index -> [(agent spec, bytes held)]: computed once, the hot path only walks it.
        self._holders: list[list[tuple[AgentSpec, int]]] = [[] for _ in range(gpus)]
        for agent in roster:
            for index, share in agent.gpu_shares:
                self._holders[index].append((agent, share))
        self._gpu_keys = [mix(self._key, 0x6B0, i) for i in range(gpus)]
        profiles = ((a.id, build_profile(a, a.id == trouble.slow_id, genesis)) for a in roster)
        self._profiles: dict[str, Profile] = {ident: p for ident, p in profiles if p is not None}
        self._gpu_uuids = [_uuid(mix(seed, spec.index, 0x0015, i)) for i in range(gpus)]
        self.gpu_status = (
            GpuStatus(status="error", reason=spec.gpu_error)
            if spec.gpu_error
            else GpuStatus(status="no_driver", reason=NO_DRIVER_REASON)
            if not spec.gpu_count
            else GpuStatus(status="ok")
        )

    # --- host --------------------------------------------------------------------------------------------

    def _load(self, t: float, fast: bool = True) -> float:
        p = self._phases
        level = 0.38 + 0.18 * wave(t, 1800, p[0]) + 0.07 * wave(t, 5400, p[1])
        if fast:
            level += 0.08 * wave(t, 300, p[2]) + 0.04 * smooth_noise(self._key, t / 3)
        return clamp(level, 0.02, 0.99)

    def system_at(self, t: float) -> SystemMetrics:
        spec, p = self.spec, self._phases
        cpus = spec.cpu_count
        load = self._load(t)
        mem_used = int(
            spec.mem_total
            * clamp(
                0.44 + 0.10 * wave(t, 2700, p[3]) + 0.01 * smooth_noise(self._key + 1, t / 10), 0.05, 0.95
            )
        )
        cache = int(spec.mem_total * 0.06)
        disk_used = int(
            clamp(
                spec.disk_total * 0.41
                + max(t - self.genesis, 0.0) * 400_000
                + spec.disk_total * 0.01 * wave(t, 3600, p[4]),
                0,
                spec.disk_total,
            )
        )
        return SystemMetrics(
            cpu_percent=round(load * 100, 1),
            cpu_count=cpus,
            load_avg=LoadAvg(
                m1=round(cpus * load * 1.04, 2),
                m5=round(cpus * self._load(t - 150, fast=False) * 1.02, 2),
                m15=round(cpus * self._load(t - 450, fast=False), 2),
            ),
            mem_total=spec.mem_total,
            mem_used=mem_used,
            mem_available=max(spec.mem_total - mem_used - cache, 0),
            swap_total=spec.swap_total,
            swap_used=int(spec.swap_total * clamp(0.03 + 0.02 * wave(t, 4000, p[5]), 0.0, 1.0)),
            disk_total=spec.disk_total,
            disk_used=disk_used,
            disk_available=max(spec.disk_total - spec.disk_reserved - disk_used, 0),
            uptime_s=round(max(t - self.boot_time, 0.0), 1),
        )

    # --- trouble schedules (also used by the log generator) ----------------------------------------------

    def crash_view(self, t: float) -> CrashView | None:
        """Where the crash-looping agent is in its cycle, or None before its first crash."""
        since = t - self.trouble.crash_epoch
        if self.trouble.crash_id is None or since < 0:
            return None
        cycle = math.floor(since / CRASH_PERIOD_S)
        crashed_at = self.trouble.crash_epoch + cycle * CRASH_PERIOD_S
        into = t - crashed_at
        state = (
            "failed"
            if into < CRASH_FAILED_S
            else "starting"
            if into < CRASH_FAILED_S + CRASH_STARTING_S
            else "running"
        )
        return CrashView(state, crashed_at, cycle + (0 if state == "failed" else 1))

    def stall_started(self, t: float) -> float | None:
        """When the stalled agent's current heartbeat gap began, or None while it heartbeats normally."""
        into = (t - self.trouble.stall_epoch) % STALL_PERIOD_S
        return t - into if self.trouble.stall_id and into < STALL_LENGTH_S else None

    def crashes_within(self, t: float, window_s: float, until: float | None = None) -> int:
        """How many times the crash-looping agent crashed in the ``window_s`` seconds up to ``t`` (and
        not after ``until``, when it was held and crashed no more)."""
        end = t if until is None else min(t, until)
        if self.trouble.crash_id is None or end < self.trouble.crash_epoch:
            return 0
        last = math.floor((end - self.trouble.crash_epoch) / CRASH_PERIOD_S)
        first = max(0, math.floor((t - window_s - self.trouble.crash_epoch) / CRASH_PERIOD_S) + 1)
        return max(0, last - first + 1)

    # --- KPIs ----------------------------------------------------------------------------------------------

    def profile(self, agent_id: str) -> Profile | None:
        return self._profiles.get(agent_id)

    def process_start(self, spec: AgentSpec, t: float) -> float:
        """When the process that measured (or last measured) at ``t`` started: its counters count from
        there. For the crash-looping agent that is its latest restart; while it lies crashed, the one
        before."""
        if spec.id == self.trouble.crash_id:
            crash = self.crash_view(t)
            if crash is not None:
                if crash.state != "failed":
                    return crash.crashed_at + CRASH_FAILED_S
                if crash.crashed_at - CRASH_PERIOD_S >= self.trouble.crash_epoch:
                    return crash.crashed_at - CRASH_PERIOD_S + CRASH_FAILED_S
        return spec.started_at

    def troubled(self, spec: AgentSpec) -> bool:
        """Whether the agent is the one that crash-loops or the one whose heartbeat stalls: only those
        have gaps in their measuring or restart their process."""
        return spec.id == self.trouble.crash_id or spec.id == self.trouble.stall_id

    def measuring(self, spec: AgentSpec, t: float) -> bool:
        """Whether the agent measures its figures at ``t``: not before it started, not while it lies
        crashed, not while its heartbeat stalls (its figures come with its heartbeat)."""
        if t < spec.started_at:
            return False
        if spec.id == self.trouble.crash_id:
            crash = self.crash_view(t)
            if crash is not None and crash.state == "failed":
                return False
        return not (spec.id == self.trouble.stall_id and self.stall_started(t) is not None)

    def latency_at(self, agent_id: str, t: float) -> float | None:
        """An agent's p95 latency figure at ``t``, for the log narrating it; None if it reports none."""
        profile = self._profiles.get(agent_id)
        if profile is None or "latency_p95_ms" not in profile.names:
            return None
        return value_at(profile, "latency_p95_ms", t, t, t)

    @staticmethod
    def measured_at(heartbeat: float, hold: Hold | None) -> float:
        """When the figures an agent shows were measured: at its last heartbeat, and a held agent's as
        they stood when it was held."""
        return round(heartbeat if hold is None else min(heartbeat, hold.since), 3)

    def latest_kpis(self, spec: AgentSpec, heartbeat: float, hold: Hold | None) -> tuple[Kpi, ...]:
        profile = self._profiles.get(spec.id)
        at = self.measured_at(heartbeat, hold)
        if profile is None or at < spec.started_at:
            return ()
        return kpis_at(profile, at, self.process_start(spec, at), spec.started_at)

    def gpu_temperature(self, index: int, working: float, t: float) -> float:
        """Temperature follows only the slow part of the load (a GPU's thermal mass smooths the rest), so
        it glides instead of jittering and crosses a threshold once, not ten times."""
        key = self._gpu_keys[index]
        slow = clamp(working + 22 * wave(t, 180 + 13 * index, phase_of(key)), 0.0, 100.0) if working else 0.0
        temp = 31 + 0.45 * slow + 0.6 * smooth_noise(key + 1, t / 6)
        if index == self.trouble.hot_gpu:
            # A GPU with poor airflow: runs warm and, once per HOT_PERIOD_S, climbs past 85 degC.
            temp += 12 + 22 * max(0.0, wave(t, HOT_PERIOD_S, self.trouble.hot_phase)) ** 1.5
        return temp

    # --- agents ------------------------------------------------------------------------------------------

    def agents_at(
        self,
        t: float,
        agent_holds: Mapping[str, Hold],
        phase_holds: Mapping[str, Hold],
        busy: Mapping[str, Busy],
    ) -> tuple[list[Agent], dict[str, str]]:
        """All simulated agents at ``t``; also the effective state of each GPU holder, for ``gpus_at``."""
        trouble = self.trouble
        crash = self.crash_view(t) if trouble.crash_id else None
        stall = self.stall_started(t) if trouble.stall_id else None
        gpu_states: dict[str, str] = {}
        agents: list[Agent] = []
        for spec in self.roster:
            hold = agent_holds.get(spec.id)
            if phase_holds and spec.phase_id is not None:
                hold = stronger(hold, phase_holds.get(spec.phase_id))
            agent = self._agent_at(spec, t, hold, busy.get(spec.id), crash, stall)
            if spec.gpu_shares:
                gpu_states[spec.id] = agent.state
            agents.append(agent)
        return agents, gpu_states

    def _agent_at(
        self,
        spec: AgentSpec,
        t: float,
        hold: Hold | None,
        busy: Busy | None,
        crash: CrashView | None,
        stall: float | None,
    ) -> Agent:
        role = spec.role
        swing = wave(t, spec.busy_period_s, spec.busy_phase)
        # Counted from genesis so PR and run numbers stay in a project's range (#412, not #6772830).
        cycle = (t - self.genesis + spec.task_offset_s) / spec.task_len_s
        number = spec.number_base + math.floor(cycle)
        state: AgentState = "running"
        health: Health = "healthy"
        reason: str | None = None
        heartbeat = t - (t - spec.heartbeat_offset_s) % HEARTBEAT_INTERVAL_S
        pid: int | None = spec.pid
        started, restarts = spec.started_at, spec.base_restarts
        task: str | None = None
        progress: float | None = None
        if busy is not None:
            message, task, progress = busy.message, busy.task_id, busy.progress
        elif role.always_busy or (spec.phase_id != NEXT_PHASE_ID and swing > BUSY_THRESHOLD):
            message = role.message.format(
                n=number,
                k=2 + mix(spec.key, number) % 15,
                shard=1 + spec.key % 8,
                model=spec.model,
                agents=len(self.roster),
            )
            if role.task is not None:
                task, progress = role.task.format(n=number), round(cycle - math.floor(cycle), 3)
        else:
            state = "idle"
            message = (
                "waiting for phase Hardening to start"
                if spec.phase_id == NEXT_PHASE_ID
                else "idle, waiting for work"
            )
        load = spec.cpu_base * (0.75 + 0.25 * swing) if state == "running" else 0.4 + 0.3 * swing
        cpu: float | None = round(max(load, 0.0) + 1.5 * abs(smooth_noise(spec.key, t / 2)), 1)
        rss: int | None = int(spec.rss_base * (1.0 + 0.08 * swing))
        gpu_mem: int | None = (
            sum(self.process_memory(spec, share, t) for _, share in spec.gpu_shares)
            if spec.gpu_shares
            else None
        )

        if hold is None and crash is not None and spec.id == self.trouble.crash_id:
            restarts += crash.restarts_since_epoch
            if crash.state == "failed":
                state, health, reason = "failed", "unhealthy", CRASH_REASON
                message, task, progress = (
                    f"{CRASH_REASON}; restarting in {math.ceil(crash.crashed_at + CRASH_FAILED_S - t)} s",
                    None,
                    None,
                )
                pid, cpu, rss = None, None, None
                heartbeat = (
                    crash.crashed_at - (crash.crashed_at - spec.heartbeat_offset_s) % HEARTBEAT_INTERVAL_S
                )
            else:
                started = round(crash.crashed_at + CRASH_FAILED_S, 3)
                pid = spec.pid + 1000 + 13 * crash.restarts_since_epoch
                heartbeat = max(heartbeat, started)
                if crash.state == "starting":
                    state, health, task, progress = "starting", "unknown", None, None
                    message = f"restarting after exit 137 (restart {restarts})"
                else:
                    # Up again, but the supervisor has seen it die over and over: a real health state.
                    crashes = self.crashes_within(t, CRASH_LOOP_WINDOW_S)
                    health = "degraded"
                    reason = f"crash-looping: {_times(crashes)} in the last hour (exit 137)"
        if stall is not None and spec.id == self.trouble.stall_id and hold is None:
            heartbeat = stall - (stall - spec.heartbeat_offset_s) % HEARTBEAT_INTERVAL_S
            age = t - heartbeat
            if age >= STALL_UNHEALTHY_AFTER_S:
                health, reason = "unhealthy", f"no heartbeat for {int(age)} s"
        if hold is not None:
            if hold.kind == "paused":
                state, cpu, message, progress = "paused", 0.1, hold.describe(), None
                if spec.id == self.trouble.crash_id:
                    # Paused, it crashes no more, but the supervisor still remembers the last hour's.
                    crashes = self.crashes_within(t, CRASH_LOOP_WINDOW_S, until=hold.since)
                    if crashes:
                        health = "degraded"
                        reason = f"crash-looping: {_times(crashes)} in the last hour (exit 137)"
            else:
                state, health, reason, message = "stopped", "unknown", None, hold.describe()
                pid, cpu, rss, gpu_mem, task, progress = None, None, None, None, None, None
                heartbeat = min(heartbeat, hold.since)
        kpis = self.latest_kpis(spec, heartbeat, hold)
        return Agent(
            id=spec.id,
            name=spec.id,
            kind=role.kind,
            state=state,
            health=health,
            health_reason=reason,
            last_heartbeat=round(heartbeat, 3),
            pid=pid,
            cpu_percent=cpu,
            rss_bytes=rss,
            gpu_mem_bytes=gpu_mem,
            phase_id=spec.phase_id,
            current_task=task,
            progress=progress,
            message=message,
            restarts=restarts,
            started_at=started,
            labels=spec.labels,
            kpis=kpis,
        )

    def command_agent_at(self, record: CommandAgent, t: float, hold: Hold | None, busy: Busy | None) -> Agent:
        """An agent started by a dispatched command: starting for a few seconds, then running."""
        age = t - record.created_at
        state: AgentState = "starting" if age < COMMAND_STARTUP_S else "running"
        key = mix(self._key, record.pid)
        message = busy.message if busy else "running: " + " ".join(record.command)[:120]
        agent = Agent(
            id=record.id,
            name=record.id,
            kind="process",
            state=state,
            health="unknown" if state == "starting" else "healthy",
            last_heartbeat=round(
                max(record.created_at, t - (t - record.created_at) % HEARTBEAT_INTERVAL_S), 3
            ),
            pid=record.pid,
            cpu_percent=round(3.0 + 2.5 * abs(smooth_noise(key, t / 2)), 1),
            rss_bytes=int((180 + 20 * wave(t, 300, 0.0)) * MIB),
            current_task=busy.task_id if busy else None,
            progress=busy.progress if busy else None,
            message=message,
            started_at=record.created_at,
            labels={"role": "command", "team": "ops", "dispatched_by": record.by},
        )
        if hold is None:
            return agent
        if hold.kind == "paused":
            return _with(agent, state="paused", cpu_percent=0.1, message=hold.describe())
        return _with(
            agent,
            state="stopped",
            health="unknown",
            pid=None,
            cpu_percent=None,
            rss_bytes=None,
            message=hold.describe(),
            current_task=None,
            progress=None,
        )

    # --- GPUs ----------------------------------------------------------------------------------------------

    def process_memory(self, spec: AgentSpec, share: int, t: float) -> int:
        """Bytes an agent holds on one GPU: its weights plus a KV cache that breathes with load."""
        return int(share * (0.93 + 0.05 * wave(t, 900, spec.busy_phase)))

    def gpu_util(self, index: int, working: float, t: float) -> int:
        """Utilisation of GPU ``index``: ``working`` is the level its busiest running holder drives it to
        (0 when nothing runs there, leaving only a flicker of idle noise)."""
        key = self._gpu_keys[index]
        if not working:
            return round(abs(smooth_noise(key, t / 5)))
        ph = phase_of(key)
        util = (
            working + 22 * wave(t, 180 + 13 * index, ph) + 8 * wave(t, 47, ph * 2) + 4 * smooth_noise(key, t)
        )
        return round(clamp(util, 0.0, 100.0))

    def hot_gpu_temperature(self, t: float) -> float | None:
        """The hot GPU's temperature with its holders running, as the log generator narrates it."""
        index = self.trouble.hot_gpu
        if index is None:
            return None
        working = max(
            (62.0 if a.role.name == "model-manager" else 34.0 for a, _ in self._holders[index]), default=0.0
        )
        return self.gpu_temperature(index, working, t)

    def gpus_at(self, t: float, gpu_states: Mapping[str, str]) -> tuple[Gpu, ...]:
        model = self.spec.gpu_model
        if model is None or self.spec.gpu_error:
            return ()
        gpus: list[Gpu] = []
        for index, holders in enumerate(self._holders):
            key = self._gpu_keys[index]
            processes: list[GpuProcess] = []
            working = 0.0
            for agent, share in holders:
                state = gpu_states.get(agent.id, "running")
                if state == "stopped":
                    continue  # a stopped agent has released its memory
                processes.append(
                    GpuProcess(
                        pid=agent.pid, used_memory=self.process_memory(agent, share, t), agent_id=agent.id
                    )
                )
                if state == "running":
                    working = max(working, 62.0 if agent.role.name == "model-manager" else 34.0)
            util = self.gpu_util(index, working, t)
            temp = self.gpu_temperature(index, working, t)
            mem_used = min(DRIVER_RESERVED + sum(p.used_memory or 0 for p in processes), model.mem_total)
            power = model.idle_power_w + (model.power_limit_w - model.idle_power_w) * 0.92 * (util / 100)
            gpus.append(
                Gpu(
                    index=index,
                    uuid=self._gpu_uuids[index],
                    name=model.name,
                    util_percent=float(util),
                    mem_total=model.mem_total,
                    mem_used=mem_used,
                    temperature_c=float(round(temp)),
                    power_w=round(clamp(power + 4 * smooth_noise(key + 3, t), 0.0, model.power_limit_w), 1),
                    power_limit_w=model.power_limit_w,
                    fan_percent=float(round(clamp(30 + (temp - 40) * 1.4, 30.0, 100.0))),
                    processes=tuple(processes),
                )
            )
        return tuple(gpus)


def _uuid(h: int) -> str:
    text = f"{h:016x}{(h * 0x9E3779B97F4A7C15) & ((1 << 64) - 1):016x}"
    return f"GPU-{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def _times(count: int) -> str:
    return "crashed once" if count == 1 else f"crashed {count} times"


def _with(agent: Agent, **changes: object) -> Agent:
    return msgspec.structs.replace(agent, **changes)
