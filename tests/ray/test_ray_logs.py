"""Ray logs against a real local Ray head: nothing lost in a flood, nothing pushed out, an exact resume
across a restart of a served node, and actors' own files followed."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.serving import ServedNode, owner_auth, same_state_home

from .conftest import RayHead
from .test_live_cluster import WAIT_S, make, until

FLOOD_LINES = 30_000


def submit(head: RayHead, submission_id: str, code: str) -> None:
    """A job through Ray's own job API (not fleetdeck's dispatch): what any Ray user runs."""
    response = httpx.post(
        f"{head.url}/api/jobs/",
        json={"entrypoint": f"{sys.executable} -c {shlex.quote(code)}", "submission_id": submission_id},
        headers={"Authorization": f"Bearer {head.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def write_config(cli_env: dict[str, str], head: RayHead) -> None:
    config = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[[nodes]]\nname = "cluster"\nbackend = "ray"\nurl = "{head.url}"\ntoken_env = "FD_RAY_TOKEN"\n'
        "[nodes.options]\nlog_poll_s = 0.5\n",
        encoding="utf-8",
    )
    cli_env["FD_RAY_TOKEN"] = head.token


def json_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def follower(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """``fleetdeck logs --node cluster --follow --json`` running as a user runs it; what it has printed."""
    out = tmp_path / "follow.jsonl"
    with out.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "logs", "--node", "cluster", "--follow", "--json"],
            env=cli_env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield lambda: json_lines(out)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
            assert "Traceback" not in err, err


def test_a_flood_reaches_logs_follow_whole_and_the_other_jobs_keep_their_lines(
    ray_head: RayHead, cli_env: dict[str, str], fleetdeck: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    write_config(cli_env, ray_head)
    tag = tmp_path.name[-12:]
    failer, printer, flood = f"failer-{tag}", f"printer-{tag}", f"flood-{tag}"
    read = request.getfixturevalue("follower")
    submit(ray_head, failer, "print('about to fail', flush=True)\nraise RuntimeError('boom in the job')")
    submit(ray_head, printer, "for i in range(100): print(f'printed {i}')")

    def ended(job: str) -> Callable[[], bool]:
        return lambda: any(r["message"].startswith(f"job {job} ") and "status" in r["fields"]
                           and r["fields"]["status"] in ("SUCCEEDED", "FAILED") for r in read())  # fmt: skip

    wait_for(ended(failer), "the failing job ends")
    wait_for(ended(printer), "the printing job ends")
    submit(ray_head, flood, f"for i in range({FLOOD_LINES}): print(f'flood {{i:06d}}')")
    wait_for(ended(flood), "the flood ends")

    records = read()
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(set(seqs)), "seqs strictly increase"
    assert not [r for r in records if "gap" in r["fields"]], "nothing was dropped"
    flooded = [r["message"] for r in records if r["source"] == flood and r["message"].startswith("flood 0")]
    assert flooded == [f"flood {i:06d}" for i in range(FLOOD_LINES)]
    status = [r for r in records if r["source"] == flood and "status" in r["fields"]][-1]
    assert status["seq"] > max(r["seq"] for r in records if r["message"].startswith("flood 0"))

    # after the flood, the other jobs' lines are all still there, for a new reader as for the follower
    errors = fleetdeck("logs", "--node", "cluster", "--agent", failer, "--level", "error", "--json")
    assert errors.returncode == 0, errors.stderr
    said = [json.loads(line)["message"] for line in errors.stdout.splitlines()]
    assert "RuntimeError: boom in the job" in said  # the traceback, as errors
    assert any(m.startswith("Traceback") for m in said)
    assert said[-1].startswith(f"job {failer} FAILED") and said[-1].endswith("RuntimeError: boom in the job")
    printed = fleetdeck("logs", "--node", "cluster", "--agent", printer, "--json")
    messages = [json.loads(line)["message"] for line in printed.stdout.splitlines()]
    assert [m for m in messages if m.startswith("printed ")] == [f"printed {i}" for i in range(100)]


TICKER = "import time\nfor i in range({n}):\n    print('{name} %d' % i, flush=True)\n    time.sleep(0.02)"


def test_a_served_cluster_resumes_exactly_across_a_restart(
    ray_head: RayHead, cli_env: dict[str, str]
) -> None:
    """Two jobs printing at once, so the seq order interleaves them; the server is killed mid-way, and a
    client resuming with Last-Event-ID on the new process gets every line once."""
    write_config(cli_env, ray_head)
    tag = str(time.monotonic_ns())[-8:]
    jobs = {f"tick-{tag}": 300, f"tock-{tag}": 300}
    seen: dict[str, list[str]] = {job: [] for job in jobs}
    finished: set[str] = set()
    last = 0

    def read(url: str, count: int | None) -> None:
        nonlocal last
        headers = {**owner_auth(), **({"Last-Event-ID": str(last)} if last else {})}
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=WAIT_S)) as client,
            connect_sse(client, "GET", f"{url}/v1/logs", params={"follow": 1}, headers=headers) as source,
        ):
            taken = 0
            for event in source.iter_sse():
                if event.event != "log":
                    continue
                record = json.loads(event.data)
                assert record["seq"] > last, "no record twice"
                last = record["seq"]
                if record["source"] in jobs:
                    if "status" in record["fields"]:
                        if record["fields"]["status"] in ("SUCCEEDED", "FAILED"):
                            finished.add(record["source"])
                    elif re.fullmatch(rf"{record['source']} \d+", record["message"]):
                        seen[record["source"]].append(record["message"])
                        taken += 1
                if finished == set(jobs) or (count is not None and taken >= count):
                    return

    with ServedNode("--node", "cluster", env=same_state_home(cli_env)) as node:
        for job, lines in jobs.items():
            submit(ray_head, job, TICKER.format(n=lines, name=job))
        read(node.url, count=150)
        node.kill()
        node.restart()
        read(node.url, count=None)
    for job, lines in jobs.items():
        assert seen[job] == [f"{job} {i}" for i in range(lines)]


ACTOR_CODE = """
import sys, time, ray
ray.init()

@ray.remote
class Echoer:
    def speak(self):
        print("hello from the actor", flush=True)
        print("WARNING: the actor is low on coffee", file=sys.stderr, flush=True)
        return 1

echoer = Echoer.options(name="{name}").remote()
ray.get(echoer.speak.remote())
time.sleep(3)
print("driver done", flush=True)
"""


async def test_an_actor_s_own_files_are_its_logs_and_shown_once(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"echoer-{tmp_path.name[-10:]}"
    job = f"actor-job-{tmp_path.name[-10:]}"
    submit(ray_head, job, ACTOR_CODE.format(name=name))
    async with make(ray_head, tmp_path, monkeypatch) as backend:

        async def actor_id() -> str | None:
            agents = (await backend.snapshot()).agents
            return next((a.id for a in agents if a.name == name), None)

        ident = await until(actor_id, "the actor is listed")

        async def spoke() -> list[Any] | None:
            records = [r async for r in backend.logs()]
            done = any(r.source == job and r.message == "driver done" for r in records)
            return (
                records
                if done and any(r.source == ident and "coffee" in r.message for r in records)
                else None
            )

        records = await until(spoke, "the actor's lines and the driver's last line are read")
    mine = [r for r in records if r.source == ident]
    hello = next(r for r in mine if r.message == "hello from the actor")
    assert hello.fields["actor"] == name and hello.fields["stream"] == "stdout" and hello.level == "info"
    coffee = next(r for r in mine if "coffee" in r.message)
    assert coffee.level == "warning" and coffee.fields["stream"] == "stderr"
    assert not [r for r in mine if r.message.startswith(":")], "Ray's file markers are not lines"
    # Ray copies the actor's lines into the driver's log: shown once, under the actor
    echoes = [r for r in records if r.source == job and r.message.endswith(") hello from the actor")]
    assert not echoes
