"""The third-party backend in examples/ installs with pip and shows up in fleetdeck through its entry point.

It is installed for real (``pip install --target``, once for the module) into a folder of its own, and
fleetdeck runs in a subprocess with that folder on PYTHONPATH: the test environment is never changed, and
without the folder the same config names an unknown backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends import registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fleetdeck-backend-static"
FLEET_FILE = "lab-07.toml"  # shipped with the example


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built and installed by pip into a folder of its own."""
    work = tmp_path_factory.mktemp("example")
    source = work / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # Without build isolation pip builds with the setuptools installed here (the test extra brings `wheel`).
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return target


@pytest.fixture
def run(cli_env: dict[str, str], tmp_path: Path, installed: Path):
    """``fleetdeck ARGS`` with the installed example importable (or not, with ``plugin=False``)."""

    def fleetdeck(*args: str, plugin: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(cli_env)
        if plugin:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(installed), env.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, "-m", "console", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    return fleetdeck


def config(tmp_path: Path, body: str, name: str = "config.toml") -> str:
    shutil.copy(EXAMPLE / FLEET_FILE, tmp_path / FLEET_FILE)
    path = tmp_path / name
    path.write_text(f'[[nodes]]\nname = "lab-07"\nbackend = "static"\n{body}', encoding="utf-8")
    return str(path)


def test_the_package_registers_its_backend_by_entry_point(installed: Path) -> None:
    entry_points = list(installed.glob("fleetdeck_backend_static-*.dist-info/entry_points.txt"))
    assert len(entry_points) == 1
    text = entry_points[0].read_text(encoding="utf-8")
    assert "[fleetdeck.backends]" in text and "static = fleetdeck_static.backend:StaticBackend" in text
    assert "static" not in registry.available(), "the test environment itself is left as it was"


def test_config_check_accepts_an_entry_naming_it(run, tmp_path: Path) -> None:
    path = config(tmp_path, f'path = "{FLEET_FILE}"\npoll_s = 0.5\n')
    result = run("--config", path, "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{path}: ok") and "1 node(s)" in result.stdout

    unknown = run("--config", path, "config", "check", plugin=False)
    assert unknown.returncode == 2
    assert "nodes[0].backend: unknown backend 'static' (known: demo, http, local, ray)" in unknown.stderr


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (f'pth = "{FLEET_FILE}"\n', "nodes[0].pth: unknown key (did you mean path?)"),
        (f'path = "{FLEET_FILE}"\nurl = "http://x:1"\n', "nodes[0].url: unknown key"),
        ("", "nodes[0].path: required for backend 'static'"),
        (f'path = "{FLEET_FILE}"\npoll_s = 0\n', "nodes[0].poll_s: expected a number > 0.0"),
        ('path = "fleet.yaml"\n', "nodes[0].path: expected a .toml or .json file, got 'fleet.yaml'"),
    ],
    ids=["unknown", "another-backends-key", "required", "range", "problems"],
)
def test_its_options_are_checked_with_the_key_named(run, tmp_path: Path, body: str, words: str) -> None:
    path = config(tmp_path, body)
    result = run("--config", path, "config", "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path}: {words}" in result.stderr, result.stderr


def test_a_missing_fleet_file_is_a_setup_problem_naming_it(run, tmp_path: Path) -> None:
    path = config(tmp_path, 'path = "gone.toml"\n')
    result = run("--config", path, "config", "check")
    assert result.returncode == 2
    assert f"nodes[0]: node 'lab-07': fleet file {tmp_path / 'gone.toml'} does not exist" in (result.stdout)


def test_status_and_agents_show_its_agents(run, tmp_path: Path) -> None:
    path = config(tmp_path, f'path = "{FLEET_FILE}"\n')
    status = run("--config", path, "status")
    assert status.returncode == 2, status.stdout + status.stderr  # the file holds one failed agent
    assert status.stdout.startswith("lab-07 (dev): CRITICAL — 2/3 agents healthy, 1 GPUs")
    assert "agent:tester 01: exit code 1: 3 tests failed" in status.stdout

    agents = run("--config", path, "agents", "--node", "lab-07")
    assert agents.returncode == 0, agents.stderr
    # by name, and the id commands take beside it ("tester 01" is the agent tester-01)
    assert agents.stdout.splitlines()[0].split()[:4] == ["AGENT", "ID", "STATE", "HEALTH"]
    rows = {line.split()[2]: line.split()[3:5] for line in agents.stdout.splitlines()[1:]}
    assert rows == {
        "coder-01": ["running", "healthy"],
        "reviewer-01": ["idle", "healthy"],
        "tester-01": ["failed", "unhealthy"],
    }

    logs = run("--config", path, "logs", "--node", "lab-07")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [
        "2026-01-01T00:00:00Z INFO     coder-01: picked up issue-12",
        "2026-01-01T00:01:00Z ERROR    tester-01: exit code 1: 3 tests failed",
    ]


def test_snapshot_renders_its_node(run, tmp_path: Path) -> None:
    path = config(tmp_path, f'path = "{FLEET_FILE}"\n')
    out = tmp_path / "node.txt"
    result = run("--config", path, "snapshot", "--node", "lab-07", "--at", "1767225700", "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    screen = out.read_text(encoding="utf-8")
    assert "lab-07" in screen and "static · lab-07.example" in screen and "READ-ONLY" in screen
    for name in ("coder 01", "reviewer 01", "tester 01"):
        assert name in screen
    assert "refactoring the parser" in screen


FOLLOW_SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from backends.plugin import NodeSettings
from backends.registry import resolve

async def main(path):
    cls = resolve("static")  # found through the installed package's entry point
    node = NodeSettings(name="lab-07", backend_options=cls.Options(path=path, poll_s=0.05))
    backend = cls.from_config(node, clock=time.time)
    seen = []
    async def follow():
        async for record in backend.logs(follow=True):
            seen.append(record.message)
            if len(seen) == 3:
                return
    task = asyncio.create_task(follow())
    while len(seen) < 2:
        await asyncio.sleep(0.01)
    before = len((await backend.snapshot()).agents)
    text = path.read_text()
    new = path.with_suffix(".new")  # written whole, then renamed: a reader never sees half a file
    new.write_text(text + '[[logs]]\\nts = 1767225720\\nmessage = "a line appended"\\n'
                   + '[[agents]]\\nid = "late-01"\\nname = "late 01"\\n')
    new.replace(path)
    await asyncio.wait_for(task, 10)
    print(before, len((await backend.snapshot()).agents), seen[-1])

asyncio.run(main(Path(sys.argv[1])))
"""


def test_a_followed_log_and_the_snapshot_see_the_file_change(installed: Path, tmp_path: Path) -> None:
    shutil.copy(EXAMPLE / FLEET_FILE, tmp_path / FLEET_FILE)
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "-c", FOLLOW_SCRIPT, str(tmp_path / FLEET_FILE)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=2) == ["3", "4", "a line appended\n"]
