"""Fixtures of the cluster tests: the real PostgreSQL server, one schema per test, no leaked threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from pg_server import PG_DSN, admin_connection
from psycopg import sql

from archibald_actors.cluster import ChangeListener, Leadership

from .support import Transitions

_THREAD_PREFIX = "archibald-"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread of ours (``archibald-*``) running."""
    yield
    leaked = [t.name for t in threading.enumerate() if t.name.startswith(_THREAD_PREFIX) and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def admin() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection of the test itself (to look at locks and terminate backends)."""
    with admin_connection("cluster") as conn:
        yield conn


@pytest.fixture
def schema(admin: psycopg.Connection[tuple[Any, ...]]) -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped afterwards."""
    name = f"c_{uuid4().hex[:8]}"
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def make_leadership(schema: str) -> Iterator[Callable[..., tuple[Leadership, Transitions]]]:
    """Start ``Leadership`` instances on the test's schema; all are stopped afterwards."""
    made: list[Leadership] = []

    def make(dsn: str = PG_DSN, **options: Any) -> tuple[Leadership, Transitions]:
        seen = Transitions()
        leadership = Leadership(
            dsn, schema, on_elected=seen.on_elected, on_deposed=seen.on_deposed, **options
        )
        made.append(leadership)
        leadership.start()
        return leadership, seen

    yield make
    for leadership in made:
        leadership.stop(timeout=5.0)


@pytest.fixture
def make_listener(schema: str) -> Iterator[Callable[..., ChangeListener]]:
    """Start ``ChangeListener`` instances on the test's schema; all are stopped afterwards."""
    made: list[ChangeListener] = []

    def make(on_change: Callable[[str, dict[str, Any]], None], **options: Any) -> ChangeListener:
        listener = ChangeListener(PG_DSN, schema, on_change=on_change, **options)
        made.append(listener)
        listener.start()
        return listener

    yield make
    for listener in made:
        listener.stop(timeout=5.0)
