"""A Ray cluster's logs as fleetdeck log records: every submitted job's driver log and every actor's worker
files, each line once, in order, numbered by a seq that survives restarts (``log_store.py``).

Which files (``log_sources.py``): the jobs of ``GET /api/jobs/`` and the actors of ``GET /api/v0/actors``.

How they are read (Ray's HTTP API has no "from this offset"):

* **Following** (``records(follow=True)``): one ``GET /api/v0/logs/stream`` per file that is still being
  written (Ray's own follow: the dashboard agent sends each new block as it is written), at most
  ``max_streams`` at once, jobs before actors (a living actor's stream never ends); a file that gets no
  stream is read whole every :data:`OVERFLOW_EVERY_S`, and that is said once. A stream sends only what is
  new, so a poll never downloads a log again; only a stream that broke is opened again from the top, its
  lines up to the file's cursor skipped. A file whose job or actor is over is read on until it has been
  quiet for two intervals; then its last :data:`TAIL_LINES` lines are asked for, and only if they are what
  the stream read last is the file finished (a stalled stream is not taken for the end: the file is read
  whole instead).
* **Once** (``records(follow=False)``, and a file that ended before anyone followed it): the whole file,
  ``GET /api/jobs/{id}/logs`` or ``GET /api/v0/logs/file``; a finished file is never asked for again.

A job's status changes are records too (``job X FAILED: <why>``), written after the job's last line, so a
follower sees a job end after its output. A line of a driver's log that is Ray's copy of an actor's output
(``(Printer pid=7681) ...``) is left out there when that actor's own file is read, so it is shown once,
under the actor.

What a follower is told: lines past its cursor in seq order; where retention dropped lines it had not yet
read, one warning record saying how many (seq a-b). While the dashboard cannot be reached, following goes
on retrying (every poll, with backoff up to 30 s) and says so once, in a warning record, and once more when
it answers again: a brief outage loses nothing, since every file resumes from its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from backends.errors import AuthFailed, BackendError, Forbidden, NotFound, TimedOut, Unreachable
from backends.model import TIME_FIELD, LogLevel, LogRecord

from .client import RayClient
from .log_lines import FETCHED, SourceReader, is_marker
from .log_sources import LogFile, actor_files, job_files
from .log_store import LogStore, NewLine

Sleep = Callable[[float], Awaitable[None]]
READ_BATCH = 2000  # records handed to a follower per store read
ACTORS_EVERY_S = 5.0  # the actor list (a heavy state-API call) is asked for at most this often
TAIL_LINES = 64  # how many last lines of an ended file are compared with what its stream read
OVERFLOW_EVERY_S = 10.0  # a file being written that has no stream of its own is read whole this often
FETCH_AT_ONCE = 4  # whole-file fetches in flight at once
MAX_BACKOFF_S = 30.0
_MEND_LATER = (Unreachable, TimedOut, NotFound)  # a retry mends these; AuthFailed and Forbidden it does not


class ClusterLogs:
    def __init__(
        self,
        client: RayClient,
        *,
        state_dir: Path,
        clock: Callable[[], float],
        sleep: Sleep,
        poll_s: float,
        max_jobs: int,
        max_streams: int = 16,
        url: str = "",
    ) -> None:
        self._client = client
        self._state_dir = state_dir
        self._clock = clock
        self._sleep = sleep
        self._poll_s = poll_s
        self._max_jobs = max_jobs
        self._max_streams = max_streams
        self._url = url
        self._store: LogStore | None = None
        self._store_lock = asyncio.Lock()
        self._catch_up_lock = asyncio.Lock()  # two one-shot reads of one backend read each file once
        self._fetches = asyncio.Semaphore(FETCH_AT_ONCE)
        self._changed = asyncio.Condition()
        self._followers = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._streams: dict[str, _Stream] = {}
        self._fatal: BackendError | None = None
        self._retry_at: dict[str, tuple[float, int]] = {}  # a failed stream's next try, and its failures
        self._actors: tuple[float, list[LogFile], frozenset[int]] | None = None
        self._overflow_read: dict[str, float] = {}  # when each file without a stream was last read whole
        self._told_overflow = False
        self._pending_notices: list[str] = []
        self._notice_key = f"notice:{uuid.uuid4().hex}"
        self._notices = 0

    # --- what a reader gets --------------------------------------------------------------------------------

    async def records(self, since_seq: int, follow: bool) -> AsyncIterator[LogRecord]:
        store = await self._open_store()
        if not follow:
            await self.catch_up()
        else:
            self._start_following()
        cursor = since_seq
        try:
            while True:
                if self._fatal is not None:
                    raise self._fatal
                batch = await asyncio.to_thread(store.after, cursor, READ_BATCH)
                for record in batch:
                    if cursor > 0 and record.seq > cursor + 1:
                        yield self._gap(cursor, record.seq)
                    cursor = record.seq
                    yield record
                if len(batch) == READ_BATCH:
                    continue
                if not follow:
                    return
                async with self._changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), self._poll_s)
        finally:
            if follow:
                self._stop_following()

    def _gap(self, cursor: int, seq: int) -> LogRecord:
        missed = seq - cursor - 1
        lines = "line" if missed == 1 else "lines"
        return LogRecord(
            seq=seq - 1,
            ts=self._clock(),
            level="warning",
            source="node",
            message=(
                f"{missed} log {lines} (seq {cursor + 1}–{seq - 1}) had already been dropped by the node's "
                "retention before they could be read"
            ),
            fields={"gap": missed},
        )

    async def _open_store(self) -> LogStore:
        async with self._store_lock:
            if self._store is None:
                self._store = await asyncio.to_thread(LogStore, self._state_dir)
            return self._store

    async def close(self) -> None:
        for stream in list(self._streams.values()):
            stream.task.cancel()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
        self._supervisor = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- reading every file once ---------------------------------------------------------------------------

    async def catch_up(self) -> None:
        """Read every unfinished file whole, once; raises when the dashboard cannot be read."""
        store = await self._open_store()
        async with self._catch_up_lock:
            files, actor_pids = await self._files(fresh=True)
            cursors = await asyncio.to_thread(store.lines_in, [f.key for f in files])
            todo = [f for f in files if not cursors.get(f.key, (0, False))[1]]
            await asyncio.gather(*(self._read_whole(f, actor_pids) for f in todo))
            await self._add_statuses(files)
        await self._announce()

    async def _read_whole(self, file: LogFile, actor_pids: frozenset[int]) -> None:
        async with self._fetches:
            try:
                text = await self._fetch_whole(file)
            except NotFound:
                return  # deleted, or not written yet: asked again next time
        pieces = text.split("\n")
        complete = pieces if file.over else pieces[:-1]  # the last piece is a line still being written
        if complete and complete[-1] == "":
            complete = complete[:-1]
        await self._keep(file, complete, 0, actor_pids, finished=file.over)
        if file.over:
            await self._add_statuses([file])  # right after its last line

    async def _fetch_whole(self, file: LogFile) -> str:
        if file.job_id is not None:
            answer = await self._client.get_json(f"/api/jobs/{quote(file.job_id, safe='')}/logs")
            text = answer.get("logs") if isinstance(answer, dict) else None
            return str(text or "")
        return await self._client.get_text("/api/v0/logs/file", {**file.params, "lines": -1})

    async def _keep(
        self,
        file: LogFile,
        lines: list[str],
        first_line: int,
        actor_pids: frozenset[int],
        *,
        finished: bool,
        reader: SourceReader | None = None,
    ) -> None:
        """Offer ``lines`` (numbered from ``first_line`` in their file) to the store."""
        store = await self._open_store()
        reader = reader or SourceReader()
        now = self._clock()
        offered: list[NewLine] = []
        for number, raw in enumerate(lines, start=first_line):
            if file.worker_file and number < 3 and is_marker(raw):
                continue
            read = reader.read(raw)
            if file.job_id is not None and read.worker_pid in actor_pids:
                continue  # an actor's line, shown once: from the actor's own file
            fields = dict(file.fields)
            if read.worker_pid is not None:
                fields.update(worker=read.worker, pid=read.worker_pid)
            if read.ts is None:
                fields[TIME_FIELD] = FETCHED
            offered.append(
                NewLine(
                    line=number,
                    ts=read.ts if read.ts is not None else now,
                    level=read.level,
                    source=file.owner,
                    message=read.message,
                    fields=fields,
                )
            )
        # the cursor moves past every line looked at, those left out included
        upto = first_line + len(lines)
        added = await asyncio.to_thread(store.add, file.key, offered, finished=finished, upto=upto)
        if added or finished:
            await self._announce()

    async def _add_statuses(self, files: list[LogFile]) -> None:
        store = await self._open_store()
        cursors = await asyncio.to_thread(store.lines_in, [f.key for f in files if f.job_id])
        for file in files:
            if file.status is None:
                continue
            final = file.over
            if final and not cursors.get(file.key, (0, False))[1]:
                continue  # told once the job's last lines are in
            status_line = NewLine(
                line=file.status_rank,
                ts=file.status_at or self._clock(),
                level=file.status_level,
                source=file.owner,
                message=file.status,
                fields={**file.fields, "status": file.status_word},
            )
            await asyncio.to_thread(store.add, f"{file.key}:status", [status_line], upto=file.status_rank + 1)

    async def _announce(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- following -----------------------------------------------------------------------------------------

    def _start_following(self) -> None:
        self._followers += 1
        if self._supervisor is None or self._supervisor.done():
            self._fatal = None
            self._supervisor = asyncio.create_task(self._supervise(), name="ray-log-supervisor")

    def _stop_following(self) -> None:
        self._followers -= 1
        if self._followers > 0:
            return
        for stream in list(self._streams.values()):
            stream.task.cancel()
        self._streams.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None

    async def _supervise(self) -> None:
        failures = 0
        down_since: float | None = None
        while True:
            try:
                await self._follow_round()
            except _MEND_LATER as exc:
                failures += 1
                if down_since is None:
                    down_since = time.monotonic()
                    await self._notice(
                        "warning",
                        f"the Ray dashboard {self._url} cannot be read ({exc}); retrying, and every log "
                        "file will be read on from where it was",
                    )
                await self._sleep(min(MAX_BACKOFF_S, self._poll_s * 2 ** min(failures, 6)))
                continue
            except (AuthFailed, Forbidden) as exc:
                self._fatal = exc
                await self._announce()
                return
            except BackendError:  # the store cannot be written (a full disk): nothing is lost,
                failures += 1  # the cursors did not move, so the lines are read again once it can
                if down_since is None:
                    down_since = time.monotonic()
                await self._sleep(min(MAX_BACKOFF_S, self._poll_s * 2 ** min(failures, 6)))
                continue
            while self._pending_notices:
                await self._notice("warning", self._pending_notices.pop(0))
            if down_since is not None:
                away = time.monotonic() - down_since
                await self._notice("info", f"the Ray dashboard answers again after {away:.0f} s")
                failures, down_since = 0, None
            await self._sleep(self._poll_s)

    async def _follow_round(self) -> None:
        store = await self._open_store()
        files, actor_pids = await self._files(fresh=False)
        cursors = await asyncio.to_thread(store.lines_in, [f.key for f in files])
        now = time.monotonic()
        self._reap_streams(now)
        once: list[LogFile] = []
        live: list[LogFile] = []
        for file in files:
            kept, finished = cursors.get(file.key, (0, False))
            if stream := self._streams.get(file.key):
                stream.file, stream.actor_pids = file, actor_pids  # it may have ended since
            elif finished:
                continue
            elif file.over and (kept == 0 or not file.followable):
                once.append(file)  # ended before anyone followed it: its whole file, once
            elif file.followable and self._retry_at.get(file.key, (0.0, 0))[0] <= now:
                live.append(file)
        once += self._give_out_streams(live, cursors, actor_pids, now)
        await asyncio.gather(*(self._read_whole(f, actor_pids) for f in once))
        await self._add_statuses(files)

    def _give_out_streams(
        self,
        live: list[LogFile],
        cursors: dict[str, tuple[int, bool]],
        actor_pids: frozenset[int],
        now: float,
    ) -> list[LogFile]:
        """Streams for the files still being written, jobs before actors (a living actor's stream never
        ends: without this, eight actors would keep every new job waiting). A job may take an actor's
        stream; what gets none is read whole every :data:`OVERFLOW_EVERY_S` instead. Returns those due."""
        for file in sorted(live, key=lambda f: f.job_id is None):
            if len(self._streams) >= self._max_streams and file.job_id is not None:
                actor_streams = [k for k, st in self._streams.items() if st.file.job_id is None]
                if actor_streams:
                    self._streams.pop(actor_streams[-1]).task.cancel()  # read whole from now on
            if len(self._streams) < self._max_streams:
                self._streams[file.key] = _Stream(
                    self, file, cursors.get(file.key, (0, False))[0], actor_pids
                )
        waiting = [f for f in live if f.key not in self._streams]
        if waiting and not self._told_overflow:
            self._told_overflow = True
            self._pending_notices.append(
                f"{len(waiting)} log files are still being written beyond the {self._max_streams} followed "
                f"live (option max_log_streams): they are read whole every {OVERFLOW_EVERY_S:.0f} s"
            )
        due = [f for f in waiting if now - self._overflow_read.get(f.key, 0.0) >= OVERFLOW_EVERY_S]
        for file in due:
            self._overflow_read[file.key] = now
        return due

    def _reap_streams(self, now: float) -> None:
        for key, stream in list(self._streams.items()):
            if not stream.task.done():
                continue
            del self._streams[key]
            problem = None if stream.task.cancelled() else stream.task.exception()
            if isinstance(problem, (AuthFailed, Forbidden)):
                raise problem
            if problem is None:
                self._retry_at.pop(key, None)
            else:  # e.g. an actor's file not written yet: asked again later, less and less often
                failures = self._retry_at.get(key, (0.0, 0))[1] + 1
                self._retry_at[key] = (now + min(MAX_BACKOFF_S, self._poll_s * 2**failures), failures)

    async def _files(self, *, fresh: bool) -> tuple[list[LogFile], frozenset[int]]:
        """Every job's file (asked each time) and the actors' (at most every :data:`ACTORS_EVERY_S`
        unless ``fresh``)."""
        now = time.monotonic()
        cached = self._actors
        if fresh or cached is None or now - cached[0] >= max(ACTORS_EVERY_S, self._poll_s):
            jobs, (actors, pids) = await asyncio.gather(
                job_files(self._client, max_jobs=self._max_jobs), actor_files(self._client)
            )
            self._actors = (now, actors, pids)
        else:
            jobs = await job_files(self._client, max_jobs=self._max_jobs)
            actors, pids = cached[1], cached[2]
        return jobs + actors, pids

    async def _notice(self, level: LogLevel, message: str) -> None:
        store = await self._open_store()
        line = NewLine(
            line=self._notices, ts=self._clock(), level=level, source="node", message=message, fields={}
        )
        self._notices += 1
        with contextlib.suppress(BackendError):
            await asyncio.to_thread(store.add, self._notice_key, [line], upto=self._notices)
        await self._announce()


class _Stream:
    """One followed file: ``GET /api/v0/logs/stream`` from the top, lines up to the cursor skipped."""

    def __init__(self, logs: ClusterLogs, file: LogFile, kept: int, actor_pids: frozenset[int]) -> None:
        self.logs = logs
        self.file = file
        self.kept = kept
        self.actor_pids = actor_pids
        self.task = asyncio.create_task(self._run(), name=f"ray-log {file.key}")

    async def _run(self) -> None:
        logs = self.logs
        params = {**self.file.params, "lines": -1, "interval": logs._poll_s}
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        reader = SourceReader()
        number = 0  # the file's line the next complete line is
        pending = ""
        ended = False
        recent: deque[str] = deque(maxlen=TAIL_LINES)  # the last complete lines, to check the end by
        async with logs._client.stream_text("/api/v0/logs/stream", params) as chunks:
            pump = asyncio.create_task(_pump(chunks, queue))
            try:
                while True:
                    quiet = 2 * logs._poll_s if self.file.over else logs._poll_s * 5
                    try:
                        chunk = await asyncio.wait_for(queue.get(), quiet)
                    except TimeoutError:
                        if self.file.over:
                            ended = True
                            break  # ended, and nothing more came: the file is read to its end
                        continue
                    if chunk is None:
                        ended = self.file.over  # Ray ended the stream: the end, if the file is over
                        break
                    if isinstance(chunk, BaseException):
                        raise chunk  # inside the stream's block, so a transport error is told in words
                    pieces = (pending + chunk).split("\n")
                    pending = pieces.pop()
                    recent.extend(pieces)
                    skip = min(len(pieces), max(0, self.kept - number))
                    for raw in pieces[:skip]:
                        reader.read(raw)  # already kept: they still move the traceback state along
                    fresh, first = pieces[skip:], number + skip
                    number += len(pieces)
                    if fresh:
                        await logs._keep(
                            self.file, fresh, first, self.actor_pids, finished=False, reader=reader
                        )
                        self.kept = max(self.kept, first + len(fresh))
            finally:
                pump.cancel()
        if not (self.file.over and ended):
            return
        # Quiet after its job or actor ended is only likely the end: a stream can also stall. Ray is
        # asked for the file's last lines; only if they are what this stream read last is the file
        # complete (its last line, without a newline, included). Otherwise it is read whole once.
        try:
            tail = await logs._client.get_text("/api/v0/logs/file", {**self.file.params, "lines": TAIL_LINES})
        except BackendError:
            tail = None
        mine = "".join(line + "\n" for line in recent) + pending
        if tail is not None and (mine.endswith(tail) if tail else not mine):
            last = [pending] if pending else []
            await logs._keep(self.file, last, number, self.actor_pids, finished=True, reader=reader)
            await logs._add_statuses([self.file])
        else:
            await logs._read_whole(self.file, self.actor_pids)


async def _pump(chunks: AsyncIterator[str], queue: asyncio.Queue[str | BaseException | None]) -> None:
    """Hands a stream's chunks over through a queue, so the reader can wait with a timeout without
    cancelling a read in the middle of the stream; a failure is handed over too, not swallowed."""
    try:
        async for chunk in chunks:
            await queue.put(chunk)
    except Exception as exc:
        await queue.put(exc)
        return
    await queue.put(None)
