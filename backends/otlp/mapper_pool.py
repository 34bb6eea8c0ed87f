"""Decoding and mapping export requests in processes of their own.

Reading a request (protobuf or JSON, gzip) and mapping it onto agents, figures and encoded log lines is
two thirds of what a request costs, and it needs no memory across requests: it runs in ``workers``
processes, so the one thread that keeps the receiver's windows and writes the store has a core of its own.
What comes back is a small ``Batch`` of plain values (log lines already JSON), cheap to pickle.

With no worker (a machine with one core, or ``workers=0``) the same work runs on a thread. A worker that
dies (killed, out of memory) costs the requests it held: they are answered 503, the exporter retries, and
the pool is started again for the next request.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .mapping import MAPPERS, Batch
from .wire import Signal, decode

PARENT_CHECK_S = 1.0


class MapperLost(RuntimeError):
    """A mapper process ended while it held the request: nothing of it was kept."""


def default_workers() -> int:
    """One mapper process where this process may use two cores or more; none (a thread) on one core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores > 1 else 0


def map_body(
    signal_name: Signal, body: bytes, content_type: str | None, content_encoding: str | None, now: float
) -> Batch:
    """Decode one export request and map it (BodyError when it cannot be read)."""
    return MAPPERS[signal_name](decode(signal_name, body, content_type, content_encoding).request, now)


def _ready() -> bool:
    return True


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group; the receiver stops its mappers itself, so they take no
    # SIGINT of their own (and print no KeyboardInterrupt traceback over the operator's terminal).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A receiver killed outright (SIGKILL, the OOM killer) cannot stop its mappers, and one waiting for
    # work would wait for ever: each watches that its parent is still the one that started it.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), name="otlp-map-parent", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


class MapperPool:
    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self._executor: Executor = self._new_executor()

    def _new_executor(self) -> Executor:
        if self.workers <= 0:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="otlp-map")
        import multiprocessing

        # spawn, not fork: the receiver has threads (the store writer, the event loop's) that a fork
        # would copy in whatever state they were
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker)

    async def start(self) -> None:
        """Start the mappers now, not on the first request (a spawned process takes a moment to import)."""
        await asyncio.wrap_future(self._executor.submit(_ready))

    async def map(
        self,
        signal_name: Signal,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
        now: float,
    ) -> Batch:
        executor = self._executor
        try:
            future = executor.submit(map_body, signal_name, body, content_type, content_encoding, now)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            if self._executor is executor:  # the first request to hear of it starts a new pool
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            raise MapperLost(f"a mapper process ended ({exc})") from None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
