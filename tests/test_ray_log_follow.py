"""Following a Ray cluster's logs against a dashboard stand-in that behaves like Ray's where it matters: a
job's driver log grows while it is followed, ``/api/v0/logs/stream`` sends the file from the top and then
each new block as it is written (no keepalive bytes, headers only with the first block, as Ray's agent
does), and the dashboard can go away and come back on the same port. Served by a real uvicorn; the
follower is a real RayBackend. The same behaviour against a real Ray head is in tests/ray/test_ray_logs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from backends.model import LogRecord
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.settings import RayOptions
from tests.ray_dashboard import recorded
from tests.serving import serve_asgi

POLL_S = 0.1
WAIT_S = 30.0  # the longest any one awaited thing may take before the test gives up on it
NODE_ID = "eb8f34d4138da9997bcc6792827662683e3d7363416c8e2786207630"  # the recorded head's
BLOCK = 1 << 16  # Ray's agent reads and sends a file in blocks of this size
RAY_MESSAGES = {  # what Ray 2.60 says of a job in each state (tests/data/ray/jobs.json)
    "RUNNING": "Job is currently running.",
    "SUCCEEDED": "Job finished successfully.",
    "STOPPED": "Job was intentionally stopped.",
}


# --- the stand-in ----------------------------------------------------------------------------------------


@dataclass
class Job:
    ident: str
    number: int
    text: bytearray = field(default_factory=bytearray)
    status: str = "RUNNING"
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    end_ms: int | None = None

    def listing(self) -> dict[str, Any]:
        return {
            "type": "SUBMISSION",
            "job_id": f"{self.number:02x}000000",
            "submission_id": self.ident,
            "driver_info": None,
            "status": self.status,
            "entrypoint": f"python {self.ident}.py",
            "message": RAY_MESSAGES.get(self.status, ""),
            "error_type": None,
            "start_time": self.start_ms,
            "end_time": self.end_ms,
            "metadata": None,
            "runtime_env": None,
            "driver_agent_http_address": "http://192.0.2.2:26381",
            "driver_node_id": NODE_ID,
            "driver_exit_code": 0 if self.end_ms else None,
        }


class StandIn:
    """The jobs and actors of a pretend cluster, and a Starlette app that serves them as Ray's dashboard
    does. The test "writes" a job's log with :meth:`write`; ``sent`` counts the bytes served per route and
    file, e.g. ``sent["stream", "job-a"]``."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.actors: list[dict[str, Any]] = []
        self.actor_files: dict[tuple[str, str], bytearray] = {}
        self.sent: Counter[tuple[str, str]] = Counter()
        self.down = False  # set while the server shuts down: its streams are cut, as in a crash
        self.stall_s = 0.0  # a busy dashboard: the pause in each stream after its first block
        self._lock = threading.Lock()

    # what the test does to the cluster

    def add_job(self, ident: str) -> Job:
        with self._lock:
            job = self.jobs[ident] = Job(ident, len(self.jobs) + 2)
            return job

    def write(self, ident: str, text: str) -> None:
        with self._lock:
            self.jobs[ident].text += text.encode()

    def end(self, ident: str, status: str = "SUCCEEDED") -> None:
        with self._lock:
            job = self.jobs[ident]
            job.status, job.end_ms = status, int(time.time() * 1000)

    def add_actor(self, name: str, pid: int) -> str:
        ident = f"{pid:024x}02000000"
        with self._lock:
            self.actors.append(
                {
                    "actor_id": ident,
                    "class_name": "Worker",
                    "state": "ALIVE",
                    "job_id": "02000000",
                    "name": name,
                    "node_id": NODE_ID,
                    "pid": pid,
                    "ray_namespace": "fleet",
                    "required_resources": {"CPU": 1.0},
                    "is_detached": True,
                    "end_time": None,
                }
            )
            for suffix in ("out", "err"):  # Ray's markers open both of a worker's files
                self.actor_files[ident, suffix] = bytearray(
                    f":job_id:02000000\n:actor_name:{name}\n".encode()
                )
        return ident

    def log_text(self, ident: str) -> bytes:
        with self._lock:
            return bytes(self.jobs[ident].text)

    # the dashboard

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/version", lambda _: JSONResponse(recorded("version"))),
                Route("/api/authentication_mode", lambda _: JSONResponse(recorded("authentication_mode"))),
                Route("/api/jobs/", self.job_list),
                Route("/api/jobs/{ident}/logs", self.job_logs),
                Route("/api/v0/actors", self.actor_list),
                Route("/api/v0/logs/file", self.log_file),
                Route("/api/v0/logs/stream", self.log_stream),
            ]
        )

    async def job_list(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse([job.listing() for job in self.jobs.values()])

    async def job_logs(self, request: Request) -> Response:
        ident = request.path_params["ident"]
        if ident not in self.jobs:
            return PlainTextResponse(f"Job {ident} does not exist", 404)
        response = JSONResponse({"logs": self.log_text(ident).decode()})
        self.sent["logs", ident] += len(response.body)
        return response

    async def actor_list(self, request: Request) -> Response:
        with self._lock:
            rows = [dict(a) for a in self.actors]
        return JSONResponse(
            {
                "result": True,
                "msg": "",
                "data": {"result": {"total": len(rows), "num_after_truncation": len(rows), "result": rows}},
            }
        )

    def _file(self, request: Request) -> tuple[str, Callable[[], bytes]] | None:
        query = request.query_params
        if (ident := query.get("submission_id")) and ident in self.jobs:
            return ident, lambda: self.log_text(ident)
        key = (query.get("actor_id") or "", query.get("suffix") or "out")
        if key in self.actor_files:
            return ":".join(key), lambda: bytes(self.actor_files[key])
        return None

    async def log_file(self, request: Request) -> Response:
        found = self._file(request)
        if found is None:
            return PlainTextResponse("no such log file", 404)
        body = found[1]()
        lines = int(request.query_params.get("lines") or 1000)
        if lines != -1:  # as Ray tails: the last N lines, a last line without its newline one of them
            body = b"".join(body.splitlines(keepends=True)[-lines:])
        self.sent["file", found[0]] += len(body)
        return Response(body, media_type="text/plain")

    async def log_stream(self, request: Request) -> Response:
        found = self._file(request)
        if found is None:
            return PlainTextResponse("no such log file", 500)
        interval = float(request.query_params.get("interval") or 1.0)
        return _AgentStream(self, found[0], found[1], interval)  # type: ignore[return-value]


class _AgentStream:
    """Ray's ``/api/v0/logs/stream``: the file from its start, block by block, then every ``interval`` what
    was written since. Ray sends its headers only with the first block, and never a keepalive."""

    def __init__(self, stand_in: StandIn, name: str, read: Callable[[], bytes], interval: float) -> None:
        self.stand_in, self.name, self.read, self.interval = stand_in, name, read, interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen())
        started = False
        offset = 0
        try:
            while not gone.is_set():
                if self.stand_in.down:
                    return  # cut off without the stream's end: the client sees a broken connection
                text = self.read()
                if len(text) <= offset:
                    await asyncio.sleep(min(self.interval, POLL_S))
                    continue
                block = text[offset : offset + BLOCK]
                if not started:
                    headers = [(b"content-type", b"text/plain")]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    started = True
                await send({"type": "http.response.body", "body": block, "more_body": True})
                self.stand_in.sent["stream", self.name] += len(block)
                if offset == 0 and self.stand_in.stall_s:
                    await asyncio.sleep(self.stand_in.stall_s)
                offset += len(block)
        finally:
            listener.cancel()


class Dashboard:
    """The stand-in served by a real uvicorn, which can be stopped and served again on the same port."""

    def __init__(self, stand_in: StandIn) -> None:
        self.stand_in = stand_in
        self.port = 0
        self.url = ""
        self._served: contextlib.AbstractContextManager[str] | None = None

    async def start(self) -> str:
        self.stand_in.down = False
        served = serve_asgi(self.stand_in.app(), port=self.port, graceful_s=1)
        for attempt in range(40):  # a port just left may take a moment to be bound again
            try:
                self.url = await asyncio.to_thread(served.__enter__)
                break
            except OSError:
                if attempt == 39:
                    raise
                served = serve_asgi(self.stand_in.app(), port=self.port, graceful_s=1)
                await asyncio.sleep(0.05)
        self._served = served
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    async def stop(self) -> None:
        self.stand_in.down = True
        served, self._served = self._served, None
        if served is not None:
            await asyncio.to_thread(served.__exit__, None, None, None)


def make(url: str, state_dir: Path) -> RayBackend:
    options = RayOptions(url=url, options={"state_dir": str(state_dir), "log_poll_s": POLL_S})
    node = NodeSettings(name="cluster", backend_options=options)
    return RayBackend.from_config(node, clock=time.time)


class Follower:
    """``backend.logs(follow=True)`` read in the background, as ``fleetdeck logs --follow`` reads it."""

    def __init__(self, backend: RayBackend, since_seq: int = 0) -> None:
        self.records: list[LogRecord] = []
        self._backend = backend
        self._since = since_seq
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self._backend.logs(self._since, follow=True):
            self.records.append(record)

    async def until(
        self, check: Callable[[list[LogRecord]], bool], what: str, wait_s: float = WAIT_S
    ) -> list[LogRecord]:
        deadline = time.monotonic() + wait_s
        while not check(self.records):
            if self.task.done():
                self.task.result()  # the follower's own failure, if it raised
                raise AssertionError(f"the follower ended before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}")
            await asyncio.sleep(0.02)
        return self.records

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@dataclass
class Cluster:
    stand_in: StandIn
    dashboard: Dashboard
    backend: RayBackend
    state_dir: Path


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    stand_in = StandIn()
    dashboard = Dashboard(stand_in)
    url = await dashboard.start()
    backend = make(url, tmp_path / "ray")
    try:
        yield Cluster(stand_in, dashboard, backend, tmp_path / "ray")
    finally:
        await backend.close()
        await dashboard.stop()


@contextlib.asynccontextmanager
async def following(backend: RayBackend, since_seq: int = 0) -> AsyncIterator[Follower]:
    follower = Follower(backend, since_seq)
    try:
        yield follower
    finally:
        await follower.stop()


def lines_of(records: list[LogRecord], job: str) -> list[str]:
    """The job's own lines, in the order handed out (its status records left out)."""
    return [r.message for r in records if r.source == job and "status" not in r.fields]


def status_of(records: list[LogRecord], job: str) -> list[LogRecord]:
    return [r for r in records if r.source == job and "status" in r.fields]


def ended(job: str) -> Callable[[list[LogRecord]], bool]:
    return lambda records: any(r.fields["status"] in ("SUCCEEDED", "FAILED") for r in status_of(records, job))


def numbered(name: str, start: int, count: int) -> str:
    return "".join(f"{name} {i:05d}\n" for i in range(start, start + count))


def expected(name: str, count: int) -> list[str]:
    return [f"{name} {i:05d}" for i in range(count)]


def assert_seqs_increase(records: list[LogRecord]) -> None:
    seqs = [r.seq for r in records]
    assert seqs == sorted(set(seqs)), "every record once, in seq order"


# --- the tests -------------------------------------------------------------------------------------------


async def test_a_follower_fetches_only_what_is_new_and_sees_the_job_end_after_its_last_line(
    cluster: Cluster,
) -> None:
    stand_in, job, polls = cluster.stand_in, "grower", 12
    stand_in.add_job(job)
    async with following(cluster.backend) as follower:
        for poll in range(polls):
            stand_in.write(job, numbered("line", poll * 50, 50))
            count = (poll + 1) * 50
            await follower.until(lambda r, n=count: len(lines_of(r, job)) >= n, f"{count} lines are read")
        stand_in.write(job, "the last words, with no newline")
        stand_in.end(job)
        records = await follower.until(ended(job), "the job's end is told")
    assert_seqs_increase(records)
    assert lines_of(records, job) == [*expected("line", polls * 50), "the last words, with no newline"]
    last_line = next(r for r in records if r.message == "the last words, with no newline")
    final = status_of(records, job)[-1]
    assert final.message.startswith(f"job {job} SUCCEEDED") and final.seq > last_line.seq
    size = len(stand_in.log_text(job))
    served = stand_in.sent["stream", job] + stand_in.sent["logs", job]
    assert served <= 1.3 * size, f"{served} bytes served for a log of {size}"


async def test_a_brief_outage_is_told_and_loses_nothing(cluster: Cluster) -> None:
    stand_in, job = cluster.stand_in, "steady"
    stand_in.add_job(job)
    stand_in.write(job, numbered("line", 0, 20))
    async with following(cluster.backend) as follower:
        await follower.until(lambda r: len(lines_of(r, job)) >= 20, "the first 20 lines are read")
        await cluster.dashboard.stop()
        stand_in.write(job, numbered("line", 20, 30))  # the job goes on while the dashboard is away

        def told(level: str) -> Callable[[list[LogRecord]], bool]:
            return lambda records: any(r.source == "node" and r.level == level for r in records)

        await follower.until(told("warning"), "the outage is told")
        await cluster.dashboard.start()
        stand_in.write(job, numbered("line", 50, 10))
        records = await follower.until(lambda r: len(lines_of(r, job)) >= 60, "every line is read")
        await follower.until(told("info"), "the dashboard's return is told")
    assert_seqs_increase(records)
    assert lines_of(records, job) == expected("line", 60)
    notices = [r for r in records if r.source == "node"]
    assert [r.level for r in notices] == ["warning", "info"], [r.message for r in notices]
    down, back = notices
    assert "cannot be read" in down.message and "retrying" in down.message
    assert cluster.dashboard.url in down.message
    assert "answers again" in back.message
    order = [r.message for r in records]
    assert order.index("line 00019") < order.index(down.message) < order.index(back.message)
    assert order.index(back.message) < order.index("line 00020"), "the lines of the outage come after"


async def test_two_jobs_interleaved_keep_their_order_and_each_line_once(cluster: Cluster) -> None:
    stand_in = cluster.stand_in
    stand_in.add_job("tick")
    stand_in.add_job("tock")
    async with following(cluster.backend) as follower:
        for block in range(10):
            stand_in.write("tick", numbered("tick", block * 7, 7))
            stand_in.write("tock", numbered("tock", block * 5, 5))
            if block % 3 == 0:
                await asyncio.sleep(POLL_S)  # some blocks come in one poll, some in another
        stand_in.end("tick")
        stand_in.end("tock", "STOPPED")
        await follower.until(ended("tick"), "tick's end is told")
        records = await follower.until(
            lambda r: any(s.fields["status"] == "STOPPED" for s in status_of(r, "tock")), "tock's end is told"
        )
    assert_seqs_increase(records)
    assert lines_of(records, "tick") == expected("tick", 70)
    assert lines_of(records, "tock") == expected("tock", 50)
    stopped = status_of(records, "tock")[-1]
    assert stopped.level == "warning" and stopped.message.startswith("job tock STOPPED")


RAY_LINE = "2026-12-02 06:14:12,291\tINFO job_manager.py:581 -- Runtime env is setting up."


async def test_a_line_s_time_is_its_own_or_said_to_be_the_fetch_time(cluster: Cluster) -> None:
    stand_in, job = cluster.stand_in, "timed"
    stand_in.add_job(job)
    async with following(cluster.backend) as follower:
        before = time.time()
        stand_in.write(job, f"{RAY_LINE}\nplain words with no time\n")
        records = await follower.until(lambda r: len(lines_of(r, job)) >= 2, "both lines are read")
        after = time.time()
    stated = next(r for r in records if r.message == RAY_LINE)
    plain = next(r for r in records if r.message == "plain words with no time")
    written = time.mktime(time.strptime("2026-12-02 06:14:12", "%Y-%m-%d %H:%M:%S")) + 0.291
    assert stated.ts == pytest.approx(written, abs=0.001) and "time" not in stated.fields
    assert stated.level == "info"
    assert plain.fields["time"] == "fetched", plain.fields
    assert before <= plain.ts <= after  # when it was fetched, and said to be so


TRACEBACK = """\
about to fail
Traceback (most recent call last):
  File "/tmp/job.py", line 5, in <module>
    main()
  File "/tmp/job.py", line 3, in main
    raise RuntimeError("boom in the job")
RuntimeError: boom in the job
"""


async def test_warning_lines_are_warnings_and_a_traceback_is_an_error_to_its_last_line(
    cluster: Cluster,
) -> None:
    stand_in, job = cluster.stand_in, "failer"
    stand_in.add_job(job)
    async with following(cluster.backend) as follower:
        stand_in.write(job, "WARNING: the cache is cold\nWARNING:root:retrying the download\n")
        stand_in.write(job, TRACEBACK[:60])  # a block ends inside the traceback: its level carries over
        await asyncio.sleep(2 * POLL_S)
        stand_in.write(job, TRACEBACK[60:] + "cleaning up\n")
        records = await follower.until(lambda r: "cleaning up" in lines_of(r, job), "every line is read")
    level = {r.message: r.level for r in records if r.source == job and "status" not in r.fields}
    assert level["WARNING: the cache is cold"] == "warning"
    assert level["WARNING:root:retrying the download"] == "warning"
    assert level["about to fail"] == "info"
    traceback = TRACEBACK.splitlines()[1:]
    assert [level[line] for line in traceback] == ["error"] * len(traceback), traceback
    assert level["cleaning up"] == "info"


async def test_a_job_started_while_eight_actors_live_is_followed_too(cluster: Cluster) -> None:
    """Eight living actors have sixteen files (stdout and stderr); a job submitted after them must still
    be followed while it runs, not only read once it has ended."""
    stand_in = cluster.stand_in
    actors = [stand_in.add_actor(f"worker-{n}", 7000 + n) for n in range(8)]
    async with following(cluster.backend) as follower:
        await asyncio.sleep(5 * POLL_S)  # the actors' files are being followed
        stand_in.add_job("late")
        stand_in.write("late", numbered("late", 0, 10))
        records = await follower.until(
            lambda r: len(lines_of(r, "late")) >= 10, "the running job's lines are read", wait_s=50 * POLL_S
        )
    assert lines_of(records, "late") == expected("late", 10)
    assert not [r for r in records if r.source in actors and r.message.startswith(":")]


async def test_the_stand_in_streams_like_ray() -> None:
    """The stand-in itself: no answer at all while the file is empty (Ray sends its headers with the first
    block), then the file from its start, then each new block as it is written."""
    import httpx

    stand_in = StandIn()
    dashboard = Dashboard(stand_in)
    url = await dashboard.start()
    stand_in.add_job("empty")
    stand_in.add_job("j")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            params = {"lines": -1, "interval": POLL_S}
            with pytest.raises(httpx.ReadTimeout):
                async with client.stream(
                    "GET", "/api/v0/logs/stream", params={**params, "submission_id": "empty"}, timeout=0.3
                ):
                    pass
            stand_in.write("j", "one\n")
            async with client.stream(
                "GET", "/api/v0/logs/stream", params={**params, "submission_id": "j"}
            ) as response:
                chunks = response.aiter_bytes()
                assert await anext(chunks) == b"one\n"
                stand_in.write("j", "two\n")
                assert await anext(chunks) == b"two\n"
    finally:
        await dashboard.stop()
    assert stand_in.sent["stream", "j"] == len(b"one\ntwo\n") and not stand_in.sent["stream", "empty"]


async def test_an_ended_job_s_stream_that_pauses_loses_no_lines(cluster: Cluster) -> None:
    """A console that followed a job, was closed, and is opened again once the job has ended, while the
    dashboard is busy (Ray's dashboard is one Python process; a heavy state-API call stalls its streams)."""
    stand_in, job = cluster.stand_in, "resumed"
    stand_in.add_job(job)
    stand_in.write(job, numbered("line", 0, 10))
    async with following(cluster.backend) as follower:
        await follower.until(lambda r: len(lines_of(r, job)) >= 10, "the first lines are read")
    count = 3 * BLOCK // len("line 00000\n")  # three of Ray's blocks
    stand_in.write(job, numbered("line", 10, count - 10))
    stand_in.end(job)
    stand_in.stall_s = 20 * POLL_S  # far longer than reading a block takes, even on a busy machine
    async with make(cluster.dashboard.url, cluster.state_dir) as again, following(again) as follower:
        records = await follower.until(ended(job), "the job's end is told")
    assert lines_of(records, job) == expected("line", count)
