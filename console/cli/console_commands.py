"""``fleetdeck`` / ``fleetdeck demo`` (the console itself) and ``fleetdeck snapshot`` (a screen rendered
headless to .svg or .txt)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError
from console.cli.node_choice import links_of, load_config_of
from console.core.clock import FrozenClock, SystemClock


def console(args: argparse.Namespace) -> int:
    from console.app import FleetDeckApp
    from console.core.paths import user_themes_dir

    config = load_config_of(args)
    clock = SystemClock()
    links = links_of(args, config, clock, demo=args.command == "demo" or args.demo)
    app = FleetDeckApp(
        links,
        config=config,
        clock=clock,
        theme=args.theme,
        user_themes_dir=user_themes_dir(),
        tune_gc=True,
    )
    app.run()
    return EXIT_OK


def snapshot(args: argparse.Namespace) -> int:
    from console.snapshot import render_snapshot

    config = load_config_of(args)
    output = Path(args.output)
    if output.suffix.lower() not in (".svg", ".txt"):
        raise CliError(f"output must end in .svg or .txt, got {output.name!r}", EXIT_USAGE)
    at = args.at if args.at is not None else float(int(SystemClock()()))
    clock = FrozenClock(at)
    links = links_of(args, config, clock, demo=args.demo)
    text = asyncio.run(
        render_snapshot(
            links,
            config=config,
            clock=clock,
            screen=args.screen,
            size=args.size,
            fmt=output.suffix.lower()[1:],
            theme=args.theme,
        )
    )
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}", EXIT_USAGE) from None
    return EXIT_OK
