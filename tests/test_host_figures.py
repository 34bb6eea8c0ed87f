"""Host figures as other tools see them: disk use as the real ``df`` reports it (reserved blocks, rounding
up), and CPU use that is a measurement, never the made-up 0.0 of an unprimed baseline, under a real load."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from rich.console import Console

from backends.demo.catalog import node_spec
from backends.demo.roster import Trouble
from backends.demo.world import World
from backends.local import metrics
from backends.local.backend import LocalBackend
from backends.local.metrics import HostSampler
from backends.model import NodeSnapshot, SystemMetrics, from_json, to_json
from backends.node_server.app import create_app
from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.settings import RayOptions
from tests.ray_dashboard import Dashboard, recorded
from tests.serving import owner_auth, serve_asgi
from widgets.host_panel import host_table

GIB = 1024**3
TIB = 1024**4
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": GIB, "TiB": TIB, "PiB": 1024**5}
# One core of two fully busy is 50%; other work on the machine only adds to it. Over half a second a
# reading below this is not a measurement of that load.
BUSY_FLOOR = 25.0
INTERVAL_S = 0.5


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- disk: what df says --------------------------------------------------------------------------------


def df(path: Path) -> tuple[int, int]:
    """The real df's Use% and Avail (bytes) of the filesystem holding ``path``."""
    out = subprocess.run(
        ["df", "--output=pcent,avail", "-B1", str(path)], capture_output=True, text=True, check=True
    ).stdout
    pcent, avail = out.splitlines()[-1].split()
    return int(pcent.rstrip("%")), int(avail)


def disk_row(system: SystemMetrics, width: int = 80) -> str:
    """The host panel's Disk row as the terminal shows it."""
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(host_table(system, None))
    console.file.close()
    rows = [line for line in console.export_text().splitlines() if line.startswith("Disk")]
    assert len(rows) == 1, console.export_text()
    return rows[0].rstrip()


def parse_bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * _UNITS[unit]


DISK_ROW = re.compile(
    r"^Disk\s+(?P<used>\S+ \S+) / (?P<total>\S+ \S+) \((?P<pct>\d+)%\)(?: · (?P<free>\S+ \S+) free)?$"
)


def test_panel_disk_percent_and_free_agree_with_df(tmp_path: Path) -> None:
    system = HostSampler(tmp_path).sample()
    df_pct, df_avail = df(tmp_path)
    row = disk_row(system)
    shown = DISK_ROW.match(row)
    assert shown is not None, row
    # the disk moves between the two readings: one percent point of slack
    assert abs(int(shown["pct"]) - df_pct) <= 1, f"panel says {row!r}, df says {df_pct}%"
    assert shown["free"] is not None, f"available space not shown: {row!r}"
    total = parse_bytes(shown["total"])
    assert abs(parse_bytes(shown["free"]) - df_avail) <= 0.01 * total, (row, df_avail)


def test_sampled_disk_available_and_percent_agree_with_df(tmp_path: Path) -> None:
    system = HostSampler(tmp_path).sample()
    df_pct, df_avail = df(tmp_path)
    assert system.disk_total is not None and system.disk_available is not None
    assert abs(system.disk_available - df_avail) <= 0.01 * system.disk_total
    assert system.disk_use_percent is not None and abs(system.disk_use_percent - df_pct) <= 1
    # it goes on the wire and comes back
    assert from_json(to_json(system), SystemMetrics).disk_available == system.disk_available


def test_disk_of_a_state_dir_not_made_yet_is_its_parents_filesystem(tmp_path: Path) -> None:
    system = HostSampler(tmp_path / "not" / "yet").sample()
    df_pct, _ = df(tmp_path)
    assert system.disk_use_percent is not None and abs(system.disk_use_percent - df_pct) <= 1
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize(
    ("used", "available", "percent"),
    [
        (0, 1000, 0),
        (1, 999, 1),  # df rounds up: any use at all is at least 1%
        (500, 500, 50),
        (501, 499, 51),  # 50.1 -> 51
        (24_691_515_392, 84_252_778_496, 23),  # this project's CI disk: df says 23%, used / total is 9%
        (1000, 0, 100),
    ],
)
def test_disk_percent_is_used_over_used_plus_available_rounded_up(
    used: int, available: int, percent: int
) -> None:
    system = SystemMetrics(disk_total=used + available + 10_000, disk_used=used, disk_available=available)
    assert system.disk_use_percent == percent


def test_disk_percent_unknown_when_nothing_to_divide() -> None:
    assert SystemMetrics().disk_use_percent is None
    assert SystemMetrics(disk_total=0, disk_used=0, disk_available=0).disk_use_percent is None
    assert SystemMetrics(disk_total=10, disk_available=5).disk_use_percent is None


def test_an_older_node_without_available_falls_back_to_used_over_total() -> None:
    # what a node from before disk_available sends over HTTP: no such key at all
    old = from_json(b'{"disk_total": 1000000000000, "disk_used": 412000000000}', SystemMetrics)
    assert old.disk_available is None
    assert old.disk_use_percent == 42  # 41.2, rounded up as df would
    row = disk_row(old)
    assert row == "Disk       383.7 GiB / 931.3 GiB (42%)", row  # no "free", no "n/a", nothing wrong


def test_unknown_disk_reads_n_a() -> None:
    assert disk_row(SystemMetrics()) == "Disk       n/a / n/a (n/a)"


def test_the_widest_disk_row_fits_the_host_panel() -> None:
    # The host panel's text is 60 columns wide beside the agents at 160x48 (its own tab, the whole width,
    # at 80 and 120): the widest figures still fit on one line there, so nothing is cut.
    # the widest figures: four-digit numbers everywhere and a three-digit percent
    system = SystemMetrics(
        disk_total=int(1023.9 * TIB), disk_used=int(1023.8 * TIB), disk_available=int(1023.9 * GIB)
    )
    row = disk_row(system, width=200)
    assert row == "Disk       1023.8 TiB / 1023.9 TiB (100%) · 1023.9 GiB free"
    assert len(row) <= 60 and disk_row(system, width=60) == row


# --- disk: the other backends ----------------------------------------------------------------------------


async def ray_system(tmp_path: Path, summary: object, nodes: object | None = None) -> SystemMetrics:
    dashboard = Dashboard()
    dashboard.routes["/nodes"] = summary
    if nodes is not None:
        dashboard.routes["/api/v0/nodes"] = nodes
    with serve_asgi(dashboard.app()) as url:
        options = RayOptions(url=url, options={"state_dir": str(tmp_path / "ray")})
        node = NodeSettings(name="cluster", backend_options=options)
        async with RayBackend.from_config(node, clock=time.time) as backend:
            snap = await backend.snapshot()
    return from_json(to_json(snap), NodeSnapshot).system  # as a console over HTTP would get it


async def test_ray_disk_available_is_psutil_free_of_root(tmp_path: Path) -> None:
    # recorded from a real Ray 2.60 head: "/": total 270553174016, used 23791501312, free 85152792576,
    # percent 21.8 (psutil's used / (used + free)); df rounds that up to 22%
    system = await ray_system(tmp_path, recorded("nodes_summary"))
    assert (system.disk_total, system.disk_used, system.disk_available) == (
        270553174016,
        23791501312,
        85152792576,
    )
    assert system.disk_use_percent == 22  # used / total would say 9%
    assert disk_row(system) == "Disk       22.2 GiB / 252.0 GiB (22%) · 79.3 GiB free"


async def test_ray_disk_sums_the_alive_machines(tmp_path: Path) -> None:
    system = await ray_system(tmp_path, recorded("nodes_summary_gpus"), recorded("nodes_three"))
    assert system.disk_available == 2 * 85152792576 and system.disk_used == 2 * 23791501312
    assert system.disk_use_percent == 22


async def test_ray_machine_without_free_falls_back_to_used_over_total(tmp_path: Path) -> None:
    summary = copy.deepcopy(recorded("nodes_summary_gpus"))
    del summary["data"]["summary"][1]["disk"]["/"]["free"]  # one reporter that does not say it
    system = await ray_system(tmp_path, summary, recorded("nodes_three"))
    assert system.disk_available is None and system.disk_used == 2 * 23791501312
    assert system.disk_use_percent == 9  # used / total, rounded up; nothing said to be wrong
    assert disk_row(system) == "Disk       44.3 GiB / 503.9 GiB (9%)"


def test_demo_disk_has_reserved_blocks_and_is_deterministic() -> None:
    for index in range(6):
        spec = node_spec(7, index)
        world = World(7, spec, [], _no_trouble(), genesis=1_700_000_000.0)
        t = 1_700_000_000.0 + 3600 * index
        system = world.system_at(t)
        assert system.disk_total and system.disk_used and system.disk_available
        reserved = system.disk_total - system.disk_used - system.disk_available
        assert 0.01 * system.disk_total <= reserved <= 0.06 * system.disk_total, spec.name
        assert system.disk_use_percent == math.ceil(
            100 * system.disk_used / (system.disk_used + system.disk_available)
        )
        # a figure of time alone: the same seed and time give the same disk
        again = World(7, node_spec(7, index), [], _no_trouble(), genesis=1_700_000_000.0).system_at(t)
        assert (again.disk_used, again.disk_available) == (system.disk_used, system.disk_available)


def _no_trouble() -> Trouble:
    return Trouble(None, None, 0.0, None, 0.0, None, 0.0)


# --- CPU: a measurement, never an unprimed 0.0 ------------------------------------------------------------


@contextlib.contextmanager
def burning_core() -> Iterator[None]:
    """A real subprocess spinning on one core until the block ends."""
    burner = subprocess.Popen(
        [sys.executable, "-c", "print('spinning', flush=True)\nwhile True: pass"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert burner.stdout is not None and burner.stdout.readline().strip() == "spinning"
        yield
    finally:
        burner.kill()
        burner.wait(timeout=10)


def test_another_sampler_in_a_tight_loop_does_not_zero_this_one(tmp_path: Path) -> None:
    with burning_core():
        quiet, busy = HostSampler(tmp_path), HostSampler(tmp_path)
        deadline = time.monotonic() + INTERVAL_S
        while time.monotonic() < deadline:
            busy.sample()  # e.g. /metrics scraped hard, or a second backend in the same process
        HostSampler(tmp_path)  # and one more opening (priming) just before this one samples
        measured = quiet.sample().cpu_percent
        assert busy.sample().cpu_percent is not None  # the busy one measures too
    assert measured is not None and measured > BUSY_FLOOR, measured


def test_sampling_from_a_thread_pool_measures(tmp_path: Path) -> None:
    # The local backend builds its sampler in the event loop and samples in asyncio.to_thread's workers:
    # a worker that never sampled before, or one that sampled long ago, each get this sampler's interval.
    with burning_core():
        sampler = HostSampler(tmp_path)
        readings: list[float | None] = []
        for _ in range(3):
            time.sleep(INTERVAL_S)
            worker = threading.Thread(target=lambda: readings.append(sampler.sample().cpu_percent))
            worker.start()
            worker.join()
    assert all(r is not None and r > BUSY_FLOOR for r in readings), readings


def test_served_local_node_snapshot_reports_the_load(tmp_path: Path) -> None:
    """The report: /v1/snapshot said cpu_percent 0.0 while the machine was at 98%."""
    with burning_core(), serve_asgi(create_app(LocalBackend(state_dir=tmp_path / "state"))) as url:
        first = from_json(
            httpx.get(f"{url}/v1/snapshot", headers=owner_auth(), timeout=30).content, NodeSnapshot
        )
        # right after the node opened no interval has passed: unknown, not a made-up idle 0.0
        assert first.system.cpu_percent is None or first.system.cpu_percent > BUSY_FLOOR
        time.sleep(INTERVAL_S + 0.3)  # past the snapshot cache's life
        second = from_json(
            httpx.get(f"{url}/v1/snapshot", headers=owner_auth(), timeout=30).content, NodeSnapshot
        )
    assert second.observed_at > first.observed_at
    assert second.system.cpu_percent is not None and second.system.cpu_percent > BUSY_FLOOR, second.system


def test_two_local_backends_in_one_process_both_measure(tmp_path: Path) -> None:
    async def scenario() -> tuple[float | None, float | None]:
        one, two = LocalBackend(state_dir=tmp_path / "one"), LocalBackend(state_dir=tmp_path / "two")
        try:
            await one.open()
            await two.open()
            await asyncio.sleep(INTERVAL_S)
            a = (await one.snapshot()).system.cpu_percent
            b = (await two.snapshot()).system.cpu_percent
            return a, b
        finally:
            await one.close()
            await two.close()

    with burning_core():
        a, b = asyncio.run(scenario())
    assert a is not None and a > BUSY_FLOOR, a
    assert b is not None and b > BUSY_FLOOR, b


def test_first_sample_is_none_until_an_interval_has_passed(tmp_path: Path) -> None:
    clock = Clock()
    sampler = HostSampler(tmp_path, monotonic=clock)
    assert sampler.sample().cpu_percent is None  # no time has passed since priming
    clock.now += metrics.MIN_CPU_INTERVAL_S / 2
    assert sampler.sample().cpu_percent is None  # still too soon: nothing real to repeat
    time.sleep(0.05)  # real CPU ticks to measure
    clock.now += metrics.MIN_CPU_INTERVAL_S
    measured = sampler.sample().cpu_percent
    assert measured is not None and 0.0 <= measured <= 100.0
    assert sampler.sample().cpu_percent == measured  # asked again too soon: the last real value


class Counters:
    """CPU counters handed out one reading at a time, in psutil's own cpu_times type (seconds per field)."""

    def __init__(self, *readings: dict[str, float]) -> None:
        blank = psutil.cpu_times()._replace(**dict.fromkeys(psutil.cpu_times()._fields, 0.0))
        self.readings = [blank._replace(**reading) for reading in readings]

    def __call__(self) -> object:
        return self.readings.pop(0)


def test_busy_is_total_less_idle_and_iowait_and_guest_is_not_counted_twice(tmp_path: Path) -> None:
    clock = Clock()
    counters = Counters(
        {"user": 100.0, "idle": 100.0},
        # +30 user (of which 10 guest, already inside user), +10 iowait, +60 idle
        {"user": 130.0, "guest": 10.0, "iowait": 10.0, "idle": 160.0},
    )
    sampler = HostSampler(tmp_path, monotonic=clock, cpu_times=counters)
    clock.now += 1.0
    assert sampler.sample().cpu_percent == 30.0


def test_counters_going_back_are_no_interval(tmp_path: Path) -> None:
    clock = Clock()
    counters = Counters(
        {"user": 500.0, "idle": 500.0},
        {"user": 10.0, "idle": 10.0},  # a restored VM: everything went back
        {"user": 15.0, "idle": 25.0},  # measured from the new start: 5 busy of 20
        {"user": 20.0, "idle": 24.0},  # one field a little back (a kernel glitch): counted as 0, not -1
    )
    sampler = HostSampler(tmp_path, monotonic=clock, cpu_times=counters)
    clock.now += 1.0
    assert sampler.sample().cpu_percent is None
    clock.now += 1.0
    assert sampler.sample().cpu_percent == 25.0
    clock.now += 1.0
    assert sampler.sample().cpu_percent == 100.0


def test_no_tick_counted_is_no_reading(tmp_path: Path) -> None:
    clock = Clock()
    same = {"user": 100.0, "idle": 100.0}
    counters = Counters(same, same, {"user": 101.0, "idle": 101.0})
    sampler = HostSampler(tmp_path, monotonic=clock, cpu_times=counters)
    clock.now += 1.0
    assert sampler.sample().cpu_percent is None  # the counters did not move: not an idle 0.0
    clock.now += 1.0
    assert sampler.sample().cpu_percent == 50.0  # the baseline was kept, so this spans both seconds


def test_failed_reading_after_priming_is_unknown_and_keeps_the_baseline(tmp_path: Path) -> None:
    clock = Clock()
    readings: list[object] = [{"user": 0.0, "idle": 0.0}, OSError("simulated"), {"user": 1.0, "idle": 3.0}]
    blank = psutil.cpu_times()._replace(**dict.fromkeys(psutil.cpu_times()._fields, 0.0))

    def cpu_times() -> object:
        value = readings.pop(0)
        if isinstance(value, Exception):
            raise value
        return blank._replace(**value)  # type: ignore[arg-type]

    sampler = HostSampler(tmp_path, monotonic=clock, cpu_times=cpu_times)
    clock.now += 1.0
    assert sampler.sample().cpu_percent is None
    clock.now += 1.0
    assert sampler.sample().cpu_percent == 25.0
