"""Blocking calls on an event loop's thread fail at once, naming the form to await.

The scene of each test is the one that froze a host: a coroutine handler of the service
runs on the test's own loop, so a blocking wait for it from that loop could never end.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from archibald_actors import BlockingCallError, ManualClock, ScheduleEntry, ServiceStateError, SyncService

#: Generous bound on "at once": the refusal happens before any message is sent.
AT_ONCE = 0.5
SCHEDULE = {"orders": ScheduleEntry("orders", interval_minutes=10, start_delay_minutes=0, priority=6)}


async def ask(future: Any) -> Any:
    """Await a service future on the loop, as a host should."""
    return await asyncio.wait_for(asyncio.wrap_future(future), 5.0)


class Scene:
    """A service whose coroutine handler for ``orders`` runs on the test's loop."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.events: list[dict[str, Any]] = []
        self.entered = asyncio.Event()

        async def orders(ctx: Any) -> None:
            self.entered.set()
            await ctx.sleep(60)

        self.service = SyncService({"orders": orders}, clock=self.clock, schedule=SCHEDULE)
        self.service.events.subscribe(self.events.append)

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.events]


@pytest.fixture
async def scene() -> AsyncIterator[Scene]:
    scene = Scene()
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(lambda: scene.service.start(loop=loop))  # as setup() starts it
    try:
        await asyncio.to_thread(scene.clock.run_due)  # orders' slot at T+0: it runs, on this loop
        await asyncio.wait_for(scene.entered.wait(), 5.0)
        yield scene
    finally:
        await asyncio.to_thread(scene.service.stop, 5.0)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("archibald-")]


def _hold(service: SyncService) -> None:
    with service.exclusive(timeout=2.0):  # the bound only matters if the guard is gone
        pass


BLOCKING: list[Any] = [
    pytest.param(lambda s: s.schedule(), "asyncio.wrap_future(service.schedule_future())", id="schedule"),
    pytest.param(lambda s: s.status(), "asyncio.wrap_future(service.status_future())", id="status"),
    pytest.param(
        lambda s: s.retune("orders", interval_minutes=20), "service.retune_future(", id="retune"
    ),
    pytest.param(lambda s: s.request_sync("orders"), "service.request_sync_future(", id="request_sync"),
    pytest.param(lambda s: s.history(), "service.history_future(", id="history"),
    pytest.param(lambda s: s.agents(), "service.agents_future()", id="agents"),
    pytest.param(lambda s: s.agent("mario"), "service.agent_future(", id="agent"),
    pytest.param(lambda s: s.put_agent("mario"), "service.put_agent_future(", id="put_agent"),
    pytest.param(lambda s: s.remove_agent("mario"), "service.remove_agent_future(", id="remove_agent"),
    pytest.param(lambda s: s.health(), "asyncio.wrap_future(service.health_future())", id="health"),
    pytest.param(lambda s: s.wait_idle(2.0), "service.wait_idle_future()", id="wait_idle"),
    pytest.param(_hold, "async with service.exclusive()", id="exclusive"),
    pytest.param(lambda s: s.stop(2.0), "asyncio.to_thread(service.stop)", id="stop"),
]


@pytest.mark.parametrize(("call", "instead"), BLOCKING)
async def test_a_blocking_call_on_the_loop_fails_at_once_naming_the_awaitable_form(
    scene: Scene, call: Callable[[SyncService], object], instead: str
) -> None:
    began = time.perf_counter()
    with pytest.raises(BlockingCallError) as caught:
        call(scene.service)
    elapsed = time.perf_counter() - began
    assert isinstance(caught.value, RuntimeError)
    assert instead in str(caught.value)
    assert "event loop" in str(caught.value)
    assert elapsed < AT_ONCE, f"refused only after {elapsed:.3f} s"
    # Refused before anything was sent: the run goes on, nothing queued, held or retuned.
    status = await ask(scene.service.status_future())
    assert status["running"]["syncType"] == "orders"
    assert (status["queue"], status["held"]) == ([], False)
    assert (await ask(scene.service.schedule_future()))["orders"]["interval"] == 10


async def test_the_same_calls_block_fine_on_a_thread_without_a_loop(scene: Scene) -> None:
    status = await asyncio.to_thread(scene.service.status)
    assert status["running"]["syncType"] == "orders"
    assert await asyncio.to_thread(scene.service.wait_idle, 0.01) is False  # orders still runs


async def test_async_with_exclusive_stops_a_coroutine_handler_on_the_same_loop(scene: Scene) -> None:
    service = scene.service
    async with service.exclusive(timeout=5.0):
        status = await ask(service.status_future())
        assert status["held"] is True and status["running"] is None
        run = (await ask(service.history_future("orders", 1)))[0]
        assert run["outcome"] == "cancelled"
        scene.entered.clear()
    assert "sync.cancelled" in scene.event_types()
    assert "sync.failed" not in scene.event_types()
    # Released: the stopped run resumes as a retry and finishes on the clock.
    await asyncio.wait_for(scene.entered.wait(), 5.0)
    await asyncio.to_thread(scene.clock.advance, 60)
    assert await ask(service.wait_idle_future()) is True
    assert [r["outcome"] for r in await ask(service.history_future("orders"))] == ["success", "cancelled"]


async def test_with_service_on_the_loop_is_refused_before_starting() -> None:
    service = SyncService(clock=ManualClock(), schedule=SCHEDULE)
    with pytest.raises(BlockingCallError, match=r"asyncio\.to_thread\(service\.stop\)"), service:
        pass
    with pytest.raises(ServiceStateError, match="not running"):
        service.status_future()  # it never started, so nothing is left running


async def test_start_on_the_loop_stays_allowed_and_adopts_that_loop() -> None:
    """``start()`` waits on no actor; a host may call it on its loop (``stop`` goes off it)."""
    ran_on: list[asyncio.AbstractEventLoop] = []

    async def orders(ctx: Any) -> None:
        ran_on.append(asyncio.get_running_loop())

    clock = ManualClock()
    service = SyncService({"orders": orders}, clock=clock, schedule=SCHEDULE)
    service.start()
    try:
        await asyncio.to_thread(clock.run_due)
        assert await ask(service.wait_idle_future()) is True
    finally:
        await asyncio.to_thread(service.stop, 5.0)
    assert ran_on == [asyncio.get_running_loop()]
