"""``GET /v1/logs`` as server-sent events: resume by seq, gaps, follow, disconnects, and a node killed
mid-stream and restarted - every line counted, none lost, none doubled."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backends.demo import demo_fleet
from backends.demo.backend import DemoBackend
from backends.local.backend import LocalBackend
from backends.local.reporter import AgentReporter
from backends.local.store import Store
from backends.model import LogRecord, from_json
from backends.node_api import LogGap
from backends.node_server.app import create_app
from console.core.clock import FrozenClock
from tests.conftest import T0
from tests.serving import ServedNode, as_owner, serve_asgi

DEADLINE_S = 60.0  # a guard against hanging, never an assertion about speed


@dataclass(frozen=True)
class Event:
    event: str  # "log", "gap", "problem", or "comment" for a ": ..." line
    id: str | None
    data: str


def events(response: httpx.Response) -> Iterator[Event]:
    """A minimal SSE reader (the wire format, read independently of the server's writer)."""
    kind, ident, data = "message", None, list[str]()
    for line in response.iter_lines():
        if line.startswith(":"):
            yield Event("comment", None, line[1:].strip())
        elif line == "":
            if data:
                yield Event(kind, ident, "\n".join(data))
            kind, ident, data = "message", None, list[str]()
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                kind = value
            elif name == "id":
                ident = value
            elif name == "data":
                data.append(value)


def read_all(
    url: str, *, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> list[Event]:
    with as_owner.stream(
        "GET", f"{url}/v1/logs", params={"follow": "0", **(params or {})}, headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(events(response))


def records(found: list[Event]) -> list[LogRecord]:
    out = [from_json(e.data, LogRecord) for e in found if e.event == "log"]
    for event, record in zip([e for e in found if e.event == "log"], out, strict=True):
        assert event.id == str(record.seq)
    return out


# --- resume ------------------------------------------------------------------------------------------------


@pytest.fixture
def demo() -> DemoBackend:
    return demo_fleet(seed=7, nodes=1, clock=FrozenClock(T0 + 90))[0]


def test_since_seq_and_last_event_id_resume_with_exactly_the_missing_records(demo: DemoBackend) -> None:
    with serve_asgi(create_app(demo)) as url:
        everything = records(read_all(url))
        assert len(everything) > 100
        assert [r.seq for r in everything] == sorted({r.seq for r in everything})
        cursor = everything[len(everything) // 2].seq
        tail = [r for r in everything if r.seq > cursor]
        assert records(read_all(url, params={"since_seq": str(cursor)})) == tail
        # Last-Event-ID (an EventSource reconnecting) wins over the query's since_seq
        resumed = read_all(url, params={"since_seq": "0"}, headers={"Last-Event-ID": str(cursor)})
        assert records(resumed) == tail
        assert not [e for e in resumed if e.event == "gap"]  # the demo's seqs have holes: never a gap
        # bad cursors are problems, not streams
        bad = as_owner.get(f"{url}/v1/logs", params={"since_seq": "-1"})
        assert bad.status_code == 422 and bad.json()["field"] == "since_seq"
        bad = as_owner.get(f"{url}/v1/logs", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422 and bad.json()["field"] == "Last-Event-ID"


def test_a_resume_behind_retention_gets_a_gap_event_first(tmp_path: Path) -> None:
    state = tmp_path / "node"
    with Store(state, log_max_records=1_000_000) as store:
        store.append_logs([(None, "info", "writer", f"line {i}", None) for i in range(50)])
    backend = LocalBackend(state_dir=state)
    with serve_asgi(create_app(backend)) as url:
        first = records(read_all(url))
        mine = [r for r in first if r.source == "writer"]
        assert len(mine) == 50
        cursor = mine[9].seq  # the client has read up to line 9, then went away
        with Store(state, log_max_records=20) as store:  # meanwhile retention keeps only the newest 20
            store.append_logs([(None, "info", "writer", f"line {i}", None) for i in range(50, 60)])
            store.prune_logs()
            oldest = store.oldest_log_seq()
        assert oldest is not None and oldest > cursor + 1
        found = read_all(url, params={"since_seq": str(cursor)})
        assert found[0].event == "gap"
        gap = from_json(found[0].data, LogGap)
        assert gap == LogGap(after_seq=cursor, next_seq=oldest, missed=oldest - cursor - 1)
        assert found[0].id == str(oldest - 1)
        assert records(found)[0].seq == oldest
        assert [e.event for e in found[1:]] == ["log"] * 20
        # a client starting from 0 asked for whatever there is: no gap
        assert [e.event for e in read_all(url)] == ["log"] * 20
        # a resume inside what is kept: no gap
        assert "gap" not in [e.event for e in read_all(url, params={"since_seq": str(oldest + 3)})]


# --- follow ------------------------------------------------------------------------------------------------


def test_follow_delivers_new_lines_and_keepalives(tmp_path: Path) -> None:
    state = tmp_path / "node"
    Store(state).close()
    backend = LocalBackend(state_dir=state)
    with serve_asgi(create_app(backend, keepalive_s=0.2)) as url:
        seen: list[str] = []
        comments = 0
        with (
            as_owner.stream("GET", f"{url}/v1/logs", params={"follow": "1"}, timeout=DEADLINE_S) as response,
            AgentReporter("follower-test", state_dir=state) as agent,
        ):
            for event in events(response):
                if event.event == "comment":
                    comments += 1
                    if comments == 1:  # idle: the server said it is alive; now write
                        for i in range(5):
                            agent.log("info", f"fresh {i}")
                elif event.event == "log":
                    record = from_json(event.data, LogRecord)
                    if record.source == "follower-test":
                        seen.append(record.message)
                if len(seen) == 5:
                    break
        assert seen == [f"fresh {i}" for i in range(5)]
        assert comments >= 1


class _CountingDemo(DemoBackend):
    """Counts log generators still open: a disconnected client must leave none behind."""

    open_streams = 0

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        type(self).open_streams += 1
        try:
            async for record in super().logs(since_seq, follow):
                yield record
        finally:
            type(self).open_streams -= 1


def test_a_client_disconnect_ends_the_stream_and_closes_the_backend_generator() -> None:
    clock = FrozenClock(T0 + 30)
    backend = _CountingDemo(seed=7, clock=clock)
    backend.poll_interval_s = 0.05
    with serve_asgi(create_app(backend, keepalive_s=0.1)) as url:
        with as_owner.stream("GET", f"{url}/v1/logs", params={"follow": "1"}) as response:
            for event in events(response):
                if event.event == "log":
                    break
            opened = _CountingDemo.open_streams
        assert opened <= 1  # one request, one backend generator (it may already be closing under load)
        deadline = time.monotonic() + DEADLINE_S
        while _CountingDemo.open_streams and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _CountingDemo.open_streams == 0
        # follow=0 ends by itself after the records there are
        assert read_all(url)[-1].event == "log"
        assert _CountingDemo.open_streams == 0


# --- a node killed and restarted mid-stream ----------------------------------------------------------------


def test_resume_across_a_killed_and_restarted_node_loses_and_doubles_nothing(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state = tmp_path / "node"
    Store(state).close()
    total = 400
    node = ServedNode("--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-access-log", env=cli_env)
    node.start()
    got: list[LogRecord] = []
    all_seqs: list[int] = []
    gaps: list[str] = []
    reconnects = 0
    reader_done = threading.Event()
    reader_error: list[BaseException] = []

    reporter = AgentReporter("writer", state_dir=state)

    def write(lines: range, pause_s: float) -> None:
        for i in lines:
            reporter.log("info", f"line {i}")
            time.sleep(pause_s)

    def read() -> None:
        nonlocal reconnects
        last = 0
        deadline = time.monotonic() + DEADLINE_S
        try:
            while time.monotonic() < deadline:
                headers = {**node.auth(), **({"Last-Event-ID": str(last)} if last else {})}
                try:
                    with httpx.stream(
                        "GET", f"{node.url}/v1/logs", params={"follow": "1"}, headers=headers, timeout=5.0
                    ) as response:
                        for event in events(response):
                            if event.event == "gap":
                                gaps.append(event.data)
                            if event.event != "log":
                                continue
                            record = from_json(event.data, LogRecord)
                            all_seqs.append(record.seq)
                            last = record.seq
                            if record.source == "writer":
                                got.append(record)
                                if record.message == f"line {total - 1}":
                                    return
                except httpx.TransportError:
                    reconnects += 1  # the node is down (killed, not yet back): try again
                    time.sleep(0.05)
        except BaseException as exc:  # reported to the test's thread
            reader_error.append(exc)
        finally:
            reader_done.set()

    # lines 0..299 are written while the node is read, killed and restarted; 300..399 only after the
    # restart, so the reader must reconnect to finish
    writer = threading.Thread(target=write, args=(range(300), 0.003))
    reader = threading.Thread(target=read)
    try:
        writer.start()
        reader.start()
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(got) >= 50, "the reader saw too little before the kill"
        node.kill()  # SIGKILL mid-stream: no clean shutdown
        time.sleep(0.3)  # the writer goes on while the node is down
        node.restart()
        writer.join(DEADLINE_S)
        write(range(300, total), 0.001)
        assert reader_done.wait(DEADLINE_S)
    finally:
        node.stop()
        reader_done.wait(5)
        reporter.close()
    assert not reader_error, reader_error
    assert reconnects >= 1  # the kill really cut the stream
    assert [r.message for r in got] == [f"line {i}" for i in range(total)]
    assert all_seqs == sorted(set(all_seqs))  # strictly increasing: nothing doubled
    assert gaps == []
