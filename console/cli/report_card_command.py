"""``fleetdeck report-card``: the plan's state, KPI summaries, the alerts that fired and the operator
actions over a period, written as Markdown, a self-contained HTML page or JSON.

On the demo fleet with ``--seed`` and ``--at`` the file is the same, byte for byte, on every run: the
clock is frozen at ``--at`` (default: now, to the second) for the node and for the card alike.
Exit codes: 0 written, 1 the node refused or failed, 2 usage or config error, 3 unreachable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from console.core.report_card.card import ReportCard

FORMATS = ("md", "html", "json")
_SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".json": "json"}
DEMO_AGENTS = 34  # the demo node other one-node commands use (node_choice.single_link_of)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    card = sub.add_parser(
        "report-card",
        help="write the plan's state, KPIs, alerts and operator actions over a period (md, html, json)",
    )
    where = card.add_mutually_exclusive_group()
    where.add_argument("--node", help="a configured node (default: the only one, or the local node)")
    where.add_argument("--demo", action="store_true", help="the demo fleet's first node")
    card.add_argument("--state-dir", help="the local node's state directory")
    card.add_argument("--phase", metavar="ID", help="only this phase (default: every phase)")
    card.add_argument(
        "--since",
        default="7d",
        help="the period it covers, back from now: 90m, 1.5h, 24h, 7d, 2w (at most 366d)",
    )
    card.add_argument("--seed", type=int, default=7, help="demo fleet seed (default 7)")
    card.add_argument("--at", type=float, help="freeze the clock at this UTC epoch (deterministic)")
    card.add_argument("--format", choices=FORMATS, help="default: from the output file's suffix")
    card.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the card")


def report_card(args: argparse.Namespace) -> int:
    # imported here, not above: the parser imports this module on every start, even for --help
    from console.cli.node_calls import run_on_backend
    from console.cli.node_choice import load_config_of, single_link_of
    from console.core.clock import FrozenClock, SystemClock
    from console.core.fleet_setup import demo_links
    from console.core.report_card.build import gather, make_card
    from console.core.report_card.period import PeriodError, parse_period

    try:
        seconds = parse_period(args.since)
    except PeriodError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    output = Path(args.output)
    fmt = _format_of(args.format, output)
    config = load_config_of(args)
    clock = FrozenClock(args.at if args.at is not None else float(int(SystemClock()())))
    if args.demo:
        link = demo_links(seed=args.seed, nodes=1, agents=DEMO_AGENTS, clock=clock)[0]
    else:
        link = single_link_of(args, config, clock)
    end = clock()
    start = end - seconds
    gathered = run_on_backend(link.backend, lambda backend: gather(backend, start))
    if args.phase is not None and all(p.id != args.phase for p in gathered.snapshot.phases):
        known = ", ".join(p.id for p in gathered.snapshot.phases) or "none: no plan loaded"
        raise CliError(f"--phase {args.phase!r}: no such phase on {link.name} (phases: {known})", EXIT_FAILED)
    card = make_card(
        gathered,
        node=link.name,
        rules=config.kpis,
        period=args.since.strip(),
        start=start,
        end=end,
        phase_id=args.phase,
    )
    _write(output, _render(card, fmt))
    return EXIT_OK


def _format_of(given: str | None, output: Path) -> str:
    if given is not None:
        return given
    fmt = _SUFFIXES.get(output.suffix.lower())
    if fmt is None:
        raise CliError(
            f"--format md|html|json is needed: {output.name!r} does not end in .md, .html or .json",
            EXIT_USAGE,
        )
    return fmt


def _render(card: ReportCard, fmt: str) -> str:
    if fmt == "md":
        from console.core.report_card.markdown import render

        return render(card)
    if fmt == "html":
        from console.core.report_card.html import render as render_html

        return render_html(card)
    from console.core.report_card.card import to_json

    return to_json(card)


def _write(output: Path, text: str) -> None:
    """Write the whole card or nothing: a reader (a wiki sync, a CI artifact) never sees half of one."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {output}: {exc.strerror}", EXIT_USAGE) from None
