"""The harness's report as a Markdown table: one row per figure, its target and whether it was met."""

from __future__ import annotations

import math
from typing import Any


def _number(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def markdown_table(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Run {report['started']} · {report['runs']} run(s) per scenario"
        + (" · quick mode" if report["quick"] else ""),
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}, Textual {machine['textual']}, "
        f"fleetdeck {machine['commit']}",
        "",
        "| Scenario | Figure | Median | Min – max | Target | Met |",
        "|---|---|---:|---:|---|:---:|",
    ]
    for name, scenario in report["scenarios"].items():
        targets = scenario["targets"]
        for key, figure in scenario["figures"].items():
            target = targets.get(key)
            met = "" if target is None else ("yes" if target["met"] else "**no**")
            spread = f"{_number(figure['min'])} – {_number(figure['max'])}"
            lines.append(
                f"| {name} | {key} | {_number(figure['median'])} | {spread} | "
                f"{target['label'] if target else ''} | {met} |"
            )
        for key, target in targets.items():
            if key not in scenario["figures"]:
                lines.append(f"| {name} | {key} | n/a | | {target['label']} | **no** |")
        measured = scenario.get("measured", {})
        if measured and measured.get("commit") != machine["commit"]:
            when = f"measured at fleetdeck {measured['commit']}, {measured['at']}"
            lines.append(f"| {name} | note | | | {when} | |")
        for note in scenario["notes"]:
            lines.append(f"| {name} | note | | | {note} | |")
        for error in scenario["errors"]:
            lines.append(f"| {name} | **run failed** | | | {error} | |")
    return "\n".join(lines) + "\n"
