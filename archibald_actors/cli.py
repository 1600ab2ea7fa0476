"""What the ``archibald-sync`` commands share: exit codes, the token secret, the clock and the store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from archibald_actors.clock import ScaledClock, SystemClock
from archibald_actors.errors import InvalidValueError

if TYPE_CHECKING:
    from archibald_actors.store.base import Store

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_SCHEMA",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "HOW_TO_SET_SECRET",
    "KNOWN_ROLES",
    "SECRET_ENV",
    "TOKEN_TTL",
    "CliError",
    "jwt_secret",
    "make_clock",
    "open_store",
    "package_version",
    "without_password",
]

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


def package_version() -> str:
    """This package's installed version, or \"unknown\"."""
    try:
        return version("archibald-actors")
    except PackageNotFoundError:
        return "unknown"


def without_password(db: str) -> str:
    """``--db`` as it may be printed: a URL's password replaced by ``***``."""
    parts = urlsplit(db)
    if parts.password is None:
        return db
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
