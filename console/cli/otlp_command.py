"""``fleetdeck otlp``: receive OpenTelemetry (OTLP/HTTP) into this machine's store, with no node API; and
the receiver ``fleetdeck node serve --otlp [ADDR]`` runs beside the node API.

Only argparse at module level: protobuf, starlette and uvicorn load when a receiver really starts.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from console.cli.arg_types import bounded
from console.cli.exits import EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    import socket

    from backends.local.store import Store
    from backends.node_server.auth import LocalOperator
    from backends.node_server.server import Beside, Listen
    from backends.node_server.tokens import TokenBook

DEFAULT_OTLP_LISTEN = "127.0.0.1:4318"  # where OTLP/HTTP exporters send by default


def add_receiver_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-agents", type=bounded(int, 1, 1_000_000), default=1000, metavar="N",
        help="agents the receiver registers at most (default 1000); a client naming more is refused, and "
        "told so in the reply and an alert",
    )  # fmt: skip
    parser.add_argument(
        "--max-otlp-body", type=bounded(int, 1024, 256 * 1024 * 1024), default=16 * 1024 * 1024,
        metavar="BYTES", help="largest OTLP request body accepted, compressed (default 16 MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--max-otlp-pending", type=bounded(int, 1024, 1024 * 1024 * 1024), default=64 * 1024 * 1024,
        metavar="BYTES", help="request bytes waiting to be stored past which a sender is told to retry "
        "shortly (429 with Retry-After; default 64 MiB)",
    )  # fmt: skip
    parser.add_argument(
        "--otlp-mappers", type=bounded(int, 0, 16), default=None, metavar="N",
        help="processes that decode and map requests beside the one that stores them (default 1 where "
        "two cores or more are usable, else 0: the receiver's own thread)",
    )  # fmt: skip


def add_otlp_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    otlp = sub.add_parser(
        "otlp",
        help="receive OpenTelemetry (OTLP/HTTP traces, metrics, logs) into this machine's node",
        description="Receive OTLP/HTTP (protobuf or JSON, gzip or not) on /v1/traces, /v1/metrics and "
        "/v1/logs and keep it in the local node's store as agents, KPIs and log lines (docs/otel.md). "
        "Point exporters at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 and "
        'OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer <token>": without --tokens the local operator '
        "token ($XDG_STATE_HOME/fleetdeck/local-operator.token), with --tokens one of role reporter or "
        "operator. `fleetdeck node serve --otlp` runs the same receiver beside the node API.",
    )
    otlp.add_argument(
        "--listen", default=DEFAULT_OTLP_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_OTLP_LISTEN}"
    )
    otlp.add_argument("--tokens", metavar="FILE", help="tokens file (TOML [[tokens]]: name, role, sha256)")
    otlp.add_argument("--certfile", metavar="FILE", help="TLS certificate (PEM); needs --keyfile")
    otlp.add_argument("--keyfile", metavar="FILE", help="TLS private key (PEM); needs --certfile")
    otlp.add_argument(
        "--allow-plain-http",
        action="store_true",
        help="with --tokens on a non-loopback address: serve without TLS anyway",
    )
    otlp.add_argument("--state-dir", help="the local node's state directory (default: as `fleetdeck run`)")
    add_receiver_options(otlp)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from backends.local.store import Store, StoreError, default_state_dir
    from backends.local_token import LocalTokenError
    from backends.node_server.server import ServeError, bind, check_tls, parse_listen, url_of
    from backends.node_server.tokens import TokensError

    try:
        listen = parse_listen(args.listen)
        tokens, local = credentials(args.tokens, listen, args.certfile, args.allow_plain_http)
        check_tls(args.certfile, args.keyfile)
        sock = bind(listen)
    except (ServeError, TokensError, LocalTokenError) as exc:
        raise CliError(str(exc), getattr(exc, "exit_code", EXIT_USAGE)) from None
    try:
        with Store(args.state_dir or default_state_dir()) as store:
            app = receiver_app(store, args, tokens, local, str(listen))
            from backends.node_server.server import serve

            line = f"fleetdeck otlp: receiving on {url_of(sock, args.certfile is not None)}"
            asyncio.run(
                serve(
                    app, sock, name="otlp", certfile=args.certfile, keyfile=args.keyfile, access_log=False,
                    line=line,
                )
            )  # fmt: skip
    except StoreError as exc:
        raise CliError(f"cannot open the local store: {exc}", 1) from None
    except ServeError as exc:
        raise CliError(str(exc), exc.exit_code) from None
    finally:
        sock.close()
    return EXIT_OK


def credentials(
    tokens_file: str | None, listen: Listen, certfile: str | None, allow_plain_http: bool
) -> tuple[TokenBook | None, LocalOperator | None]:
    """A tokens file, or the owner's local operator token on loopback: as the node API takes them."""
    from backends.local_token import ensure_token, os_user, token_path
    from backends.node_server.auth import LocalOperator, is_loopback
    from backends.node_server.server import ServeError
    from backends.node_server.tokens import load_tokens

    tokens = load_tokens(tokens_file) if tokens_file else None
    if tokens is None and not is_loopback(listen.host):
        raise ServeError(
            f"refusing to receive on {listen} without --tokens: anyone who can reach it could write "
            "agents into this node; make a token with `fleetdeck node token NAME --role reporter` or "
            "listen on 127.0.0.1"
        )
    if tokens is not None and not is_loopback(listen.host) and certfile is None and not allow_plain_http:
        raise ServeError(
            f"refusing to take tokens on {listen} without TLS: give --certfile and --keyfile, or "
            "--allow-plain-http if the network is yours"
        )
    for warning in tokens.warnings if tokens is not None else ():
        print(f"fleetdeck otlp: warning: {warning}", file=sys.stderr, flush=True)
    local = None if tokens is not None else LocalOperator(ensure_token(), os_user(), str(token_path()))
    return tokens, local


def receiver_app(
    store: Store,
    args: argparse.Namespace,
    tokens: TokenBook | None,
    local: LocalOperator | None,
    listen: str,
) -> object:
    from backends.otlp.app import Receiver, create_receiver_app
    from backends.otlp.ingest import Ingestor
    from backends.otlp.mapper_pool import MapperPool
    from backends.otlp.self_report import ReceiverReport

    ingestor = Ingestor(store, max_agents=args.max_agents)
    report = ReceiverReport(store, listen=listen, max_agents=args.max_agents)
    receiver = Receiver(
        ingestor,
        max_body=args.max_otlp_body,
        max_pending_bytes=args.max_otlp_pending,
        report=report,
        mappers=MapperPool(args.otlp_mappers),
    )
    return create_receiver_app(receiver, tokens=tokens, local=local)


def beside_node(
    store: Store,
    args: argparse.Namespace,
    listen_text: str,
    tokens: TokenBook | None,
    local: LocalOperator | None,
    sock: socket.socket,
) -> Beside:
    """``node serve --otlp``: the receiver on its own (bound) socket, with the node API's credentials."""
    from backends.node_server.server import Beside, url_of

    app = receiver_app(store, args, tokens, local, listen_text)
    # not "NAME on URL": a script waiting for the node's startup line must never take this one for it
    line = f"fleetdeck node serve: also receiving OTLP at {url_of(sock, args.certfile is not None)}"
    return Beside(app, sock, line)


def bind_receiver(listen_text: str, with_tokens: bool) -> socket.socket:
    """The receiver's socket for ``node serve --otlp ADDR``, bound before anything waits (a port in use is
    one line at once); without tokens only on loopback, as the node API."""
    from backends.node_server.auth import is_loopback
    from backends.node_server.server import ServeError, bind, parse_listen

    listen = parse_listen(listen_text)
    if not with_tokens and not is_loopback(listen.host):
        raise ServeError(f"refusing to receive OTLP on {listen} without --tokens; listen on 127.0.0.1")
    return bind(listen)
