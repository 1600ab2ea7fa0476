"""Winning an election while the store fails: the supervisor lives, health says so, and it
leads once the store answers again (the retries run on the ManualClock)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from pg_server import PG_DSN

from archibald_actors import ManualClock, StoreError, SyncService
from archibald_actors.store import PostgresStore

from .support import Watch


class FlakyStore(PostgresStore):
    """Reading the epoch (only the start and an election read it) fails while ``down`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down = threading.Event()
        self.failed = threading.Event()

    def ensure_epoch(self, epoch: datetime) -> datetime:
        if self.down.is_set():
            self.failed.set()
            raise StoreError("server closed the connection unexpectedly")
        return super().ensure_epoch(epoch)


def test_an_election_whose_read_fails_keeps_the_supervisor_and_leads_once_the_store_answers(
    schema: str,
) -> None:
    first = SyncService(clock=ManualClock(), store=PostgresStore(PG_DSN, schema))
    first_watch = Watch(first)
    first.start()
    clock = ManualClock()
    store = FlakyStore(PG_DSN, schema)
    second = SyncService(clock=clock, store=store)
    watch = Watch(second)
    try:
        first_watch.wait_for(lambda e: e["type"] == "leadership.changed" and e["role"] == "leader")
        second.start()
        assert second.status()["role"] == "follower"
        store.down.set()
        first.stop(timeout=10)  # the second replica wins the election, and cannot read the store
        assert store.failed.wait(10)
        clock.run_due()  # the failed read's answer reached the supervisor
        assert second._supervisor_ref is not None and second._supervisor_ref.is_alive()
        health = second.health()
        assert (health["status"], health["store"], health["role"]) == ("degraded", "unavailable", "follower")
        assert {t["timer"] for t in second.status()["types"].values()} == {"standby"}

        store.down.clear()
        clock.advance(1.0)  # the first retry, on the service clock
        watch.wait_for(lambda e: e["type"] == "leadership.changed" and e["role"] == "leader")
        clock.run_due()
        assert second.health() == {"status": "ok", "role": "leader"}
        assert {t["timer"] for t in second.status()["types"].values()} == {"running"}
    finally:
        first.stop(timeout=10)
        second.stop(timeout=10)
