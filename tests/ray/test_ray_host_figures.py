"""Disk figures of a real local Ray head, as the ray backend reports them, against the real ``df``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from backends.plugin import NodeSettings
from backends.ray import RayBackend
from backends.ray.settings import RayOptions

from .conftest import RayHead

WAIT_S = 60.0  # a bound for the head's reporter to send its first summary, not a speed claim


def df_root() -> tuple[int, int, int]:
    """df's Use%, Avail and Size (bytes) of ``/``, the mount Ray's reporter sends for each machine."""
    out = subprocess.run(
        ["df", "--output=pcent,avail,size", "-B1", "/"], capture_output=True, text=True, check=True
    ).stdout
    pcent, avail, size = out.splitlines()[-1].split()
    return int(pcent.rstrip("%")), int(avail), int(size)


async def test_cluster_disk_is_what_df_says(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FD_RAY_TOKEN", ray_head.token)
    options = RayOptions(
        url=ray_head.url, token_env="FD_RAY_TOKEN", options={"state_dir": str(tmp_path / "ray")}
    )
    node = NodeSettings(name="cluster", backend_options=options)
    async with RayBackend.from_config(node, clock=time.time) as backend:
        deadline = time.monotonic() + WAIT_S
        system = (await backend.snapshot()).system
        while system.disk_total is None and time.monotonic() < deadline:  # the reporter has not spoken yet
            await asyncio.sleep(0.5)
            system = (await backend.snapshot()).system
    df_pct, df_avail, df_size = df_root()
    assert system.disk_total == df_size
    assert system.disk_available is not None and abs(system.disk_available - df_avail) <= 0.01 * df_size
    # the reporter samples every few seconds and the disk moves meanwhile: one percent point of slack
    assert system.disk_use_percent is not None and abs(system.disk_use_percent - df_pct) <= 1, system
