"""How a run's end is told: ``sync.cancelled`` for a hold or a shutdown, and the failures in
a row that turn health degraded (counted per type, cleared by a success, kept by the ledger)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService
from archibald_actors.breaker import BreakerPolicy
from archibald_actors.events import RUN_END_EVENTS
from archibald_actors.store.memory import MemoryStore

PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
#: Retries and breakers aside (test_recovery has them): these tests count the runs themselves.
NO_RECOVERY: dict[str, Any] = {"breakers": BreakerPolicy(breaker_failures=99)}
SCHEDULE = {**PAUSED, "ddt": replace(PAUSED["ddt"], timeout_seconds=60.0, retries=0)}


class Script:
    """A ddt handler doing, call after call, what it is told: fail, hang or succeed."""

    def __init__(self, *steps: str) -> None:
        self.steps = deque(steps)

    def __call__(self, ctx: Any) -> None:
        step = self.steps.popleft()
        if step == "fail":
            raise RuntimeError("ERP login refused")
        if step == "hang":
            ctx.sleep(3600)  # stopped by a hold, a timeout or a shutdown


def run_ends(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(event type, sync type, outcome) of every published end of a run."""
    return [(e["type"], e["syncType"], e["outcome"]) for e in events if e["type"] in RUN_END_EVENTS]


def record_events(service: SyncService) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    service.events.subscribe(events.append)
    return events


def ddt_counts(service: SyncService) -> tuple[int, int]:
    ddt = service.status()["types"]["ddt"]
    return ddt["consecutiveFailures"], ddt["failures"]


def test_a_run_stopped_by_a_hold_is_published_as_cancelled(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service({"ddt": Script("hang", "ok")}, schedule=SCHEDULE)
    events = record_events(service)
    service.request_sync("ddt")
    clock.run_due()
    with service.exclusive(timeout=5.0):
        assert run_ends(events) == [("sync.cancelled", "ddt", "cancelled")]
    clock.advance(1)  # released: the stopped run resumes and succeeds
    assert service.wait_idle(5.0)
    assert run_ends(events) == [("sync.cancelled", "ddt", "cancelled"), ("sync.completed", "ddt", "success")]


def test_a_run_stopped_by_shutdown_is_published_as_cancelled(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service({"ddt": Script("hang")}, schedule=SCHEDULE)
    events = record_events(service)
    service.request_sync("ddt")
    clock.run_due()
    assert service.status()["running"]["syncType"] == "ddt"
    service.stop(timeout=5.0)
    assert run_ends(events) == [("sync.cancelled", "ddt", "cancelled")]


def test_failures_in_a_row_degrade_health_at_three_and_a_success_clears_them(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = MemoryStore()
    script = Script("fail", "fail", "hang", "hang")
    service = make_service({"ddt": script}, schedule=SCHEDULE, store=store, **NO_RECOVERY)
    for expected in (1, 2):
        service.request_sync("ddt")
        clock.advance(1)
        assert ddt_counts(service) == (expected, expected)
        assert service.health() == {"status": "ok"}
    # A hold stops the third run: cancelled, which neither counts nor clears.
    service.request_sync("ddt")
    clock.run_due()
    with service.exclusive(timeout=5.0):
        assert ddt_counts(service) == (2, 2)
        assert service.health() == {"status": "ok"}
    # Released, it resumes and hangs past its 60 s timeout: a timeout counts.
    clock.advance(61)
    assert service.wait_idle(5.0)
    assert [r["outcome"] for r in service.history("ddt")] == ["timeout", "cancelled", "failed", "failed"]
    assert ddt_counts(service) == (3, 3)
    assert service.health() == {"status": "degraded", "failed": [], "stale": [], "failing": ["ddt"]}
    assert service.status()["types"]["orders"]["consecutiveFailures"] == 0
    service.stop(timeout=5.0)

    # A restart reads the streak back from the ledger; the next success ends it.
    again = make_service({"ddt": Script("ok")}, schedule=SCHEDULE, store=store, **NO_RECOVERY)
    assert ddt_counts(again) == (3, 0)  # the total counts this process's runs only
    assert again.health()["failing"] == ["ddt"]
    again.request_sync("ddt")
    clock.advance(1)
    assert ddt_counts(again) == (0, 0)
    assert again.health() == {"status": "ok"}
