"""The PostgreSQL server restarts under a running leader: it leads again, runs on, and no slot runs twice.

The other cluster tests cut single connections (``pg_terminate_backend``) or point at a
server that is not there; this one restarts the machine's real server with
``pg_ctlcluster``, as an operator or a package upgrade would.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from pg_server import PG_DSN
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from archibald_actors import SYNC_TYPES, ScaledClock, SyncService
from archibald_actors.events import Event
from archibald_actors.store import PostgresStore

from .support import Watch

SPEED = 600.0  # one schedule minute = 0.1 real seconds
#: Real seconds the restart itself may take.
RESTART_TIMEOUT = 60.0


def _local_cluster() -> tuple[str, str]:
    """The version and name of the local cluster PG_DSN points at, for ``pg_ctlcluster``."""
    info = conninfo_to_dict(PG_DSN)
    host, port = info.get("host", "127.0.0.1"), str(info.get("port", 5432))
    local = host in ("127.0.0.1", "localhost") and port == "5432"
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if (p / "main").is_dir())
    if shutil.which("pg_ctlcluster") is None or not versions or not local:
        # Like every PostgreSQL test here, it fails rather than skips where the server is missing.
        pytest.fail(
            f"no local PostgreSQL cluster to restart with pg_ctlcluster for {PG_DSN!r}; this test"
            " restarts the server CI runs (deselect it with -k 'not restart' elsewhere)",
            pytrace=False,
        )
    return versions[0], "main"


def _restart(cluster: tuple[str, str]) -> None:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"]
    subprocess.run(command, check=True, timeout=RESTART_TIMEOUT, capture_output=True)


@pytest.fixture
def own_schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards over a connection made after the restart."""
    name = f"r_{uuid4().hex[:8]}"
    yield name
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _leading(event: Event) -> bool:
    return event["type"] == "leadership.changed" and event["role"] == "leader"


def test_after_a_server_restart_the_leader_leads_again_and_no_slot_runs_twice(own_schema: str) -> None:
    cluster = _local_cluster()

    def handler(ctx: Any) -> None:
        ctx.sleep(30)

    service = SyncService(
        dict.fromkeys(SYNC_TYPES, handler), clock=ScaledClock(SPEED), store=PostgresStore(PG_DSN, own_schema)
    )
    events = Watch(service)
    service.start()
    try:
        events.wait_for(_leading, timeout=5.0)
        events.wait_for(lambda e: e["type"] == "sync.completed", timeout=10.0)

        events.mark()
        _restart(cluster)
        # Every connection died with the server: the replica stepped down, then won again.
        events.wait_for(lambda e: e["type"] == "leadership.changed" and e["role"] == "follower", 10.0)
        events.wait_for(_leading, timeout=20.0)
        events.mark()
        completed = events.wait_for(lambda e: e["type"] == "sync.completed", timeout=20.0)
        assert completed["syncType"] in SYNC_TYPES
        assert service.request_sync("invoices")["syncType"] == "invoices"
        events.wait_for(lambda e: e["type"] == "sync.completed" and e["trigger"] == "manual", 20.0)
        assert service.health() == {"status": "ok", "role": "leader"}
    finally:
        service.stop(timeout=10)

    store = PostgresStore(PG_DSN, own_schema)
    try:
        ledger = store.runs(limit=10_000)
    finally:
        store.close()
    slots = Counter((r.sync_type, r.scheduled_at) for r in ledger if r.scheduled_at is not None)
    assert [slot for slot, n in slots.items() if n > 1] == []
    assert any(r.trigger == "manual" and r.sync_type == "invoices" for r in ledger)
