"""Sync types are data: a seventh type, from the Python API to every route that names types."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from archibald_actors import (
    DEFAULT_SCHEDULE,
    SYNC_TYPES,
    InvalidValueError,
    ManualClock,
    ScheduleEntry,
    SyncService,
)

from .conftest import PAUSED, RUN_SECONDS, MakeApi

MIN = 60.0
REFUNDS = ScheduleEntry("refunds", interval_minutes=15, start_delay_minutes=2, priority=3)


def test_the_defaults_stay_the_seeds_six() -> None:
    assert SYNC_TYPES == ("orders", "customers", "prices", "invoices", "ddt", "products")
    assert tuple(DEFAULT_SCHEDULE) == SYNC_TYPES


def test_a_service_of_one_new_type_times_runs_and_retunes_it() -> None:
    clock = ManualClock()
    ran: list[tuple[str, float | None]] = []
    service = SyncService(
        {"refunds": lambda ctx: ran.append((ctx.sync_type, ctx.scheduled_at))},
        clock=clock,
        schedule={"refunds": REFUNDS},
    )
    service.start()
    try:
        assert service.sync_types == ("refunds",)
        clock.advance(2 * MIN)  # its first slot: T+2
        clock.advance(15 * MIN)  # the next: T+17
        assert ran == [("refunds", 2 * MIN), ("refunds", 17 * MIN)]
        assert service.retune("refunds", interval_minutes=20)["refunds"]["interval"] == 20
        assert service.request_sync("refunds") == {"syncType": "refunds", "coalesced": False}
        assert set(service.status()["types"]) == {"refunds"}
        with pytest.raises(LookupError, match="orders"):  # not one of this service's types
            service.request_sync("orders")
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"Refunds": REFUNDS}, "syncType"),  # not a valid name
        ({"x" * 33: REFUNDS}, "syncType"),
        ({"returns": REFUNDS}, "schedule['returns']"),  # the entry is of another type
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(schedule: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        SyncService(schedule=schedule, clock=ManualClock())
    assert str(caught.value).startswith(f"{field} must ")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sync_type": "Refunds"}, "syncType"),
        ({"sync_type": "9lives"}, "syncType"),
        ({"interval_minutes": 4}, "intervalMinutes"),
        ({"interval_minutes": "15"}, "intervalMinutes"),
        ({"start_delay_minutes": 181}, "startDelayMinutes"),
        ({"priority": 1.5}, "priority"),
        ({"priority": 101}, "priority"),
        ({"enabled": "yes"}, "enabled"),
        ({"timeout_seconds": 0}, "timeoutSeconds"),
        ({"timeout_seconds": float("nan")}, "timeoutSeconds"),
    ],
)
def test_a_bad_entry_is_a_value_error_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {
        "sync_type": "refunds",
        "interval_minutes": 15,
        "start_delay_minutes": 2,
        "priority": 3,
        **kwargs,
    }
    with pytest.raises(InvalidValueError) as caught:
        ScheduleEntry(**arguments)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field} must ")


async def test_every_route_follows_the_services_types(make_api: MakeApi) -> None:
    api = await make_api(schedule={**PAUSED, "refunds": REFUNDS.retuned(enabled=False)})

    status, body = await api.get("/schedule")
    assert status == 200 and list(body["data"]) == [*SYNC_TYPES, "refunds"]
    status, body = await api.post("/schedule", json={"syncType": "refunds", "intervalMinutes": 20})
    assert status == 200 and body["data"]["refunds"]["interval"] == 20

    await api.run("refunds")
    assert api.runs.ran == [("refunds", "manual")]
    status, body = await api.get("/status")
    assert body["data"]["types"]["refunds"]["lastRun"]["outcome"] == "success"
    status, body = await api.get("/history?syncType=refunds")
    assert status == 200 and [r["syncType"] for r in body["data"]] == ["refunds"]

    status, body = await api.get("/openapi.json", role=None)
    schemas = body["components"]["schemas"]
    assert schemas["SyncType"]["enum"] == [*SYNC_TYPES, "refunds"]
    assert "refunds" in schemas["Schedule"]["properties"] and "refunds" in schemas["TypeStatuses"]["required"]

    async with api.client.get("/metrics") as response:
        text = await response.text()
    assert 'archibald_sync_runs_total{outcome="success",sync_type="refunds"} 1.0' in text
    assert 'archibald_missed_slots_total{sync_type="refunds"} 0.0' in text  # there from the start

    # A type the service lacks is refused as before, by name.
    for status, body in (
        await api.post("/stock/run"),
        await api.post("/schedule", json={"syncType": "stock", "enabled": False}),
        await api.get("/history?syncType=stock"),
    ):
        assert status == 400 and "syncType" in body["error"] and "refunds" in body["error"]


async def test_a_service_without_the_defaults_documents_only_its_own(make_api: MakeApi) -> None:
    api = await make_api(schedule={"refunds": REFUNDS}, coroutine=True)
    _, body = await api.get("/openapi.json", role=None)
    assert body["components"]["schemas"]["SyncType"]["enum"] == ["refunds"]
    assert body["paths"]["/api/sync/history"]["get"]["parameters"][1]["schema"]["anyOf"][0]["maximum"] == 100
    status, body = await api.post("/schedule", json={"syncType": "orders", "enabled": False})
    assert status == 400 and body["error"] == "syncType \"orders\" is unknown; expected one of refunds"
    await api.advance(2 * MIN + RUN_SECONDS)  # the timer's first slot
    assert await asyncio.to_thread(api.service.wait_idle, 5.0)
    _, body = await api.get("/history")
    assert [(r["syncType"], r["trigger"]) for r in body["data"]] == [("refunds", "auto")]


def test_handlers_of_default_types_the_schedule_leaves_out_are_ignored_others_refused() -> None:
    handlers = {t: (lambda ctx: None) for t in SYNC_TYPES}
    service = SyncService(handlers, schedule={"refunds": REFUNDS}, clock=ManualClock())
    assert service.sync_types == ("refunds",)
    with pytest.raises(LookupError, match="refund'"):
        SyncService({"refund": lambda ctx: None}, schedule={"refunds": REFUNDS}, clock=ManualClock())
