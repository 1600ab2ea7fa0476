"""Two SyncService replicas on one PostgreSQL schema: one leader, requests and retunes anywhere."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pg_server import PG_DSN

from archibald_actors import SYNC_TYPES, ScaledClock, SyncService
from archibald_actors.store import PostgresStore

from .support import Watch

SPEED = 600.0  # one schedule minute = 0.1 real seconds


@pytest.fixture
def replica(schema: str) -> Iterator[Callable[[], tuple[SyncService, Watch]]]:
    services: list[SyncService] = []

    def make() -> tuple[SyncService, Watch]:
        def handler(ctx: Any) -> None:
            ctx.sleep(30)

        service = SyncService(
            dict.fromkeys(SYNC_TYPES, handler), clock=ScaledClock(SPEED), store=PostgresStore(PG_DSN, schema)
        )
        watch = Watch(service)
        services.append(service)
        service.start()
        return service, watch

    yield make
    for service in services:
        service.stop(timeout=10)


def test_one_leader_requests_and_retunes_from_a_follower_and_failover(
    replica: Callable[[], tuple[SyncService, Watch]], schema: str
) -> None:
    first, first_events = replica()
    first_events.wait_for(lambda e: e["type"] == "leadership.changed" and e["role"] == "leader")
    second, second_events = replica()
    assert second.status()["role"] == "follower"
    assert {t["timer"] for t in second.status()["types"].values()} == {"standby"}

    assert second.health()["role"] == "follower"
    assert first.health()["role"] == "leader"

    # A manual request sent to the follower is stored, announced and run by the leader.
    assert second.request_sync("invoices") == {"syncType": "invoices", "coalesced": False}
    first_events.wait_for(lambda e: e["type"] == "sync.completed" and e["trigger"] == "manual")
    # The follower reads runs from the shared ledger: it shows what the leader ran.
    assert second.history(sync_type="invoices")[0]["trigger"] == "manual"
    assert second.status()["types"]["invoices"]["lastRun"]["trigger"] == "manual"

    # A retune on the follower reaches the leader's timer within a second.
    second.retune("customers", interval_minutes=20)
    changed = first_events.wait_for(lambda e: e["type"] == "schedule.changed", timeout=1.0)
    assert (changed["syncType"], changed["interval"]) == ("customers", 20)
    assert first.schedule()["customers"]["interval"] == 20

    # The leader goes away: the follower takes over within two seconds.
    first.stop(timeout=10)
    second_events.wait_for(
        lambda e: e["type"] == "leadership.changed" and e["role"] == "leader", timeout=2.0
    )
    second_events.wait_for(lambda e: e["type"] == "sync.completed", timeout=10.0)

    store = PostgresStore(PG_DSN, schema)
    try:
        ledger = store.runs(limit=10_000)
    finally:
        store.close()
    slots = Counter((r.sync_type, r.scheduled_at) for r in ledger if r.scheduled_at is not None)
    assert [slot for slot, n in slots.items() if n > 1] == []
    assert [r.trigger for r in ledger if r.sync_type == "invoices" and r.trigger == "manual"] == ["manual"]
