"""Run fleetdeck's benchmarks: every scenario, several runs each, each run in a fresh process.

    python -m benchmarks                 # the full set (about 20 minutes), figures to benchmarks/results.*
    python -m benchmarks --quick         # seconds per scenario, to keep the harness working (CI runs it)
    python -m benchmarks --only log_flood,startup --runs 5

Writes the figures (median, min and max over the runs, every run's value) with the machine to a JSON file
and the same as a Markdown table beside it, and prints the table. With ``--only``, the scenarios named
replace theirs in an existing report of the same mode and the others are kept, each with the commit and
time it was measured at. The exit status is 1 when a run failed, never because a target was missed: a
benchmark measures, it does not judge.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import describe_machine
from benchmarks.scenarios import SCENARIOS, load
from benchmarks.served_node import isolated_env
from benchmarks.table import markdown_table

HERE = Path(__file__).resolve().parent
RUN_TIMEOUT_S = {True: 180, False: 1200}  # by quick: a run that takes longer has hung


def run_once(name: str, quick: bool) -> tuple[dict[str, Any], str | None]:
    """One run in its own process: (figures, None) or ({}, what went wrong).

    Each run has a config and state home of its own: the console it measures reads no config of this
    machine's user and starts with an empty alert book, not with what earlier runs (or the user) left."""
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
        out = Path(tmp) / "figures.json"
        command = [sys.executable, "-m", "benchmarks.run_one", name, "--out", str(out)]
        if quick:
            command.append("--quick")
        try:
            done = subprocess.run(
                command,
                cwd=HERE.parent,
                env=isolated_env(Path(tmp) / "home"),
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S[quick],
            )
        except subprocess.TimeoutExpired:
            return {}, f"timed out after {RUN_TIMEOUT_S[quick]} s"
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            return {}, f"exit {done.returncode}: " + " | ".join(tail)
        return json.loads(out.read_text()), None


def summarise(name: str, runs: list[dict[str, Any]], errors: list[str]) -> dict[str, Any]:
    module = load(name)
    figures: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for run in runs:
        for key, value in run.items():
            if isinstance(value, str):
                if value not in notes:
                    notes.append(value)
            else:
                figures.setdefault(key, {"values": []})["values"].append(value)
    for entry in figures.values():
        values = [v for v in entry["values"] if v is not None and not math.isnan(v)]
        entry["median"] = statistics.median(values) if values else math.nan
        entry["min"] = min(values, default=math.nan)
        entry["max"] = max(values, default=math.nan)
    targets = {
        key: {
            "limit": target.limit,
            "label": target.label,
            "met": key in figures and target.met(figures[key]["median"]),
        }
        for key, target in module.TARGETS.items()
    }
    return {"title": module.TITLE, "figures": figures, "targets": targets, "notes": notes, "errors": errors}


def _kept(out: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """The report at ``out`` to update, if it was made in the same mode on this machine; else ``fresh``."""
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        return fresh
    same_machine = {k: v for k, v in old.get("machine", {}).items() if k != "commit"} == {
        k: v for k, v in fresh["machine"].items() if k != "commit"
    }
    if old.get("quick") != fresh["quick"] or old.get("runs") != fresh["runs"] or not same_machine:
        return fresh
    return {**old, "machine": fresh["machine"], "scenarios": old.get("scenarios", {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 3; 1 with --quick)")
    parser.add_argument("--only", help=f"comma-separated scenarios (of {', '.join(SCENARIOS)})")
    parser.add_argument("--out", type=Path, help="the JSON file (default benchmarks/results[-quick].json)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(SCENARIOS)
    for name in names:
        load(name)  # an unknown name fails before anything runs
    runs = args.runs or (1 if args.quick else 3)
    out = args.out or HERE / ("results-quick.json" if args.quick else "results.json")
    machine = describe_machine()
    report: dict[str, Any] = {
        "machine": machine,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": args.quick,
        "runs": runs,
        "scenarios": {},
    }
    if args.only:
        report = _kept(out, report)
    failed = False
    for name in names:
        results, errors = [], []
        for index in range(runs):
            print(f"{name}: run {index + 1} of {runs}", file=sys.stderr, flush=True)
            figures, error = run_once(name, args.quick)
            if error is None:
                results.append(figures)
            else:
                errors.append(error)
                print(f"{name}: run {index + 1} failed: {error}", file=sys.stderr, flush=True)
        failed = failed or bool(errors)
        summary = summarise(name, results, errors)
        summary["measured"] = {"at": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": machine["commit"]}
        report["scenarios"][name] = summary
        report["scenarios"] = {n: report["scenarios"][n] for n in SCENARIOS if n in report["scenarios"]}
        out.write_text(json.dumps(report, indent=2))  # after every scenario: a long run keeps what it has
    table = markdown_table(report)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"written to {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
