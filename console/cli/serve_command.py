"""``fleetdeck node serve`` and ``fleetdeck node token``: this machine's node (or any configured node, or a
demo node) over HTTP for remote consoles, dashboards and Prometheus.

Only argparse is imported at module level: the parser is built on every ``fleetdeck`` start, and starlette,
uvicorn and prometheus-client are needed only once a server really starts.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from console.cli.arg_types import bounded
from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError
from console.cli.otlp_command import DEFAULT_OTLP_LISTEN, add_receiver_options

if TYPE_CHECKING:
    from collections.abc import Sequence

    from backends.base import Backend
    from backends.node_server.metrics import KpiThreshold
    from console.core.kpi_rules import KpiRule

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
        "server listens on loopback only and answers only its owner, who sends the local operator token "
        "($XDG_STATE_HOME/fleetdeck/local-operator.token, made on the first start; the console and CLI "
        "read it); with --tokens each caller needs a bearer token, whose name the audit trail records.",
    )
    serve.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}; port 0: any"
    )
    serve.add_argument("--tokens", metavar="FILE", help="tokens file (TOML [[tokens]]: name, role, sha256)")
    serve.add_argument("--certfile", metavar="FILE", help="TLS certificate (PEM); needs --keyfile")
    serve.add_argument("--keyfile", metavar="FILE", help="TLS private key (PEM); needs --certfile")
    serve.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="with --tokens on a non-loopback address: serve without TLS anyway (tokens cross the network "
        "in clear text)",
    )
    serve.add_argument(
        "--header-timeout", type=bounded(float, 1, 600), default=10.0, metavar="SECONDS",
        help="close a connection whose request headers (or TLS handshake) take longer (default 10)",
    )  # fmt: skip
    serve.add_argument("--state-dir", help="the local node's state directory (default: as `fleetdeck run`)")
    serve.add_argument("--node", metavar="NAME", help="serve this configured node instead of the local one")
    serve.add_argument("--demo", action="store_true", help="serve one node of the seeded demo fleet")
    serve.add_argument("--seed", type=int, default=7, help="with --demo: the fleet's seed (default 7)")
    serve.add_argument(
        "--demo-node", type=bounded(int, 1, 3), default=1, help="with --demo: which node, 1..3 (default 1)"
    )
    serve.add_argument(
        "--agents",
        type=bounded(int, 1, 10_000),
        help="with --demo: agents on the node (default: its share of 80)",
    )
    serve.add_argument(
        "--max-body", type=bounded(int, 1024, 64 * 1024 * 1024), default=64 * 1024, metavar="BYTES",
        help="largest request body accepted (default 65536)",
    )  # fmt: skip
    serve.add_argument("--no-access-log", action="store_true", help="do not log each request to stderr")
    serve.add_argument(
        "--otlp", nargs="?", const=DEFAULT_OTLP_LISTEN, metavar="HOST:PORT",
        help=f"also receive OpenTelemetry (OTLP/HTTP) into the local node, on HOST:PORT (default "
        f"{DEFAULT_OTLP_LISTEN}), with the same tokens (see `fleetdeck otlp`)",
    )  # fmt: skip
    add_receiver_options(serve)

    token = actions.add_parser("token", help="make a bearer token and add its sha256 to a tokens file")
    token.add_argument("name", metavar="NAME", help="who the token is for (the audit trail's operator)")
    token.add_argument(
        "--role",
        choices=("viewer", "operator", "reporter"),
        required=True,
        help="viewer: read only; reporter: send telemetry to the OTLP receiver only",
    )
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
    from backends.local_token import LocalTokenError, ensure_token, os_user, token_path
    from backends.node_server.auth import LocalOperator, is_loopback
    from backends.node_server.idempotency import IdempotencyFileError
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
        plain_http = args.certfile is None and not args.allow_plain_http
        if tokens is not None and not is_loopback(listen.host) and plain_http:
            raise ServeError(
                f"refusing to serve tokens on {listen} without TLS: they would cross the network in "
                "clear text; give --certfile and --keyfile, or --allow-plain-http if the network is "
                "yours (a VPN, a tunnel)"
            )
        for warning in tokens.warnings if tokens is not None else ():
            print(f"fleetdeck node serve: warning: {warning}", file=sys.stderr, flush=True)
        local = None if tokens is not None else LocalOperator(ensure_token(), os_user(), str(token_path()))
        from console.cli.node_choice import load_config_of

        if args.otlp is not None and (args.demo or args.node):
            raise ServeError(
                "--otlp writes into this machine's local store: it goes with the local node, not --demo "
                "or --node"
            )
        backend = _backend(args)
        rules = () if args.demo else load_config_of(args).kpis  # the demo fleet: the built-in rules
        asyncio.run(_serve(args, listen, tokens, local, backend, rules))
    except (ServeError, TokensError, LocalTokenError, IdempotencyFileError) as exc:
        raise CliError(str(exc), getattr(exc, "exit_code", EXIT_USAGE)) from None
    except BackendError as exc:
        raise CliError(f"cannot serve the node: {exc}", exc.exit_code) from None
    return EXIT_OK


async def _serve(
    args: argparse.Namespace,
    listen: object,
    tokens: object,
    local: object,
    backend: Backend,
    rules: Sequence[KpiRule],
) -> None:
    from backends.node_server.app import create_app
    from backends.node_server.idempotency import IdempotencyStore, idempotency_file
    from backends.node_server.server import bind, serve
    from backends.safe_text import terminal_safe

    sock = bind(listen)  # type: ignore[arg-type]  # first: a port in use must not wait for the backend
    otlp_sock = None
    try:
        if args.otlp is not None:
            from console.cli.otlp_command import bind_receiver

            otlp_sock = bind_receiver(args.otlp, tokens is not None)
        await backend.open()
        from console.cli.node_calls import warn_if_interrupted

        await warn_if_interrupted(backend)  # a rollback killed half-way: say so before serving
        try:
            # beside the node's state, so a retry after a restart is a replay (opened after the backend:
            # a local node's state dir exists by then)
            idempotency = IdempotencyStore(idempotency_file(backend))
            try:
                app = create_app(
                    backend,
                    tokens=tokens,  # type: ignore[arg-type]
                    local=local,  # type: ignore[arg-type]
                    max_body=args.max_body,
                    idempotency=idempotency,
                    open_backend=False,
                    kpi_thresholds=_kpi_thresholds(rules, backend.info.name),
                )
                beside = []
                if otlp_sock is not None:
                    from backends.local.store import Store
                    from console.cli.otlp_command import beside_node

                    store = getattr(backend, "store", None)
                    assert isinstance(store, Store), "--otlp is refused for any node but the local one"
                    beside.append(beside_node(store, args, args.otlp, tokens, local, otlp_sock))  # type: ignore[arg-type]
                await serve(
                    app,
                    sock,
                    name=terminal_safe(backend.info.name),  # a served remote node names itself
                    certfile=args.certfile,
                    keyfile=args.keyfile,
                    access_log=not args.no_access_log,
                    header_timeout_s=args.header_timeout,
                    beside=beside,
                )
            finally:
                idempotency.close()
        finally:
            await backend.close()
    finally:
        sock.close()
        if otlp_sock is not None:
            otlp_sock.close()


def _kpi_thresholds(rules: Sequence[KpiRule], node: str) -> tuple[KpiThreshold, ...]:
    """The KPI rules as /metrics exports them: resolved for this node (per-label overrides vary by agent
    and stay in the console), as plain data, since backends never import the console."""
    from backends.node_server.metrics import KpiThreshold
    from console.core.kpi_rules import effective_rules, resolve

    resolved = (resolve(rule, node, {}) for rule in effective_rules(rules))
    return tuple(KpiThreshold(r.name, r.warn, r.crit, r.direction, r.unit, r.for_s) for r in resolved)


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

    from console.cli.node_choice import load_config_of
    from console.core.fleet_setup import SetupError, configured_links, local_link

    config = load_config_of(args)
    try:
        if args.node:
            return configured_links(config, clock=time.time, only=[args.node])[0].backend
        return local_link(time.time, state_dir=args.state_dir, config=config).backend
    except SetupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
