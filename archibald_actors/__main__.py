"""The ``archibald-sync`` command line (``python -m archibald_actors``): serve, token, simulate.

Exit codes: 0 success (also after SIGINT/SIGTERM), 1 a failure while running (the store
cannot be opened, the port is taken), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from archibald_actors.clock import ManualClock, ScaledClock, SystemClock
from archibald_actors.config import ConfigError, load_config
from archibald_actors.errors import InvalidValueError, StoreError
from archibald_actors.events import RUN_END_EVENTS, Event
from archibald_actors.handlers.demo import demo_handlers
from archibald_actors.schedule import DEFAULT_SCHEDULE
from archibald_actors.service import SyncService
from archibald_actors.simulate import MAX_HOURS, format_report, simulate

if TYPE_CHECKING:
    from archibald_actors.store.base import Store

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_SCHEMA",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "SECRET_ENV",
    "CliError",
    "build_parser",
    "jwt_secret",
    "main",
    "make_clock",
    "open_store",
]

log = logging.getLogger("archibald_actors.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
SECRET_ENV = "ARCHIBALD_JWT_SECRET"
MIN_SECRET_BYTES = 32
DEFAULT_DB = "./archibald-sync.db"
#: The PostgreSQL schema of ``serve --db postgresql://...``; replicas sharing one form a cluster.
DEFAULT_SCHEMA = "archibald"
#: Lifetime of the admin token ``serve`` prints, and the default of ``token --ttl``.
TOKEN_TTL = 8 * 3600
#: Roles the API knows: "admin" may write, "agent" reads; ``token`` refuses others unless told.
KNOWN_ROLES = ("admin", "agent")
HOW_TO_SET_SECRET = f"export {SECRET_ENV}=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
#: Real seconds ``serve`` waits for the clock's thread after the service stopped.
_JOIN_TIMEOUT = 5.0


class CliError(Exception):
    """A problem the command line reports on stderr before exiting with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def jwt_secret(environ: Mapping[str, str] | None = None) -> str:
    """The token signing secret from ``ARCHIBALD_JWT_SECRET``.

    Raises:
        CliError: unset, or shorter than 32 bytes; the message says how to set it.
    """
    secret = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if not secret:
        problem = f"{SECRET_ENV} is not set"
    elif len(secret.encode()) < MIN_SECRET_BYTES:
        problem = f"{SECRET_ENV} is only {len(secret.encode())} bytes long"
    else:
        return secret
    raise CliError(
        f"{problem}; it signs the API tokens and must be at least {MIN_SECRET_BYTES} bytes. "
        f"Set it, for example:\n  {HOW_TO_SET_SECRET}"
    )


def make_clock(speed: float) -> SystemClock:
    """``SystemClock()`` at speed 1, else ``ScaledClock(speed)``."""
    return SystemClock() if speed == 1 else ScaledClock(speed)


def open_store(db: str, schema: str = DEFAULT_SCHEMA) -> Store:
    """A ``PostgresStore`` for a ``postgresql://`` (or ``postgres://``) URL, else a ``SqliteStore`` file.

    Args:
        db: the SQLite file or the PostgreSQL URL.
        schema: the PostgreSQL schema holding the tables (ignored for SQLite).

    Raises:
        CliError: ``schema`` is not a valid PostgreSQL identifier.
    """
    if db.startswith(("postgresql://", "postgres://")):
        from archibald_actors.store.postgres import PostgresStore  # noqa: PLC0415 (needs psycopg)

        try:
            return PostgresStore(db, schema)
        except InvalidValueError as exc:
            raise CliError(f"--db or --schema: {exc}") from None
    from archibald_actors.store.sqlite import SqliteStore  # noqa: PLC0415

    return SqliteStore(db)


# --- argument types -----------------------------------------------------------------


def _number(low: float, high: float, *, whole: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        if not math.isfinite(value) or not low < value <= high:
            raise argparse.ArgumentTypeError(f"must be more than {low:g} and at most {high:g}, got {text}")
        return value

    return parse


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {port}")
    return port


def _package_version() -> str:
    try:
        return version("archibald-actors")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``archibald-sync`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="archibald-sync",
        description="Staggered, serialized, supervised ERP syncs on pykka actors, with an HTTP API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the service and its HTTP API",
        description=f"Run the sync service with the demo handlers (or those of --config) and the "
        f"HTTP API. Needs {SECRET_ENV} (32+ bytes). Stops cleanly on SIGINT/SIGTERM.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=_port, default=8080, help="0 picks a free port (default %(default)s)")
    serve.add_argument(
        "--db",
        default=DEFAULT_DB,
        help="SQLite file, or a postgresql:// URL (default %(default)s)",
    )
    serve.add_argument(
        "--schema",
        default=DEFAULT_SCHEMA,
        metavar="NAME",
        help="PostgreSQL schema for a postgresql:// --db; replicas on one schema form a cluster "
        "(default %(default)s)",
    )
    serve.add_argument("--config", metavar="FILE", help="TOML file with per-type timing and handlers")
    serve.add_argument(
        "--speed",
        type=_number(0, 1e6),
        default=1.0,
        metavar="N",
        help="schedule time runs N times faster than real time (default 1)",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the demo handlers' durations")
    serve.add_argument(
        "--max-concurrent",
        type=_number(0, 64, whole=True),
        default=None,
        metavar="N",
        help="jobs that may run at once, never two on one lane (an agent's ERP session, or the "
        "service account's); 1 to 64 (default: the config's max_concurrent, else 1)",
    )
    serve.add_argument(
        "--stop-timeout",
        type=_number(0, 86400),
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, real seconds the whole shutdown may take: a running sync gets half "
        "of them to finish, then the rest to stop after being asked (default %(default)s)",
    )
    serve.add_argument(
        "--print-token",
        action="store_true",
        help="print a ready admin token at start even when stdout is not a terminal (it would "
        "otherwise end up in service logs)",
    )
    serve.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level on stderr (default %(default)s)",
    )
    serve.set_defaults(run=_cmd_serve)

    token = commands.add_parser(
        "token",
        help="print an API token",
        description=f"Print a token signed with {SECRET_ENV} (HS256).",
    )
    token.add_argument(
        "--role",
        required=True,
        help=f'one of {", ".join(KNOWN_ROLES)}: "admin" may change the schedule, "agent" reads',
    )
    token.add_argument(
        "--any-role",
        action="store_true",
        help="sign a role that is not one of those (such a token only reads)",
    )
    token.add_argument("--sub", required=True, metavar="NAME", help="the user the token names")
    token.add_argument("--username", help="display name (default: the --sub value)")
    token.add_argument(
        "--ttl",
        type=_number(0, 366 * 86400, whole=True),
        default=TOKEN_TTL,
        metavar="SECONDS",
        help="lifetime in seconds (default %(default)s)",
    )
    token.set_defaults(run=_cmd_token)

    sim = commands.add_parser(
        "simulate",
        help="run the real actors on a simulated clock and print the timeline",
        description="Drive the real actors on a ManualClock with demo handlers of realistic "
        "durations; print every run and, per type, how long requests waited behind others.",
    )
    sim.add_argument(
        "--hours",
        type=_number(0, MAX_HOURS),
        default=3.0,
        metavar="H",
        help="simulated hours (default %(default)g)",
    )
    sim.add_argument("--seed", type=int, default=0, help="seed of the durations (default %(default)s)")
    sim.add_argument("--config", metavar="FILE", help="TOML file whose table (and types) to simulate")
    sim.set_defaults(run=_cmd_simulate)
    return parser


def _without_password(db: str) -> str:
    """``--db`` as it may be printed: a URL's password replaced by ``***``."""
    parts = urlsplit(db)
    if parts.password is None:
        return db
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliError as exc:
        print(f"archibald-sync {args.command}: {exc}", file=sys.stderr)
        return exc.code


# --- token and simulate ---------------------------------------------------------------


def _cmd_token(args: argparse.Namespace) -> int:
    from archibald_actors.web.auth import make_token  # noqa: PLC0415 (the web layer is heavier)

    if args.role not in KNOWN_ROLES and not args.any_role:
        # A typo like "admn" would otherwise make a token that silently only reads.
        raise CliError(
            f"--role {args.role!r} is not a known role ({', '.join(KNOWN_ROLES)}); "
            "pass --any-role to sign it anyway (such a token only reads)"
        )
    secret = jwt_secret()
    print(make_token(secret, role=args.role, sub=args.sub, username=args.username, ttl=args.ttl))
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    schedule = None
    if args.config:
        try:
            schedule = load_config(args.config, clock=ManualClock()).schedule
        except ConfigError as exc:
            raise CliError(str(exc)) from None
    sys.stdout.write(format_report(simulate(args.hours, seed=args.seed, schedule=schedule)))
    return EXIT_OK


# --- serve ----------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    from archibald_actors.web import create_app, make_token  # noqa: PLC0415 (only serve needs the web layer)

    secret = jwt_secret()
    clock = make_clock(args.speed)
    schedule = DEFAULT_SCHEDULE
    handlers = demo_handlers(seed=args.seed, clock=clock)
    max_concurrent = 1
    if args.config:
        # Like other app servers, resolve "package.module:function" from the working directory too.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            config = load_config(args.config, clock=clock)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        schedule = config.schedule
        max_concurrent = config.max_concurrent or max_concurrent
        # A type the config adds gets a demo handler too, unless the config names one.
        handlers = {**demo_handlers(seed=args.seed, clock=clock, sync_types=schedule), **config.handlers}
    if args.max_concurrent is not None:  # the command line wins over the file
        max_concurrent = int(args.max_concurrent)
    store = open_store(args.db, args.schema)
    service = SyncService(
        handlers, clock=clock, schedule=schedule, store=store, max_concurrent=max_concurrent
    )
    service.events.subscribe(_log_run)
    # SIGTERM lets the running sync finish (within the stop timeout); nothing queued is lost.
    app = create_app(service, secret=secret, drain=True, stop_timeout=args.stop_timeout)
    announce = [
        f"archibald-sync {_package_version()}: store {_without_password(args.db)}, speed {args.speed:g}x, "
        f"handlers: {_describe_handlers(handlers)}",
        f"admin token (valid {TOKEN_TTL // 3600} h): {make_token(secret, role='admin', sub='admin')}"
        if args.print_token or sys.stdout.isatty()
        else "make an admin token with: archibald-sync token --role admin --sub NAME",
    ]
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(app, args.host, args.port, announce))
    except StoreError as exc:
        raise CliError(f"the store cannot be opened: {exc}", EXIT_FAILURE) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_FAILURE) from None
    finally:
        clock.join(_JOIN_TIMEOUT)  # the service leaves the clock it was given running
    return EXIT_OK


def _log_run(event: Event) -> None:
    """Log each run's start and end (called on the publishing actor's thread; logging is thread-safe)."""
    kind = event["type"]
    if kind == "sync.started":
        log.info("%s sync started (%s)", event["syncType"], event["trigger"])
    elif kind in RUN_END_EVENTS:
        error = f": {event['error']}" if event.get("error") else ""
        level = logging.INFO if kind == "sync.completed" else logging.WARNING
        seconds = event["durationMs"] / 1000
        log.log(level, "%s sync %s after %.1f s%s", event["syncType"], event["outcome"], seconds, error)


def _describe_handlers(handlers: Mapping[str, Callable[..., object]]) -> str:
    return ", ".join(f"{t}={getattr(h, '__name__', type(h).__name__)}" for t, h in handlers.items())


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _serve(app: web.Application, host: str, port: int, announce: Sequence[str]) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down (the app's cleanup stops the service)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        # Where the loop cannot take signal handlers (Windows), Ctrl-C still ends asyncio.run.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)
    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runner.setup()  # starts the service (the app's cleanup_ctx)
        site = web.TCPSite(runner, host, port)
        await site.start()
        from archibald_actors.web import freeze_heap  # noqa: PLC0415 (only serve needs the web layer)

        freeze_heap()  # no full collection walks the start-up objects on the loop's thread
        bound = runner.addresses[0][1] if runner.addresses else port
        for line in announce:
            print(line, flush=True)
        print(f"listening on {_url(host, bound)}", flush=True)
        await stopping.wait()
        log.info("stopping: finishing requests and stopping the service")
    finally:
        await runner.cleanup()
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)


if __name__ == "__main__":
    sys.exit(main())
