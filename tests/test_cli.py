"""The real command line, run as a subprocess (``python -m console``) with its own XDG directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import T0
from .conftest import one_line_error as _one_line_error

AT = str(int(T0))


# --- basics --------------------------------------------------------------------------------------------


def test_version(fleetdeck) -> None:
    from backends.package_version import package_version

    result = fleetdeck("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fleetdeck {package_version()}"
    assert package_version() != "0+unknown"


def test_help_lists_the_commands(fleetdeck) -> None:
    result = fleetdeck("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fleetdeck")
    for command in ("demo", "snapshot", "status", "config"):
        assert command in result.stdout


def test_unknown_command_is_a_usage_error(fleetdeck) -> None:
    result = fleetdeck("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "frobnicate" in result.stderr


# --- snapshot ------------------------------------------------------------------------------------------


def test_snapshot_text_is_deterministic(fleetdeck, tmp_path: Path) -> None:
    args = ("snapshot", "--demo", "--seed", "7", "--at", AT, "--screen", "node", "--size", "120x40")
    first = fleetdeck(*args, "-o", "a.txt")
    second = fleetdeck(*args, "-o", "b.txt")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    a = (tmp_path / "a.txt").read_text(encoding="utf-8")
    b = (tmp_path / "b.txt").read_text(encoding="utf-8")
    assert a == b
    lines = a.splitlines()
    assert len(lines) == 40
    assert max(len(line) for line in lines) == 120
    header = lines[1]
    assert "gpu-prod-01" in header and "PRODUCTION" in header
    assert "33/34 healthy" in header
    # below 140x36 the node panels are tabs, one key each
    assert "1 Agents  2 GPUs  3 Host  4 Plan  5 Logs" in a
    assert "─ Agents 33/34 healthy" in a


def test_snapshot_other_seed_differs(fleetdeck, tmp_path: Path) -> None:
    common = ("--demo", "--at", AT, "--screen", "fleet", "--size", "100x30")
    assert fleetdeck("snapshot", *common, "--seed", "7", "-o", "a.txt").returncode == 0
    assert fleetdeck("snapshot", *common, "--seed", "8", "-o", "b.txt").returncode == 0
    assert (tmp_path / "a.txt").read_text() != (tmp_path / "b.txt").read_text()


def test_snapshot_svg(fleetdeck, tmp_path: Path) -> None:
    args = ("--demo", "--at", AT, "--screen", "fleet", "--size", "100x30")
    result = fleetdeck("snapshot", *args, "-o", "f.svg")
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "f.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "gpu-prod-01" in svg


@pytest.mark.parametrize("size", ["12x40", "wide", "120x"])
def test_snapshot_bad_size(fleetdeck, tmp_path: Path, size: str) -> None:
    result = fleetdeck("snapshot", "--demo", "--size", size, "-o", "a.txt")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1
    assert "size" in errors[0] and size in errors[0]
    assert not (tmp_path / "a.txt").exists()


def test_snapshot_bad_output_suffix(fleetdeck, tmp_path: Path) -> None:
    result = fleetdeck("snapshot", "--demo", "--at", AT, "-o", "a.png")
    assert result.returncode == 2
    line = _one_line_error(result)
    assert "a.png" in line and ".svg" in line
    assert not (tmp_path / "a.png").exists()


# --- status --------------------------------------------------------------------------------------------


def test_status_exit_code_is_the_worst_alert(fleetdeck) -> None:
    text = fleetdeck("status", "--demo", "--at", AT)
    assert text.returncode in (1, 2)
    last = text.stdout.strip().splitlines()[-1]
    worst = "CRITICAL" if text.returncode == 2 else "WARNING"
    assert last == f"fleet: {worst}"

    as_json = fleetdeck("status", "--demo", "--at", AT, "--json")
    assert as_json.returncode == text.returncode
    report = json.loads(as_json.stdout)
    assert report["exit_code"] == as_json.returncode
    nodes = report["nodes"]
    assert isinstance(nodes, list)
    assert [n["name"] for n in nodes] == ["gpu-prod-01", "gpu-stage-02", "cpu-dev-03"]
    severities = {a["severity"] for n in nodes for a in n["alerts"]}
    expected = 2 if "critical" in severities else 1 if severities else 0
    assert as_json.returncode == expected
    assert report["state"] == {1: "warning", 2: "critical"}[expected]
    states = {n["state"] for n in nodes}
    assert report["state"] in states
    for node in nodes:
        assert 0 <= node["agents"]["healthy"] <= node["agents"]["total"]
        assert node["error"] is None


def test_status_json_is_deterministic(fleetdeck) -> None:
    first = fleetdeck("status", "--demo", "--at", AT, "--json")
    second = fleetdeck("status", "--demo", "--at", AT, "--json")
    assert json.loads(first.stdout) == json.loads(second.stdout)


# --- config --------------------------------------------------------------------------------------------


def test_config_init_check_and_no_overwrite(fleetdeck, cli_env: dict[str, str]) -> None:
    path = Path(cli_env["XDG_CONFIG_HOME"]) / "fleetdeck" / "config.toml"
    assert fleetdeck("config", "path").stdout.strip() == str(path)

    init = fleetdeck("config", "init")
    assert init.returncode == 0, init.stderr
    assert path.is_file()
    assert str(path) in init.stdout
    body = path.read_text(encoding="utf-8")

    check = fleetdeck("config", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith(f"{path}: ok · 1 node(s) · operator ")

    again = fleetdeck("config", "init")
    assert again.returncode == 2
    line = _one_line_error(again)
    assert str(path) in line and "exists" in line
    assert path.read_text(encoding="utf-8") == body  # untouched

    forced = fleetdeck("config", "init", "--force")
    assert forced.returncode == 0


def test_config_check_reports_a_rebinding_that_clashes(fleetdeck, tmp_path: Path) -> None:
    config = tmp_path / "keys.toml"
    config.write_text('[keys]\nquit = "x"\n', encoding="utf-8")
    result = fleetdeck("--config", str(config), "config", "check")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "'x'" in result.stdout and "quit" in result.stdout and "clear_filter" in result.stdout


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('refresh_s = "fast"\n', "refresh_s"),
        ('[[nodes]]\nname = "a"\nbackend = "demo"\nenvironment = "prod"\n', "nodes[0].environment"),
        ("refresh_s = 1.0\nrefrsh_s = 2.0\n", "refrsh_s"),
        ("refresh_s = \n", "line 1"),
    ],
    ids=["wrong-type", "bad-enum", "unknown-key", "bad-toml"],
)
@pytest.mark.parametrize(
    "command", [("config", "check"), ("status", "--demo", "--at", AT)], ids=["check", "status"]
)
def test_broken_config_is_one_line(
    fleetdeck, tmp_path: Path, body: str, key: str, command: tuple[str, ...]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(body, encoding="utf-8")
    result = fleetdeck("--config", str(bad), *command)
    assert result.returncode == 2
    line = _one_line_error(result)
    assert str(bad) in line
    assert key in line


def test_missing_config_file_is_an_error(fleetdeck, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = fleetdeck("--config", str(missing), "status", "--demo", "--at", AT)
    assert result.returncode == 2
    line = _one_line_error(result)
    assert str(missing) in line and "no such file" in line
    assert result.stdout == ""
