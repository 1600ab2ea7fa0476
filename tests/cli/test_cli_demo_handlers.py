"""The demo handlers: production durations on the service clock, login cost, prompt stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, SyncService
from archibald_actors.handlers.demo import (
    DEMO_DURATIONS,
    LOGIN_SECONDS,
    SESSION_IDLE_SECONDS,
    SESSION_REUSE_SECONDS,
    DemoErp,
    demo_handlers,
)


@pytest.fixture
def services() -> Iterator[list[SyncService]]:
    made: list[SyncService] = []
    yield made
    for service in made:
        service.stop(timeout=5.0)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("archibald-")]


def test_durations_follow_domain_md() -> None:
    assert DEMO_DURATIONS["customers"] == (15.0, 20.0)
    assert DEMO_DURATIONS["products"] == (40.0, 60.0)
    assert DEMO_DURATIONS["prices"] == (60.0, 90.0)
    assert DEMO_DURATIONS["orders"] == (30.0, 60.0)
    assert set(demo_handlers()) == set(SYNC_TYPES)


def test_draws_are_seeded_and_in_range() -> None:
    a, b = DemoErp(seed=3), DemoErp(seed=3)
    draws = [a.sync_seconds(t) for t in SYNC_TYPES * 5]
    assert draws == [b.sync_seconds(t) for t in SYNC_TYPES * 5]
    for sync_type, seconds in zip(SYNC_TYPES * 5, draws, strict=True):
        low, high = DEMO_DURATIONS[sync_type]
        assert low <= seconds <= high


def test_login_costs_8_s_then_reuse_until_the_session_idles_out(services: list[SyncService]) -> None:
    clock = ManualClock()
    erp = DemoErp(clock=clock)
    paused = {t: replace(e, enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
    service = SyncService(erp.handlers(), clock=clock, schedule=paused)
    services.append(service)
    service.start()
    assert erp.login_seconds() == LOGIN_SECONDS

    def run_orders() -> dict[str, Any]:
        service.request_sync("orders")
        clock.advance(LOGIN_SECONDS + DEMO_DURATIONS["orders"][1])
        return service.history("orders", limit=1)[0]

    twin = DemoErp()  # same seed: the same draws in the same order
    first = run_orders()
    assert first["durationMs"] == round((LOGIN_SECONDS + twin.sync_seconds("orders")) * 1000)
    assert erp.logins == 1 and erp.login_seconds() == SESSION_REUSE_SECONDS
    second = run_orders()
    assert second["durationMs"] == round((SESSION_REUSE_SECONDS + twin.sync_seconds("orders")) * 1000)
    assert erp.logins == 1
    clock.advance(SESSION_IDLE_SECONDS + 1)
    assert erp.login_seconds() == LOGIN_SECONDS  # the session expired while nothing ran
    run_orders()
    assert erp.logins == 2


def test_run_takes_its_duration_on_the_service_clock(services: list[SyncService]) -> None:
    clock = ManualClock()
    service = SyncService(demo_handlers(seed=1, clock=clock), clock=clock)
    services.append(service)
    expected = LOGIN_SECONDS + DemoErp(seed=1).sync_seconds("orders")
    service.start()
    clock.run_due()
    assert service.status()["running"]["syncType"] == "orders"
    clock.advance(expected - 0.01)
    assert service.status()["running"] is not None  # still waiting on the clock
    clock.advance(0.01)
    run = service.history("orders", limit=1)[0]
    assert run["outcome"] == "success" and run["durationMs"] == round(expected * 1000)


def test_stop_ends_a_sleeping_demo_sync_at_once(services: list[SyncService]) -> None:
    clock = ManualClock()
    service = SyncService(demo_handlers(clock=clock), clock=clock)
    service.start()
    clock.run_due()
    clock.advance(10)  # orders is mid-export
    assert service.status()["running"]["syncType"] == "orders"
    service.stop(timeout=5.0)  # ctx.sleep raises SyncCancelledError; no thread is left
    assert not [t.name for t in threading.enumerate() if t.name.startswith("archibald-")]
