"""``fleetdeck node serve`` and ``fleetdeck node token``: this machine's node (or any configured node, or a
demo node) over HTTP for remote consoles, dashboards and Prometheus.

Only argparse is imported at module level: the parser is built on every ``fleetdeck`` start, and starlette,
uvicorn and prometheus-client are needed only once a server really starts.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from console.cli import EXIT_OK, EXIT_USAGE, CliError, _positive

if TYPE_CHECKING:
    from backends.base import Backend

DEFAULT_LISTEN = "127.0.0.1:8765"


def add_node_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser(
        "node", help="serve a node over HTTP (`node serve`), make API tokens (`node token`)"
    )
    actions = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)

    serve = actions.add_parser(
        "serve",
        help="serve this machine's node (or --node NAME, or --demo) as the fleetdeck HTTP API",
        description="Serve a node as the fleetdeck HTTP API (see backends/node_api.py). Without --tokens the "
        "server listens on loopback only and every caller is an operator; with --tokens each caller needs "
        "a bearer token, whose name the audit trail records.",
    )
    serve.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}; port 0: any"
    )
    serve.add_argument("--tokens", metavar="FILE", help="tokens file (TOML [[tokens]]: name, role, sha256)")
    serve.add_argument("--certfile", metavar="FILE", help="TLS certificate (PEM); needs --keyfile")
    serve.add_argument("--keyfile", metavar="FILE", help="TLS private key (PEM); needs --certfile")
    serve.add_argument("--state-dir", help="the local node's state directory (default: as `fleetdeck run`)")
    serve.add_argument("--node", metavar="NAME", help="serve this configured node instead of the local one")
    serve.add_argument("--demo", action="store_true", help="serve one node of the seeded demo fleet")
    serve.add_argument("--seed", type=int, default=7, help="with --demo: the fleet's seed (default 7)")
    serve.add_argument(
        "--demo-node", type=_positive(int, 1, 3), default=1, help="with --demo: which node, 1..3 (default 1)"
    )
    serve.add_argument(
        "--agents",
        type=_positive(int, 1, 10_000),
        help="with --demo: agents on the node (default: its share of 80)",
    )
    serve.add_argument(
        "--max-body", type=_positive(int, 1024, 64 * 1024 * 1024), default=64 * 1024, metavar="BYTES",
        help="largest request body accepted (default 65536)",
    )  # fmt: skip
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request to stderr")

    token = actions.add_parser("token", help="make a bearer token and add its sha256 to a tokens file")
    token.add_argument("name", metavar="NAME", help="who the token is for (the audit trail's operator)")
    token.add_argument("--role", choices=("viewer", "operator"), required=True, help="viewer: read only")
    token.add_argument("--tokens", metavar="FILE", required=True, help="tokens file (created with mode 0600)")


def run(args: argparse.Namespace) -> int:
    if args.node_command == "token":
        return token(args)
    return serve(args)


def token(args: argparse.Namespace) -> int:
    from backends.node_server.tokens import TokensError, add_token

    try:
        secret = add_token(args.tokens, args.name, args.role)
    except TokensError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"tokens file {args.tokens}: {exc.strerror or exc}", EXIT_USAGE) from None
    print(secret)  # the only time it is shown: the file keeps its sha256 only
    return EXIT_OK


def serve(args: argparse.Namespace) -> int:
    import asyncio

    from backends.errors import BackendError
    from backends.node_server.auth import is_loopback
    from backends.node_server.server import ServeError, check_tls, parse_listen
    from backends.node_server.tokens import TokensError, load_tokens

    try:
        listen = parse_listen(args.listen)
        tokens = load_tokens(args.tokens) if args.tokens else None
        if tokens is None and not is_loopback(listen.host):
            raise ServeError(
                f"refusing to listen on {listen} without --tokens: anyone who can reach it could act as an "
                "operator; make a tokens file with `fleetdeck node token` or listen on 127.0.0.1"
            )
        check_tls(args.certfile, args.keyfile)
        backend = _backend(args)
        asyncio.run(_serve(args, listen, tokens, backend))
    except (ServeError, TokensError) as exc:
        raise CliError(str(exc), getattr(exc, "exit_code", EXIT_USAGE)) from None
    except BackendError as exc:
        raise CliError(f"cannot serve the node: {exc}", exc.exit_code) from None
    return EXIT_OK


async def _serve(args: argparse.Namespace, listen: object, tokens: object, backend: Backend) -> None:
    from backends.node_server.app import create_app
    from backends.node_server.server import bind, serve

    sock = bind(listen)  # type: ignore[arg-type]  # first: a port in use must not wait for the backend
    try:
        await backend.open()
        try:
            app = create_app(backend, tokens=tokens, max_body=args.max_body, open_backend=False)  # type: ignore[arg-type]
            await serve(
                app,
                sock,
                name=backend.info.name,
                certfile=args.certfile,
                keyfile=args.keyfile,
                access_log=not args.no_access_log,
            )
        finally:
            await backend.close()
    finally:
        sock.close()


def _backend(args: argparse.Namespace) -> Backend:
    """The node to serve: --demo, --node NAME (any backend), or this machine's local store."""
    chosen = [
        flag
        for flag, given in (("--demo", args.demo), ("--node", args.node), ("--state-dir", args.state_dir))
        if given
    ]
    if len(chosen) > 1:
        raise CliError(f"{' and '.join(chosen)} cannot be combined: pick the one node to serve", EXIT_USAGE)
    if args.demo:
        from backends.demo import DemoBackend

        return DemoBackend(seed=args.seed, node_index=args.demo_node - 1, agents=args.agents, clock=time.time)
    if args.agents is not None:
        raise CliError("--agents goes with --demo", EXIT_USAGE)

    from console.commands import _load
    from console.fleet_setup import SetupError, configured_links, local_link

    config = _load(args)
    try:
        if args.node:
            return configured_links(config, clock=time.time, only=[args.node])[0].backend
        return local_link(time.time, state_dir=args.state_dir, config=config).backend
    except SetupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
