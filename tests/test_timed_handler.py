"""``TimedHandler``: a run that only takes clock time, with no thread or loop behind it.

The planning sandbox's runs are these; they must end, time out and stop exactly as a
handler sleeping on the clock would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService
from archibald_actors.actors.runner import SyncContext
from archibald_actors.actors.timed_handler import TimedHandler
from archibald_actors.events import RUN_END_EVENTS

PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
SCHEDULE = {**PAUSED, "ddt": replace(PAUSED["ddt"], timeout_seconds=60.0, retries=0)}


class Timed:
    """A ddt ``TimedHandler`` of ``seconds``, counting the runs that ended on time."""

    def __init__(self, seconds: float) -> None:
        self.ended: list[str | None] = []
        self.handler = TimedHandler(lambda ctx: seconds, self._ended, "ddt_sync")

    def _ended(self, ctx: SyncContext) -> None:
        self.ended.append(ctx.agent_id)


def ends(service: SyncService) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    service.events.subscribe(lambda e: events.append(e) if e["type"] in RUN_END_EVENTS else None)
    return events


def ddt_started(
    handler: TimedHandler, clock: ManualClock, make_service: Callable[..., SyncService]
) -> tuple[SyncService, list[dict[str, Any]]]:
    """A service whose ddt runs ``handler``, a manual ddt run started; its ends as published."""
    service = make_service({"ddt": handler}, schedule=SCHEDULE)
    events = ends(service)
    service.request_sync("ddt")
    clock.run_due()
    return service, events


def test_a_timed_run_ends_on_the_clock_without_a_handler_thread(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    timed = Timed(30.0)
    service, events = ddt_started(timed.handler, clock, make_service)
    assert service.status()["running"]["syncType"] == "ddt"
    assert handler_threads() == []
    clock.advance(29.9)
    assert service.status()["running"]["syncType"] == "ddt"
    assert timed.ended == []
    clock.advance(0.1)
    assert service.wait_idle(5.0)
    assert [(e["outcome"], e["durationMs"]) for e in events] == [("success", 30000)]
    assert timed.ended == [None]


def handler_threads() -> list[str]:
    """Threads a plain or a coroutine handler would run on."""
    return [t.name for t in threading.enumerate() if t.name.startswith(("archibald-sync-", "archibald-loop"))]


def test_a_timed_run_past_its_timeout_ends_timeout_and_is_not_counted_as_ended(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    timed = Timed(90.0)
    service, events = ddt_started(timed.handler, clock, make_service)
    clock.advance(60.0)
    assert service.wait_idle(5.0)
    assert [(e["type"], e["outcome"]) for e in events] == [("sync.failed", "timeout")]
    clock.advance(60.0)  # its end, once armed for 90 s, was disarmed: nothing more happens
    assert len(events) == 1
    assert timed.ended == []


def test_a_timed_run_stopped_by_a_hold_is_cancelled_and_resumes_after_it(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    timed = Timed(30.0)
    service, events = ddt_started(timed.handler, clock, make_service)
    clock.advance(10.0)
    with service.exclusive(timeout=5.0):
        assert [(e["type"], e["outcome"]) for e in events] == [("sync.cancelled", "cancelled")]
        assert timed.ended == []
    clock.run_due()
    clock.advance(30.0)
    assert service.wait_idle(5.0)
    assert [e["outcome"] for e in events] == ["cancelled", "success"]
    assert timed.ended == [None]


def test_a_timed_handler_called_as_a_coroutine_sleeps_its_seconds(clock: ManualClock) -> None:
    timed = Timed(5.0)
    ctx = SyncContext(sync_type="ddt", trigger="manual", scheduled_at=None, clock=clock, is_async=True)

    async def run() -> None:
        task = asyncio.ensure_future(timed.handler(ctx))
        await asyncio.sleep(0)
        assert not task.done()
        await asyncio.to_thread(clock.advance, 5.0)
        await asyncio.wait_for(task, 5.0)

    asyncio.run(run())
    assert timed.ended == [None]


def no_duration(ctx: SyncContext) -> float:
    raise LookupError("no duration for ddt")


def session_book_full(ctx: SyncContext) -> None:
    raise RuntimeError("session book full")


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (TimedHandler(no_duration), "LookupError: no duration for ddt"),
        (TimedHandler(lambda ctx: 5.0, session_book_full), "RuntimeError: session book full"),
    ],
    ids=["seconds-raises", "ended-raises"],
)
def test_a_timed_handler_whose_hook_raises_is_recorded_as_failed(
    clock: ManualClock, make_service: Callable[..., SyncService], handler: TimedHandler, error: str
) -> None:
    service, events = ddt_started(handler, clock, make_service)
    clock.advance(5.0)
    assert service.wait_idle(5.0)
    assert [(e["outcome"], e["error"]) for e in events] == [("failed", error)]
