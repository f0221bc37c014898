"""The `campaigns` command."""

from __future__ import annotations

import argparse
import logging
import sys

from rollup.clickhouse import use_memory_plan
from rollup.config import Settings
from rollup.errors import RollupError

DESCRIPTION = """Real-time email campaign analytics: Kafka -> worker -> ClickHouse rollups ->
Tinybird-compatible API. Configuration comes from environment variables
(KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, CAMPAIGNS_DATA_DIR, CLICKHOUSE_URL,
CAMPAIGNS_API_HOST, CAMPAIGNS_API_PORT, CAMPAIGNS_ADMIN_TOKEN, ...; see README)."""


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("faust", "mode", "aiokafka", "kafka", "clickhouse_connect", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from campaigns import service
    from campaigns.compose import prepare, token_store

    run_worker = args.command in ("serve", "worker")
    run_api = args.command in ("serve", "api")
    if args.command != "serve" and settings.is_embedded:
        print("note: with embedded chDB only one process may open the data directory; "
              "use `campaigns serve` unless CLICKHOUSE_URL points to a server", file=sys.stderr)
    listener = None
    if run_api:  # before anything else starts: a busy port fails fast and cleanly
        from api.server import PortUnavailable, bind_listener

        try:
            listener = bind_listener(settings.api_host, settings.api_port)
        except PortUnavailable as exc:
            print(f"error: {exc.strerror}", file=sys.stderr)
            return 2
    token, created = prepare(settings)
    base = f"http://{settings.api_host}:{settings.api_port}"
    lines = [f"campaigns {args.command}: topic {settings.kafka_topic} on "
             f"{settings.kafka_bootstrap_servers}, ClickHouse {settings.effective_clickhouse_url}"]
    if run_api:
        # The token is printed once, when it is generated; never when it was configured.
        where = (f"generated: {token} (kept in {token_store(settings).path})"
                 if created else "CAMPAIGNS_ADMIN_TOKEN" if settings.admin_token
                 else "`campaigns token list`")
        lines += [f"API: {base}  (admin token: {where})",
                  f"try: curl -s '{base}/v0/pipes/campaign_stats.json' "
                  "-H \"Authorization: Bearer $TOKEN\""]
    return service.run(settings, run_worker, listener, "\n".join(lines))


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from rollup.clickhouse import connect
    from rollup.migrate import migrate

    applied = migrate(connect(settings.effective_clickhouse_url), settings.clickhouse_cluster)
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    return 0


def cmd_emit(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.emit import emit, read_ndjson
    from ingest.producer import EventProducer
    from ingest.synthetic import generate

    producer = EventProducer(settings.kafka_bootstrap_servers, settings.kafka_topic,
                             report_successes=False)
    if args.synthetic is not None:
        lines = generate(args.synthetic, campaigns=args.campaigns, seed=args.seed,
                         bad_ratio=args.bad_ratio)
        total: int | None = args.synthetic
    elif args.file in (None, "-"):
        lines, total = read_ndjson(sys.stdin.buffer), None
    else:
        handle = open(args.file, "rb")  # noqa: SIM115 - closed at process exit
        lines, total = read_ndjson(handle), None
    summary = emit(lines, producer, total=total, rate=args.rate, progress=not args.quiet)
    producer.close()
    print(summary.line())
    return 1 if summary.failed else 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from campaigns.compose import token_store

    store = token_store(settings)
    if args.token_command == "list":
        for token in store.tokens():
            print(f"{token.name}\t{','.join(token.scopes)}\t{token.token}")
        return 0
    if args.token_command == "create":
        try:
            token = store.create(args.name, args.scope)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(token.token)
        return 0
    if args.token_command == "jwt":
        from api.auth import mint_jwt

        fixed = {}
        for pair in args.fixed or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                print(f"error: --fixed takes NAME=VALUE, got {pair!r}", file=sys.stderr)
                return 2
            fixed[key] = value
        store.ensure_admin(settings.admin_token)
        print(mint_jwt(store, args.name, args.pipe, fixed, args.ttl, args.rps))
        return 0
    if store.revoke(args.name):
        print(f"revoked {args.name}")
        return 0
    print(f"error: no token named {args.name!r}", file=sys.stderr)
    return 1


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from campaigns.replay_client import replay_command

    return replay_command(settings, args.source)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campaigns", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="worker + API in one process (embedded chDB default)")
    sub.add_parser("worker", help="the ingest worker alone (ClickHouse server mode)")
    sub.add_parser("api", help="the HTTP API alone (ClickHouse server mode)")
    sub.add_parser("migrate", help="create/upgrade the ClickHouse schema (idempotent)")

    emit = sub.add_parser("emit", help="produce NDJSON or synthetic events to Kafka")
    emit.add_argument("file", nargs="?", help="NDJSON file, or - for stdin (default)")
    emit.add_argument("--synthetic", type=int, metavar="N", help="generate N events instead")
    emit.add_argument("--campaigns", type=int, default=10, metavar="K",
                      help="synthetic campaigns (default 10)")
    emit.add_argument("--seed", type=int, default=1, help="synthetic seed (default 1)")
    emit.add_argument("--rate", type=float, metavar="R", help="events per second cap")
    emit.add_argument("--bad-ratio", type=float, default=0.0,
                      help="share of deliberately bad rows in synthetic output")
    emit.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    replay = sub.add_parser("replay", help="rebuild rollups into shadow tables, then swap")
    replay.add_argument("--source", choices=["raw", "topic"], default="raw",
                        help="rebuild from the raw table (fast) or re-ingest the topic")

    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    token_sub.add_parser("list", help="list tokens")
    create = token_sub.add_parser("create", help="create a token")
    create.add_argument("name")
    create.add_argument("--scope", action="append", required=True,
                        help="ADMIN, PIPES:READ:<pipe>, DATASOURCES:APPEND:email_events, "
                             "DATASOURCES:READ:email_events (repeatable)")
    jwt = token_sub.add_parser(
        "jwt", help="sign a Tinybird-style JWT (pipe reads, optionally pinned parameters)")
    jwt.add_argument("name")
    jwt.add_argument("--pipe", action="append", required=True,
                     help="a pipe the JWT may read (repeatable)")
    jwt.add_argument("--fixed", action="append", metavar="NAME=VALUE",
                     help="pin a parameter, e.g. campaign_id=camp_1 (repeatable)")
    jwt.add_argument("--ttl", type=int, default=3600,
                     help="seconds until it expires (default 3600)")
    jwt.add_argument("--rps", type=int, help="requests per second limit")
    revoke = token_sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _logging(args.verbose)
    handlers = {
        "serve": cmd_serve, "worker": cmd_serve, "api": cmd_serve, "migrate": cmd_migrate,
        "emit": cmd_emit, "token": cmd_token, "replay": cmd_replay,
    }
    try:
        settings = Settings.from_env()
        use_memory_plan(settings.memory_plan)  # CAMPAIGNS_MEMORY_MB, for every client
        return handlers[args.command](args, settings)
    except RollupError as exc:  # configuration, a busy store, an unreachable broker
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
