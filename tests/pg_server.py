"""The PostgreSQL server the tests use: where it is, and an admin connection that fails clearly."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

__all__ = ["PG_DSN", "admin_connection"]

#: The test server (CI starts it); override with ARCHIBALD_TEST_PG_DSN.
PG_DSN = os.environ.get("ARCHIBALD_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def admin_connection(suite: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection of the test itself; fails the test, naming ``suite``, if none."""
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {PG_DSN!r} ({exc}). The {suite} tests need a real server"
            " (CI starts one); start it or set ARCHIBALD_TEST_PG_DSN.",
            pytrace=False,
        )
