"""``fleetdeck config init|path|check``: write a starter config, say where it is, or check it by the rules
the console itself applies (keys, nodes, theme) without connecting to anything."""

from __future__ import annotations

import argparse
from pathlib import Path

from backends.safe_text import terminal_safe
from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError
from console.cli.node_choice import load_config_of
from console.core.clock import SystemClock
from console.core.config import Config, ConfigError, check_config, write_starter_config
from console.core.fleet_setup import SetupError, configured_links


def config(args: argparse.Namespace) -> int:
    from console.core import paths

    path = Path(args.config) if args.config else paths.config_file()
    if args.action == "path":
        print(path)
        return EXIT_OK
    if args.action == "init":
        try:
            written = write_starter_config(path, overwrite=args.force)
        except ConfigError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        print(f"wrote {written}")
        return EXIT_OK
    loaded = load_config_of(args)
    from console.app import binding_contexts
    from console.keys import clashes, default_keymap, normalised_keymap, unknown_actions
    from themes import load_themes

    contexts = binding_contexts()
    # Key clashes by the rules the console itself applies the keymap with (console.keys.find_clashes).
    problems = unknown_actions(loaded, default_keymap(contexts)) + check_config(loaded)
    problems += [f"keys: {clash}" for clash in clashes(contexts, normalised_keymap(loaded))]
    problems += _node_setup_problems(loaded)
    theme_names = {t.name for t in load_themes(paths.user_themes_dir())[0]}
    if loaded.theme not in theme_names:
        problems.append(f"theme: unknown theme {loaded.theme!r} (known: {', '.join(sorted(theme_names))})")
    for problem in problems:  # a problem quotes the file's own text back
        print(terminal_safe(f"{path}: {problem}"))
    if problems:
        return EXIT_USAGE
    exists = "" if path.exists() else " (no file: defaults)"
    print(terminal_safe(f"{path}: ok{exists} · {len(loaded.nodes)} node(s) · operator {loaded.operator}"))
    return EXIT_OK


def _node_setup_problems(config: Config) -> list[str]:
    """What would stop the console from starting on each node (a token variable not set, a token file
    missing), found by setting the node up exactly as the console does; nothing is connected to."""
    problems = []
    for index, node in enumerate(config.nodes):
        try:
            configured_links(config, clock=SystemClock(), only=[node.name])
        except SetupError as exc:
            problems.append(f"nodes[{index}]: {exc}")
    return problems
