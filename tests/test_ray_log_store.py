"""The Ray node's log store (backends/ray/log_store.py) on real SQLite files, alone and under ClusterLogs:
one seq per line however many processes offer it, seqs that survive a restart, retention that bounds each
file without pushing the others out and tells a reader what it dropped, and one clear line when the store
cannot be used. The dashboard is the stand-in of tests/test_ray_log_follow.py, served by a real uvicorn;
the CLI runs as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from backends.errors import BackendError
from backends.model import LogRecord
from backends.ray.log_store import LOG_DB, MAX_PER_FILE, LogStore, NewLine
from tests import test_ray_log_follow
from tests.conftest import one_line_error
from tests.test_ray_log_follow import (
    POLL_S,
    Cluster,
    expected,
    following,
    lines_of,
    numbered,
)

REPO = Path(__file__).resolve().parents[1]
cluster = test_ray_log_follow.cluster  # the stand-in and a RayBackend following it, as that file has them


def new_lines(key: str, start: int, stop: int) -> list[NewLine]:
    return [
        NewLine(line=i, ts=float(i), level="info", source=key, message=f"{key} {i}", fields={"n": i})
        for i in range(start, stop)
    ]


def offer_all(store: LogStore, keys: tuple[str, ...], count: int, batch: int) -> int:
    """Offer lines 0..count-1 of each key, ``batch`` at a time, keys taking turns; how many were new."""
    added = 0
    for start in range(0, count, batch):
        stop = min(start + batch, count)
        for key in keys:
            added += store.add(key, new_lines(key, start, stop), upto=stop)
    return added


# what a second process runs: the same offers (offer_all, above), on its own connection to the same file
WRITER = """
import sys
from pathlib import Path
from backends.ray.log_store import LogStore, NewLine

store = LogStore(Path(sys.argv[1]))
count, batch = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
added = 0
for start in range(0, count, batch):
    stop = min(start + batch, count)
    for key in ("job:shared", "job:there"):
        lines = [
            NewLine(line=i, ts=float(i), level="info", source=key, message=f"{key} {i}", fields={"n": i})
            for i in range(start, stop)
        ]
        added += store.add(key, lines, upto=stop)
print(added, flush=True)
"""


def test_two_processes_offering_the_same_lines_keep_each_once_under_dense_seqs(tmp_path: Path) -> None:
    count = 1200
    other = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(count), "11"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None
    assert other.stdout.readline().strip() == "ready"
    store = LogStore(tmp_path)
    reader = LogStore(tmp_path)  # a third connection, reading while both write
    seen: list[LogRecord] = []
    holes: list[tuple[int, int]] = []

    def read_along() -> None:
        cursor = 0
        while len(seen) < 3 * count:
            for record in reader.after(cursor, 500):
                if record.seq != cursor + 1:
                    holes.append((cursor, record.seq))
                cursor = record.seq
                seen.append(record)

    reading = threading.Thread(target=read_along, daemon=True)
    reading.start()
    other.stdin.write("go\n")
    other.stdin.flush()
    here = offer_all(store, ("job:shared", "job:here"), count, 7)
    there = int(other.stdout.readline())
    assert other.wait(30) == 0
    reading.join(30)
    assert not reading.is_alive(), f"the reader saw {len(seen)} of {3 * count} lines"

    assert not holes, "a reader never sees a seq before the ones below it are in"
    assert here + there == 3 * count  # each line went in once, whoever offered it first
    everything = store.after(0, 10 * count)
    assert [r.seq for r in everything] == list(range(1, 3 * count + 1)) == [r.seq for r in seen]
    for key in ("job:shared", "job:here", "job:there"):
        assert [r.message for r in everything if r.source == key] == [f"{key} {i}" for i in range(count)]
    assert store.lines_in(["job:shared", "job:here"]) == {
        "job:shared": (count, False),
        "job:here": (count, False),
    }
    assert store.last_seq() == 3 * count
    store.close()
    reader.close()


def test_a_reopened_store_continues_after_the_last_seq(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_records=3)
    assert store.add("job:a", new_lines("job:a", 0, 5), upto=5) == 5
    assert [r.seq for r in store.after(0, 100)] == [3, 4, 5]  # the oldest two dropped by retention
    store.close()
    again = LogStore(tmp_path, max_records=3)
    assert again.last_seq() == 5
    assert again.lines_in(["job:a"]) == {"job:a": (5, False)}
    assert again.add("job:a", new_lines("job:a", 0, 8), upto=8) == 3  # only the lines past the cursor
    assert [(r.seq, r.message) for r in again.after(0, 100)] == [
        (6, "job:a 5"),
        (7, "job:a 6"),
        (8, "job:a 7"),
    ]
    again.close()


def test_one_file_s_flood_keeps_to_its_own_bound(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_per_file=100, max_records=1000)
    store.add("job:a", new_lines("job:a", 0, 10), upto=10)
    store.add("job:b", new_lines("job:b", 0, 500), upto=500)  # one flooding read
    kept = store.after(0, 10_000)
    assert [r.message for r in kept if r.source == "job:a"] == [f"job:a {i}" for i in range(10)]
    assert [r.message for r in kept if r.source == "job:b"] == [f"job:b {i}" for i in range(400, 500)]
    store.close()


def test_the_whole_table_bound_counts_records_so_a_flood_cannot_push_other_files_out(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_per_file=100, max_records=1000)
    store.add("job:a", new_lines("job:a", 0, 10), upto=10)
    offer_all(store, ("job:b",), 2000, 100)  # a long job, 2000 lines in all: 100 of them kept
    kept = store.after(0, 10_000)
    assert len(kept) == 110, "the table is far under its bound of 1000"
    assert [r.message for r in kept if r.source == "job:a"] == [f"job:a {i}" for i in range(10)]
    store.close()


async def test_a_flood_from_one_job_leaves_the_other_job_s_lines(cluster: Cluster) -> None:
    stand_in, backend = cluster.stand_in, cluster.backend
    stand_in.add_job("quiet")
    stand_in.write("quiet", numbered("quiet", 0, 10))
    stand_in.end("quiet")
    assert lines_of([r async for r in backend.logs()], "quiet") == expected("quiet", 10)
    stand_in.add_job("flood")
    stand_in.write("flood", numbered("flood", 0, 25_000))  # at once, between two reads
    stand_in.end("flood")
    records = [r async for r in backend.logs()]
    assert lines_of(records, "quiet") == expected("quiet", 10)
    assert lines_of(records, "flood") == expected("flood", 25_000)
    assert [r.message for r in records if r.source == "quiet" and "status" in r.fields] == [
        "job quiet SUCCEEDED: Job finished successfully."
    ]


async def test_a_reader_is_told_how_many_lines_retention_dropped_and_which(cluster: Cluster) -> None:
    stand_in, backend = cluster.stand_in, cluster.backend
    stand_in.add_job("before")
    stand_in.write("before", numbered("before", 0, 10))
    first = [r async for r in backend.logs()]
    cursor = first[-1].seq  # where this reader got to
    over = 10
    stand_in.add_job("flood")
    stand_in.write("flood", numbered("flood", 0, MAX_PER_FILE + over))
    stand_in.end("flood")
    resumed = [r async for r in backend.logs(since_seq=cursor)]
    gaps = [r for r in resumed if "gap" in r.fields]
    assert len(gaps) == 1, [g.message for g in gaps]
    gap = gaps[0]
    assert resumed[0] is gap and gap.level == "warning" and gap.source == "node"
    assert gap.fields["gap"] == over
    assert gap.message == (
        f"{over} log lines (seq {cursor + 1}–{cursor + over}) had already been dropped by the node's "
        "retention before they could be read"
    )
    assert gap.seq == cursor + over and resumed[1].seq == cursor + over + 1
    assert lines_of(resumed, "flood") == [f"flood {i:05d}" for i in range(over, MAX_PER_FILE + over)]
    # a reader from the start misses them too, and is told the same
    again = [r async for r in backend.logs()]
    assert [r.message for r in again if "gap" in r.fields] == [gap.message]
    assert lines_of(again, "before") == expected("before", 10)


async def test_a_new_process_resumes_after_the_seq_the_last_one_handed_out(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Two runs of ``fleetdeck logs`` against one state dir, two jobs running: the second run resumes
    exactly with --since, though the first job has grown in between (its new lines are not numbered
    after the second job's old ones)."""
    stand_in = cluster.stand_in
    for job in ("first", "second"):
        stand_in.add_job(job)
        stand_in.write(job, numbered(job, 0, 10))
    write_config(cli_env, cluster.dashboard.url, cluster.state_dir)
    before = await cli_json(cli_env, tmp_path)
    assert lines_of(before, "first") == expected("first", 10) and lines_of(before, "second") == expected(
        "second", 10
    )
    stand_in.write("first", numbered("first", 10, 5))
    resumed = await cli_json(cli_env, tmp_path, "--since", str(before[-1].seq))
    assert [r.message for r in resumed] == [f"first {i:05d}" for i in range(10, 15)]
    assert min(r.seq for r in resumed) > before[-1].seq
    whole = await cli_json(cli_env, tmp_path)
    assert [(r.seq, r.message) for r in whole] == [(r.seq, r.message) for r in before + resumed]


async def test_a_follower_and_another_process_hand_out_the_same_seq_for_each_line(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    stand_in = cluster.stand_in
    stand_in.add_job("shared")
    write_config(cli_env, cluster.dashboard.url, cluster.state_dir)
    async with following(cluster.backend) as follower:
        for block in range(6):
            stand_in.write("shared", numbered("shared", block * 40, 40))
            if block == 3:
                other = await cli_json(cli_env, tmp_path)  # reads (and keeps) while the follower streams
            await asyncio.sleep(POLL_S)
        records = await follower.until(lambda r: len(lines_of(r, "shared")) >= 240, "every line is read")
    assert lines_of(records, "shared") == expected("shared", 240)
    seq_of = {r.message: r.seq for r in records}
    told = [r for r in other if r.source == "shared" and "status" not in r.fields]
    assert told and all(seq_of[r.message] == r.seq for r in told), "one seq per line, whoever read it"


@pytest.mark.parametrize("spoil", ["schema", "state_dir"])
async def test_a_store_that_cannot_be_used_is_one_clear_line(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path, spoil: str
) -> None:
    cluster.stand_in.add_job("j")
    cluster.stand_in.write("j", "a line\n")
    state_dir = cluster.state_dir
    if spoil == "schema":
        LogStore(state_dir).close()
        with sqlite3.connect(state_dir / LOG_DB) as db:
            db.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
        db.close()
        words = rf"the Ray log store {state_dir / LOG_DB} is of schema 99, this fleetdeck reads 1: move it"
    else:
        (tmp_path / "occupied").write_text("a file where the state dir should be\n")
        state_dir = tmp_path / "occupied" / "ray"
        words = f"the Ray log store {state_dir / LOG_DB} cannot be used ("
    with pytest.raises(BackendError) as raised:
        await asyncio.to_thread(LogStore, state_dir)
    assert words in str(raised.value) and "\n" not in str(raised.value)

    write_config(cli_env, cluster.dashboard.url, state_dir)
    result = await cli(cli_env, tmp_path)
    assert result.returncode != 0
    assert words in one_line_error(result)


# --- the real command line -------------------------------------------------------------------------------


def write_config(cli_env: dict[str, str], url: str, state_dir: Path) -> None:
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[[nodes]]\nname = "cluster"\nbackend = "ray"\nurl = "{url}"\nstate_dir = "{state_dir}"\n'
        f"[nodes.options]\nlog_poll_s = {POLL_S}\n",
        encoding="utf-8",
    )


async def cli(cli_env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "console", "logs", "--node", "cluster", "--json", *args]
    env = {**cli_env, "PYTHONPATH": str(REPO)}  # this checkout's fleetdeck, whatever is installed
    return await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


async def cli_json(cli_env: dict[str, str], cwd: Path, *args: str) -> list[LogRecord]:
    result = await cli(cli_env, cwd, *args)
    assert result.returncode == 0, result.stderr
    return [_record(json.loads(line)) for line in result.stdout.splitlines()]


def _record(raw: dict[str, Any]) -> LogRecord:
    return LogRecord(
        seq=raw["seq"],
        ts=raw["ts"],
        level=raw["level"],
        source=raw["source"],
        message=raw["message"],
        fields=raw.get("fields") or {},
    )
