"""``fleetdeck run``: start one agent command in its own process group and supervise it.

The supervisor is the agent's link to the store: it records pid and exit code, turns each stdout/stderr
line into a log record, measures CPU and RSS (children included), probes a health URL, restarts with
backoff when asked, and carries out the operator commands queued for the agent in the store:
pause = SIGSTOP to the group (through the freeze gate, so never inside a store transaction: freeze.py),
resume = SIGCONT, stop = SIGTERM, then SIGKILL after a grace period. A busy, locked, full or unreadable store
never takes the agent down: every write goes through a StoreLink that keeps the output and retries.

It needs no daemon: it is the process that ``fleetdeck run`` (or a dispatch) starts, and it can be started
detached so it outlives the console that asked for it. If the supervisor itself dies, the store still names
it (``supervisor_pid``) and readers mark the agent as orphaned rather than running forever.
"""

from __future__ import annotations

import os
import queue
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from backends.errors import BackendError, Conflict, Invalid
from backends.model import Kpi, LogLevel

from . import freeze, rollback_journal
from . import store_kpis as kpis_sql
from .loglines import KPIS_FIELD, OutputParser, kpis_of
from .metrics import ProcessSampler
from .schema import StoreError
from .store import LogTuple, Store
from .store_health import HEALTH_CHECK_FAILED, describe_exit
from .store_link import StoreLink

TICK_S = 0.25  # how often commands are taken and logs are flushed
HEARTBEAT_S = 2.0  # how often the agent's usage and liveness are written
PROBE_S = 5.0
BACKOFF_S = (1.0, 60.0)
STABLE_S = 30.0  # a run this long resets the restart backoff
READ_TAIL_S = 2.0  # after an exit, how long the last lines still in the pipes are waited for
MAX_QUEUED_LINES = 100_000  # read but not yet handed to the link: only grows while a store call blocks
MAX_LINE_BYTES = 1 << 16  # a longer run without a newline is cut into lines of this size (and kept short)


#: what ``fleetdeck run`` exits with when the command never ran, as shells, env(1) and timeout(1) do
EXIT_NOT_FOUND, EXIT_CANNOT_EXECUTE = 127, 126


class CannotStart(Exception):
    """The agent's command could not be started at all (no such file, not executable). The agent is
    recorded as failed with this reason; ``exit_code`` is 127 for a missing program, else 126."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class AgentSpec:
    name: str
    command: tuple[str, ...]
    workspace: Path | None = None
    restart: str = "no"  # no | on-failure
    health_url: str | None = None
    grace_s: float = 10.0
    labels: dict[str, str] | None = None


class Supervisor:
    def __init__(self, store: Store, spec: AgentSpec, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.spec = spec
        self.clock = clock
        self.link = StoreLink(store, spec.name, clock)
        self.gate = freeze.gate_path(store.path.parent, spec.name)
        # An interrupted rollback may hold this agent paused: say so in its log, with what to run.
        self.rollback_watch = rollback_journal.Watch(store.path.parent)
        self.sampler = ProcessSampler()
        # The readers never block on it: an agent must not stall on its own stdout because the store is slow.
        self.lines: queue.Queue[tuple[float, str, str]] = queue.Queue(MAX_QUEUED_LINES)
        self.unqueued = 0  # lines the readers could not queue: counted, then reported as dropped
        self._unqueued_lock = threading.Lock()
        self._showing_note = False
        self.process: subprocess.Popen[bytes] | None = None
        self.readers: list[threading.Thread] = []
        self.parser = OutputParser()
        self.kpis: list[Kpi] = []  # read from this tick's lines, written after them
        self.paused = False
        self.stop_requested = False
        self.signalled: str | None = (
            None  # set by a signal handler; acted on by the loop, never in the handler
        )
        self.health_error: str | None = None

    # --- the loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until the agent is done (or stopped); returns its last exit code (negative: killed by
        that signal). Conflict when the name is live under another supervisor, before anything runs;
        CannotStart when the command cannot be started."""
        self._claim()
        self._install_signal_handlers()
        backoff = BACKOFF_S[0]
        exit_code = 0
        while True:
            started = self.clock()
            try:
                self._start()
            except OSError as exc:
                self._failed_to_start(exc)
            exit_code = self._watch()
            self._finish_reading()
            self._drain_lines()
            if self.stop_requested:
                self.link.close_state("stopped", exit_code=exit_code, message="stopped")
                return exit_code
            if exit_code == 0 or self.spec.restart != "on-failure":
                state = "stopped" if exit_code == 0 else "failed"
                self.link.close_state(state, exit_code=exit_code, message=describe_exit(exit_code))
                return exit_code
            if self.clock() - started > STABLE_S:
                backoff = BACKOFF_S[0]
            self._system_log("warning", f"{describe_exit(exit_code)}; restarting in {backoff:.0f} s")
            self.link.set_state(
                "starting",
                exit_code=exit_code,
                message=f"{describe_exit(exit_code)}; restarting",
                restarts_increment=True,
            )
            if self._sleep_unless_stopped(backoff, describe_exit(exit_code)):
                self.link.close_state("stopped", exit_code=exit_code, message="stopped")
                return exit_code
            backoff = min(backoff * 2, BACKOFF_S[1])

    def _registration(self, pid: int | None) -> dict[str, Any]:
        spec = self.spec
        return {
            "kind": "process",
            "pid": pid,
            "supervisor_pid": os.getpid(),
            "workspace": str(spec.workspace) if spec.workspace else None,
            "command": list(spec.command),
            "labels": spec.labels,
            "restart": spec.restart,
            "health_url": spec.health_url,
        }

    def _claim(self) -> None:
        """Take the agent's name before its command runs: a name live under another supervisor is refused
        now, not found out once a second copy of the agent is already running. A store that is out does
        not keep the agent from starting (the link writes the row when the store answers)."""
        try:
            self.store.register_agent(self.spec.name, state="starting", **self._registration(None))
        except Conflict:
            raise
        except (StoreError, BackendError, OSError):
            pass

    def _failed_to_start(self, exc: OSError) -> None:
        """Record why the command never ran, in the agent's row and its log, and raise CannotStart."""
        program = self.spec.command[0]
        reason = f"cannot start {program!r}: {exc.strerror or exc}"
        self.link.register(state="failed", **self._registration(None))
        self._system_log("error", reason)
        self.link.close_state("failed", message=reason)
        code = EXIT_NOT_FOUND if isinstance(exc, FileNotFoundError) else EXIT_CANNOT_EXECUTE
        raise CannotStart(reason, code) from None

    def _start(self) -> None:
        spec = self.spec
        self.process = subprocess.Popen(
            spec.command,
            cwd=spec.workspace,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: signals reach its children too
            # every store write of the group is bracketed by its freeze gate (see freeze.py)
            env={**os.environ, **freeze.gate_env(self.store.path.parent, spec.name)},
        )
        self.paused = False
        self.parser = OutputParser()  # a traceback of the last run does not run on into this one
        assert self.process.stdout is not None and self.process.stderr is not None
        pipes = {"stdout": self.process.stdout, "stderr": self.process.stderr}
        reader = threading.Thread(target=self._read, args=(pipes,), name=f"read-{spec.name}", daemon=True)
        reader.start()
        self.readers = [reader]
        self.link.register(**self._registration(self.process.pid))
        self.link.set_state("running", message=f"pid {self.process.pid}")
        self._system_log("info", f"started pid {self.process.pid}: {' '.join(spec.command)}")

    def _watch(self) -> int:
        assert self.process is not None
        next_beat = next_probe = 0.0
        while True:
            code = self.process.poll()
            if code is not None:
                return code
            if self.signalled and not self.stop_requested:
                self._system_log("info", f"supervisor got {self.signalled}; stopping the agent")
                self.stop()
                continue
            self._take_commands()
            self._drain_lines()
            now = self.clock()
            if self.spec.health_url and now >= next_probe:
                self.health_error = probe(self.spec.health_url)
                next_probe = now + PROBE_S
            if now >= next_beat:
                self._heartbeat()
                next_beat = now + HEARTBEAT_S
            if notice := self.rollback_watch.poll():
                self._system_log("warning", notice)
            time.sleep(TICK_S)

    def _heartbeat(self) -> None:
        assert self.process is not None
        usage = self.sampler.sample(self.process.pid)
        state = "paused" if self.paused else "running"
        note = self.link.current_note()
        message = f"{HEALTH_CHECK_FAILED}: {self.health_error}" if self.health_error else note
        if message is None and self._showing_note:
            message = f"pid {self.process.pid}"  # the outage note has had its time: back to the usual
        self._showing_note = message is not None and message == note
        self.link.heartbeat(
            state=state,
            pid=self.process.pid,
            cpu_percent=usage.cpu_percent,
            rss_bytes=usage.rss_bytes,
            message=message,
        )

    # --- operator commands ---------------------------------------------------------------------------

    def _take_commands(self) -> None:
        for _, command in self.link.take_commands():
            if command == "pause":
                self._pause()
            elif command == "resume":
                self._signal(signal.SIGCONT)
                self.paused = False
                self.link.set_state("running", message="resumed")
                self._system_log("info", "resumed (SIGCONT to the process group)")
            elif command == "stop":
                self.stop()

    def _pause(self) -> None:
        assert self.process is not None
        try:
            freeze.freeze_group(self.process.pid, self.gate)
        except freeze.FreezeError as exc:
            self.link.set_state("running", message=f"pause failed: {exc}")
            self._system_log("warning", f"pause failed: {exc}")
            return
        self.paused = True
        self.link.set_state("paused", message="paused by operator")
        self._system_log("info", "paused (SIGSTOP to the process group, outside any store write)")

    def stop(self) -> None:
        """SIGTERM to the group (continued first, so a paused agent can act on it), SIGKILL after grace."""
        self.stop_requested = True
        if self.process is None or self.process.poll() is not None:
            return
        self.link.set_state("stopping", message="stopping")
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)
        try:
            self.process.wait(self.spec.grace_s)
        except subprocess.TimeoutExpired:
            self._system_log("warning", f"did not exit within {self.spec.grace_s:.0f} s of SIGTERM; SIGKILL")
            self._signal(signal.SIGKILL)
            self.process.wait()

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        with suppress(ProcessLookupError):  # already gone: the watch loop records the exit
            os.killpg(self.process.pid, signum)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, frame: Any) -> None:
            # only a flag: the store may be mid-transaction on this very thread
            self.signalled = signal.Signals(signum).name

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, on_signal)

    def _sleep_unless_stopped(self, seconds: float, why: str) -> bool:
        deadline = self.clock() + seconds
        while self.clock() < deadline:
            for _, command in self.link.take_commands():
                if command == "stop":
                    self.stop_requested = True
                else:  # the node refuses these now; one queued just before the exit is said, not dropped
                    self._system_log(
                        "warning", f"{command} not done: no process runs until the restart ({why})"
                    )
            if self.stop_requested or self.signalled:
                return True
            time.sleep(TICK_S)
        return False

    # --- logs ----------------------------------------------------------------------------------------

    def _read(self, pipes: dict[str, IO[bytes]]) -> None:
        """Read stdout and stderr in one thread, queueing each line as it is read, so the queue (and the
        log's seq) keeps the order the agent wrote them in: a line printed and flushed before a crash comes
        before the traceback. (Two readers would race each other to the queue.) Only when both pipes have
        something at the same wakeup is the order unknowable; stdout is read first then, since a program
        that flushed stdout and then wrote to stderr is the common case (a print, then a traceback)."""
        order = {"stdout": 0, "stderr": 1}
        pending = {stream: b"" for stream in pipes}
        with selectors.DefaultSelector() as selector:
            for stream, pipe in pipes.items():
                selector.register(pipe, selectors.EVENT_READ, stream)
            while selector.get_map():
                ready = sorted((key.data for key, _ in selector.select()), key=order.__getitem__)
                for stream in ready:
                    pipe = pipes[stream]
                    try:
                        chunk = os.read(pipe.fileno(), MAX_LINE_BYTES)
                    except OSError:
                        chunk = b""
                    if not chunk:  # the end of this pipe: its last line may lack a newline
                        selector.unregister(pipe)
                        pipe.close()
                        if pending[stream]:
                            self._queue_line(stream, pending.pop(stream))
                        continue
                    *lines, pending[stream] = (pending[stream] + chunk).split(b"\n")
                    for raw in lines:
                        self._queue_line(stream, raw + b"\n")
                    if len(pending[stream]) >= MAX_LINE_BYTES:
                        self._queue_line(stream, pending[stream])
                        pending[stream] = b""

    def _queue_line(self, stream: str, raw: bytes) -> None:
        try:
            self.lines.put_nowait((self.clock(), stream, raw.decode("utf-8", errors="replace")))
        except queue.Full:
            with self._unqueued_lock:
                self.unqueued += 1

    def _finish_reading(self) -> None:
        """Let the readers reach the end of the pipes before the exit is recorded: the last lines are often
        the ones that say why it ended. Bounded, because a grandchild may still hold a pipe open."""
        deadline = time.monotonic() + READ_TAIL_S
        for reader in self.readers:
            reader.join(max(0.0, deadline - time.monotonic()))

    def _drain_lines(self) -> None:
        batch: list[LogTuple] = []
        while True:
            try:
                ts, stream, line = self.lines.get_nowait()
            except queue.Empty:
                break
            level, message, fields = self.parser.parse(line, stream)
            batch.append((ts, level, self.spec.name, message, fields))
            if KPIS_FIELD in fields:
                self._kpis_of_line(ts, fields, batch)
        if self.unqueued:
            with self._unqueued_lock:
                lost, self.unqueued = self.unqueued, 0
            self.link.dropped += lost
        self.link.log(batch)  # also retries what an outage kept, when there is nothing new
        if self.kpis:
            self.link.record_kpis(self.kpis)
            self.kpis = []

    def _kpis_of_line(self, ts: float, fields: dict[str, Any], batch: list[LogTuple]) -> None:
        """Take the KPI figures a JSON line carries, measured when the line was read. A figure the wire
        model refuses is left out and named in a warning line after it; the line itself is logged as is."""
        figures, problems = kpis_of(fields)
        for name, given in figures.items():
            try:
                self.kpis.extend(kpis_sql.prepare({name: given}, ts, at=ts, kinds=None))
            except Invalid as exc:
                problems.append(str(exc))
        for problem in problems:
            batch.append(
                (
                    ts,
                    "warning",
                    self.spec.name,
                    f"[fleetdeck] KPI not recorded: {problem}",
                    {"supervisor": True},
                )
            )

    def _system_log(self, level: LogLevel, message: str) -> None:
        self.link.log([(self.clock(), level, self.spec.name, f"[fleetdeck] {message}", {"supervisor": True})])


def exit_status(code: int) -> int:
    """The exit status ``fleetdeck run`` passes on: the agent's own, or 128+N when signal N ended it (143
    after a stop's SIGTERM, 137 after SIGKILL), as a shell reports a killed command."""
    return 128 - code if code < 0 else code


def probe(url: str, timeout_s: float = 2.0) -> str | None:
    """None when the health URL answers 2xx/3xx, else the reason in a few words."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code >= 400:
        return f"HTTP {response.status_code}"
    return None


def spawn_detached(state_dir: Path, spec: AgentSpec, python: str) -> int:
    """Start a supervisor for ``spec`` that outlives the caller (its own session, no inherited pipes)."""
    argv = [python, "-m", "backends.local.run_agent", "--state-dir", str(state_dir), "--name", spec.name]
    argv += ["--restart", spec.restart, "--grace", str(spec.grace_s)]
    if spec.workspace:
        argv += ["--workspace", str(spec.workspace)]
    if spec.health_url:
        argv += ["--health-url", spec.health_url]
    argv += ["--", *spec.command]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=spec.workspace or None,
    )
    # A long-lived dispatcher (the node server, the console) must reap what it started, or every ended
    # supervisor stays a zombie until it exits. One small thread per supervisor waits for it.
    threading.Thread(target=process.wait, name=f"reap-{spec.name}", daemon=True).start()
    return process.pid
