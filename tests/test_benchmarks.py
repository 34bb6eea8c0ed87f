"""The benchmark harness keeps working: its quick mode runs every scenario for real, for a few seconds each,
and writes figures that make sense. Times are never asserted here; what is checked is what must hold at any
speed (no line lost, no write refused, every figure present)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.scenarios import SCENARIOS, load

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.with_suffix(".md").exists()
    return json.loads(out.read_text())


def test_every_scenario_ran_and_met_its_figures(quick_report: dict) -> None:
    assert list(quick_report["scenarios"]) == list(SCENARIOS)
    assert quick_report["machine"]["cores"] >= 1
    for name, scenario in quick_report["scenarios"].items():
        assert scenario["errors"] == [], name
        for figure in load(name).TARGETS:
            if name == "peers" and figure not in scenario["figures"]:
                assert any("not installed" in note for note in scenario["notes"]), scenario["notes"]
                continue
            assert figure in scenario["figures"], (name, figure)
            assert not math.isnan(scenario["figures"][figure]["median"]), (name, figure)


def test_no_log_line_is_lost_and_no_store_write_refused(quick_report: dict) -> None:
    flood = quick_report["scenarios"]["log_flood"]["figures"]
    for case in ("demo", "http"):
        assert flood[f"{case}_lines_sent"]["median"] > 0
        assert flood[f"{case}_lines_lost"]["median"] == 0
        assert flood[f"{case}_lines_delivered"]["median"] == flood[f"{case}_lines_sent"]["median"]


def test_no_otlp_span_or_log_record_is_lost_or_stored_twice(quick_report: dict) -> None:
    otlp = quick_report["scenarios"]["otlp_ingest"]
    assert otlp["errors"] == []
    figures = {key: figure["median"] for key, figure in otlp["figures"].items()}
    assert figures["spans_sent"] > 0 and figures["logs_sent"] > 0
    assert figures["spans_stored"] == figures["spans_sent"]
    assert figures["logs_stored"] == figures["logs_sent"]
    assert figures["spans_lost"] == 0 and figures["logs_lost"] == 0
    assert figures["logs_stored_twice"] == 0
    assert figures["error_spans_sent"] > 0
    assert figures["error_spans_stored"] == figures["error_spans_sent"]
    assert figures["request_errors"] == 0
    assert figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert figures["requests"] > 0 and figures["receiver_rss_mb"] > 0


def test_the_table_names_the_machine_and_every_target(quick_report: dict, tmp_path: Path) -> None:
    from benchmarks.table import markdown_table

    table = markdown_table(quick_report)
    assert quick_report["machine"]["cpu"] in table
    for name in SCENARIOS:
        for target in load(name).TARGETS.values():
            assert target.label in table


def test_an_unknown_scenario_is_refused_before_anything_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "unknown scenario 'nonsense'" in done.stderr
