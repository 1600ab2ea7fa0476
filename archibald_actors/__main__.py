"""The ``archibald-sync`` command line (``python -m archibald_actors``): serve, token, simulate.

Exit codes: 0 success (also after SIGINT/SIGTERM), 1 a failure while running (the store
cannot be opened, the port is taken), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence

from archibald_actors.cli import (
    DEFAULT_DB,
    DEFAULT_SCHEMA,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    HOW_TO_SET_SECRET,
    KNOWN_ROLES,
    SECRET_ENV,
    TOKEN_TTL,
    CliError,
    jwt_secret,
    make_clock,
    open_store,
    package_version,
    without_password,
)
from archibald_actors.handlers.demo_agents import MAX_DEMO_AGENTS
from archibald_actors.planning.command import simulate_command
from archibald_actors.planning.sandbox import MAX_HOURS
from archibald_actors.serve import serve_command

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_SCHEMA",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "HOW_TO_SET_SECRET",
    "SECRET_ENV",
    "CliError",
    "build_parser",
    "jwt_secret",
    "main",
    "make_clock",
    "open_store",
    "without_password",
]

log = logging.getLogger("archibald_actors.cli")

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


def _count(high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not 0 <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from 0 to {high}, got {value}")
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``archibald-sync`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="archibald-sync",
        description="Staggered, serialized, supervised ERP syncs on pykka actors, with an HTTP API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
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
        "--demo-agents",
        type=_count(MAX_DEMO_AGENTS),
        default=0,
        metavar="N",
        help="create N demo agents (agent-001 ...) at start if absent, and run orders, customers, "
        "ddt and invoices per agent unless --config says otherwise; a few need a login, a few "
        f"fail now and then (chosen by --seed); 0 to {MAX_DEMO_AGENTS} (default %(default)s)",
    )
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
    serve.set_defaults(run=serve_command)

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
        description="Drive the real actors on a ManualClock with handlers of realistic durations "
        "(the demo's, or duration_seconds of --config); print every run and, per type, how long "
        "requests waited behind others. With --suggest, search start delays that wait less.",
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
    sim.add_argument(
        "--agents",
        type=_count(MAX_DEMO_AGENTS),
        default=0,
        metavar="N",
        help="demo agents in the store: a per-agent type runs one job per agent (default %(default)s)",
    )
    sim.add_argument(
        "--max-concurrent",
        type=_number(0, 64, whole=True),
        default=None,
        metavar="N",
        help="jobs that may run at once, never two on one lane; 1 to 64 (default: the config's "
        "max_concurrent, else 1)",
    )
    sim.add_argument("--json", action="store_true", help="print one JSON document (runs, collisions, waits)")
    sim.add_argument(
        "--suggest",
        action="store_true",
        help="search start delays (same intervals) that lower the waits, highest priority first, "
        "and print them with the waits before and after",
    )
    sim.set_defaults(run=simulate_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliError as exc:
        print(f"archibald-sync {args.command}: {exc}", file=sys.stderr)
        return exc.code


# --- token ---------------------------------------------------------------


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


if __name__ == "__main__":
    sys.exit(main())
