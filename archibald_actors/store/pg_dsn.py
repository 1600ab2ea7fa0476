"""libpq connection strings for ``PostgresStore``: parsing, describing without the password, as a URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from archibald_actors.errors import InvalidValueError

__all__ = ["conninfo", "describe", "postgres_url"]


def describe(dsn: str, schema: str) -> str:
    """Where the store lives, for messages: host, port, database and schema, never the password.

    Raises:
        InvalidValueError: ``dsn`` is not a valid connection string.
    """
    info = conninfo(dsn)
    parts = [f"{key}={info[key]}" for key in ("host", "port", "dbname", "user") if info.get(key)]
    return " ".join([*parts, f"schema={schema}"])


def conninfo(dsn: str) -> dict[str, Any]:
    """The parameters of a libpq connection string or URI.

    Raises:
        InvalidValueError: ``dsn`` is not a valid connection string.
    """
    try:
        return conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise InvalidValueError("dsn", f"is not a valid connection string: {exc}") from exc


def postgres_url(dsn: str) -> str:
    """A libpq DSN (``key=value`` pairs or a URL) as the ``postgresql://`` URL ``serve --db`` takes.

    ``archibald-sync serve --db`` tells PostgreSQL from SQLite by the URL scheme, so a
    ``key=value`` DSN must become a URL first. A ``postgresql://`` or ``postgres://`` URL is
    returned unchanged. Of ``key=value`` pairs, user, password, host, port and dbname are
    kept (user and password percent-encoded) and the rest dropped; missing ones default to
    user ``postgres``, no password, host ``127.0.0.1``, port 5432 and database ``postgres``.

    Raises:
        InvalidValueError: ``dsn`` is not a valid connection string.
    """
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    info = conninfo(dsn)
    auth = quote(str(info.get("user", "postgres")), safe="")
    if info.get("password"):
        auth += ":" + quote(str(info["password"]), safe="")
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    return f"postgresql://{auth}@{host}:{port}/{info.get('dbname', 'postgres')}"
