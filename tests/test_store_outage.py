"""A store that hangs or fails never freezes the actors: status and retunes are answered,
nothing is half-applied, and the service recovers once the store does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from stuck_store import until_stuck

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, StoreError, SyncService
from archibald_actors.domain import RunRecord
from archibald_actors.store import MemoryStore
from archibald_actors.store.base import StoredState

MIN = 60.0
#: What the issue promises while the database hangs.
ANSWER_WITHIN = 0.05
PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}


class HangingStore(MemoryStore):
    """A memory store whose writes of requests or runs hang, once ``hanging``, until released."""

    answers_at_once = False  # its calls may hang: they must run on the store worker

    def __init__(self, hang_on: str) -> None:
        super().__init__()
        self.hang_on = hang_on
        self.hanging = threading.Event()
        self.entered = threading.Event()  # a call is hanging now
        self.release = threading.Event()

    def _gate(self, name: str) -> None:
        if name == self.hang_on and self.hanging.is_set():
            self.entered.set()
            assert self.release.wait(10), "the test never released the store"

    def add_request(self, sync_type: str, trigger: str, requested_at: Any) -> int:
        self._gate("add_request")
        return super().add_request(sync_type, trigger, requested_at)

    def append_run(self, record: RunRecord) -> None:
        self._gate("append_run")
        super().append_run(record)


class FailingStore(MemoryStore):
    """A memory store whose reads of the state fail while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def load(self) -> StoredState:
        if self.down:
            raise StoreError("connection refused")
        return super().load()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    try:
        result: Any = call()
    except StoreError as exc:
        result = exc
    return result, time.monotonic() - start


def test_status_and_retunes_are_answered_at_once_while_the_store_hangs(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = HangingStore("add_request")
    service = make_service(store=store, schedule=PAUSED)
    before = service.schedule()
    store.hanging.set()
    request = service.request_sync_future("orders")  # its write hangs in the store
    assert store.entered.wait(5)
    status, status_took = timed(service.status)  # at once, even before the hang counts as one
    until_stuck(service)
    retune, retune_took = timed(lambda: service.retune("orders", interval_minutes=20))
    assert status_took < ANSWER_WITHIN and status["types"]["orders"]["state"] == "idle"
    assert retune_took < ANSWER_WITHIN
    assert isinstance(retune, StoreError) and "not answering" in str(retune)
    assert service.status()["store"] == "unavailable"
    assert service.health()["store"] == "unavailable"
    assert not request.done()  # a request is acknowledged only once it is stored

    store.release.set()
    assert request.result(5) == {"syncType": "orders", "coalesced": False}
    clock.run_due()
    assert service.status()["store"] == "ok"
    assert service.schedule() == before  # the refused retune changed nothing, here or stored
    assert "orders" not in store.load().entries
    assert service.retune("orders", interval_minutes=20)["orders"]["interval"] == 20


def test_a_run_whose_record_hangs_holds_up_neither_status_nor_holds_and_is_recorded_after(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = HangingStore("append_run")
    service = make_service(store=store, schedule=PAUSED)
    events: list[dict[str, Any]] = []
    service.events.subscribe(events.append)
    store.hanging.set()
    assert service.request_sync("orders") == {"syncType": "orders", "coalesced": False}
    assert store.entered.wait(5)  # the run ended; its record hangs in the store
    status, took = timed(service.status)
    assert took < ANSWER_WITHIN and status["types"]["orders"]["runs"] == 1
    assert [e["type"] for e in events if e["type"].startswith("sync.")] == ["sync.started"]
    with service.exclusive(timeout=1.0):
        assert service.status()["held"] is True
    until_stuck(service)
    refused, took = timed(lambda: service.request_sync("customers"))
    assert took < ANSWER_WITHIN and isinstance(refused, StoreError)  # it would wait behind the hang

    store.release.set()
    clock.run_due()
    assert service.wait_idle(5)
    # The completion is published once the run is in the ledger, so a reader finds it there.
    assert [r["outcome"] for r in service.history(sync_type="orders")] == ["success"]
    assert [e["type"] for e in events if e["type"].startswith("sync.")] == ["sync.started", "sync.completed"]
    assert service.history(sync_type="customers") == []


def test_a_store_down_at_start_degrades_health_and_the_service_recovers_with_it(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = FailingStore()
    service = make_service(store=store)  # start() does not raise
    health = service.health()
    assert health["status"] == "degraded" and health["store"] == "unavailable"
    assert {t["timer"] for t in service.status()["types"].values()} == {"standby"}
    assert all(row["nextRunAt"] is None for row in service.schedule().values())
    assert service.epoch is None
    clock.advance(5 * MIN)  # retried with a backoff on the service clock: 1, 2, 4 ... 30 s
    assert service.status()["types"]["orders"]["runs"] == 0
    assert service._supervisor_ref is not None and service._supervisor_ref.is_alive()

    store.down = False
    clock.advance(30.0)  # the next retry reads the store
    assert service.health() == {"status": "ok"}
    assert service.status()["store"] == "ok"
    assert service.epoch is not None
    assert {t["timer"] for t in service.status()["types"].values()} == {"running"}
    assert service.status()["types"]["orders"]["runs"] == 1  # its first slot is now
    clock.advance(10 * MIN)
    assert service.status()["types"]["orders"]["runs"] == 2


def test_a_manual_request_the_store_cannot_take_is_refused_and_not_queued(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    class NoRequests(MemoryStore):
        def add_request(self, sync_type: str, trigger: str, requested_at: Any) -> int:
            raise StoreError("disk full")

    service = make_service(store=NoRequests(), schedule=PAUSED)
    with pytest.raises(StoreError, match="disk full"):
        service.request_sync("orders")
    clock.advance(MIN)
    assert service.status()["types"]["orders"]["runs"] == 0
    assert service.status()["queue"] == []
