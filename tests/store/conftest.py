"""Fixtures shared by the store tests: one parametrized backend, PostgreSQL schemas, run records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pg_server import PG_DSN, admin_connection
from psycopg import sql

from archibald_actors.domain import Outcome, RunRecord, Trigger
from archibald_actors.store import MemoryStore, PostgresStore, SqliteStore

from .support import T0, Backend


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name for one test; the schema is dropped afterwards."""
    schema = f"t_{uuid4().hex[:8]}"
    with admin_connection("store") as admin:
        try:
            yield schema
        finally:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _make_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if name == "memory":
        memory = MemoryStore()
        return Backend(name, lambda: memory)
    if name == "sqlite":
        path = tmp_path / "state.db"
        return Backend(name, lambda: SqliteStore(path))
    schema: str = request.getfixturevalue("pg_schema")
    return Backend(name, lambda: PostgresStore(PG_DSN, schema=schema))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every ``Store`` implementation, each on a fresh file or schema."""
    made = _make_backend(request.param, tmp_path, request)
    try:
        yield made
    finally:
        made.close_all()


@pytest.fixture(params=["sqlite", "postgres"])
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The stores that outlive the process (and offer the cluster methods)."""
    made = _make_backend(request.param, tmp_path, request)
    try:
        yield made
    finally:
        made.close_all()


@pytest.fixture
def make_run() -> Callable[..., RunRecord]:
    """A factory of run records finishing ``finished`` seconds after ``T0``."""

    def make(
        sync_type: str = "orders",
        finished: float = 60.0,
        *,
        duration: float = 30.0,
        trigger: Trigger = "auto",
        outcome: Outcome = "success",
        error: str | None = None,
        scheduled: bool = True,
        **more: Any,
    ) -> RunRecord:
        finished_at = T0 + timedelta(seconds=finished)
        started_at = finished_at - timedelta(seconds=duration)
        return RunRecord(
            sync_type=sync_type,
            trigger=trigger,
            scheduled_at=started_at - timedelta(seconds=1.5) if scheduled else None,
            requested_at=started_at - timedelta(milliseconds=250),
            started_at=started_at,
            finished_at=finished_at,
            outcome=outcome,
            error=error,
            **more,  # agent_id, attempt, result, reason
        )

    return make
