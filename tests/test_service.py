"""The SyncService facade: lifecycle, logging of the plan, real clocks, no leftover threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Recorder

from archibald_actors import (
    DEFAULT_SCHEDULE,
    ManualClock,
    ScaledClock,
    ServiceStateError,
    SyncService,
    SystemClock,
)


def service_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("archibald-") or "Actor" in t.name]


def test_start_logs_the_staggered_plan_like_the_seed(
    caplog: pytest.LogCaptureFixture, make_service: Callable[..., SyncService]
) -> None:
    with caplog.at_level(logging.INFO, logger="archibald_actors"):
        make_service()
    lines = [r.getMessage().strip() for r in caplog.records if r.name == "archibald_actors"]
    assert lines[1:7] == [
        "Orders: 10min (T+0)",
        "Customers: 30min (T+5)",
        "Prices: 30min (T+10)",
        "Invoices: 30min (T+15)",
        "DDT: 45min (T+20)",
        "Products: 90min (T+30)",
    ]


def test_starting_twice_is_an_error_not_doubled_timers(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = Recorder(clock)
    service = make_service(recorder.handlers())
    with pytest.raises(ServiceStateError, match="already started"):
        service.start()
    clock.advance(30 * 60)
    assert len(recorder.of("orders")) == 4


def test_using_a_service_that_is_not_running_is_an_error(make_service: Callable[..., SyncService]) -> None:
    service = make_service(start=False)
    with pytest.raises(ServiceStateError):
        service.status()
    service.start()
    service.stop()
    with pytest.raises(ServiceStateError):
        service.request_sync("orders")
    with pytest.raises(ServiceStateError, match=r"was stopped .* build a new SyncService") as caught:
        service.start()
    assert "already started" not in str(caught.value)


def test_a_service_stopped_before_it_started_cannot_start_either(
    make_service: Callable[..., SyncService],
) -> None:
    service = make_service(start=False)
    service.stop()
    with pytest.raises(ServiceStateError, match="was stopped"):
        service.start()


def test_the_published_schedule_view_follows_every_change_without_a_round_trip(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    service = make_service(start=False)
    with pytest.raises(ServiceStateError):
        service.schedule_view()
    service.start()
    assert service.schedule_view().rows(clock) == service.schedule()
    first = service.schedule_view().rows(clock)["orders"]["nextRunAt"]
    clock.advance(10 * 60)  # orders fired at T+10 and its timer re-armed for T+20
    assert service.schedule_view().rows(clock)["orders"]["nextRunAt"] > first
    answered = service.retune("prices", interval_minutes=60, enabled=False)
    view = service.schedule_view()
    assert view.rows(clock) == answered == service.schedule()
    assert (answered["prices"]["interval"], answered["prices"]["nextRunAt"]) == (60, None)
    # Its rows hold until the earliest next run: invoices at T+15.
    assert view.fixed_until(clock.now()) == view.next_slot("invoices", clock.now()) == 15 * 60
    service.stop()
    with pytest.raises(ServiceStateError):
        service.schedule_view()


def test_unknown_handler_type_is_rejected() -> None:
    with pytest.raises(LookupError, match="stock"):
        SyncService({"stock": lambda ctx: None}, clock=ManualClock())


def test_stop_leaves_no_thread_on_the_real_clock() -> None:
    baseline = set(service_threads())
    ran = threading.Event()

    def orders(ctx: Any) -> None:
        ran.set()
        ctx.sleep(3600)  # interrupted by stop()

    async def customers(ctx: Any) -> None:
        await ctx.sleep(1)

    service = SyncService({"orders": orders, "customers": customers})
    service.start()
    try:
        assert ran.wait(5)
        assert service.status()["running"]["syncType"] == "orders"
    finally:
        service.stop(timeout=5)
    assert set(service_threads()) <= baseline


def test_a_scaled_clock_runs_the_staggered_plan_in_real_time() -> None:
    clock = ScaledClock(3000)  # one schedule minute = 20 ms
    recorder = Recorder(clock)
    done = threading.Event()
    handlers = recorder.handlers(coroutine=True)
    original = handlers["ddt"]

    async def ddt(ctx: Any) -> None:
        await original(ctx)
        done.set()

    handlers["ddt"] = ddt
    service = SyncService(handlers, clock=clock)
    service.start()
    try:
        assert done.wait(10)  # ddt's first slot is T+20 = 0.4 real seconds
        assert service.wait_idle(timeout=5)
        first = {r.sync_type: r.scheduled_at for r in reversed(recorder.runs)}
        for sync_type in ("orders", "customers", "prices", "invoices", "ddt"):
            assert first[sync_type] == pytest.approx(service.epoch + DEFAULT_SCHEDULE[sync_type].start_delay)
        assert recorder.overlaps == 0
    finally:
        service.stop(timeout=5)


async def test_coroutine_handlers_run_on_the_loop_that_started_the_service() -> None:
    loop = asyncio.get_running_loop()
    seen: list[asyncio.AbstractEventLoop] = []
    done = asyncio.Event()

    async def orders(ctx: Any) -> None:
        seen.append(asyncio.get_running_loop())
        done.set()

    service = SyncService({"orders": orders}, clock=SystemClock())
    service.start()
    try:
        await asyncio.wait_for(done.wait(), 5)
        assert seen == [loop]
    finally:
        # stop() blocks: run it off the loop, which the handler's cancellation needs.
        stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        threading.Thread(target=lambda: stopped.set_result(service.stop()), name="test-stopper").start()
        await asyncio.wait_for(asyncio.wrap_future(stopped), 10)
