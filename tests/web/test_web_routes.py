"""Every route of the HTTP API against a real service: shapes, status codes, effects."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from archibald_actors import (
    DEFAULT_SCHEDULE,
    SYNC_TYPES,
    ServiceStateError,
    ServiceUnavailableError,
    SyncService,
    UnknownSyncTypeError,
)
from archibald_actors.errors import InvalidValueError
from archibald_actors.web import ApiError, Bridge, JWTAuthenticator, setup

from .conftest import PAUSED, SECRET, Api, MakeApi, bearer

MIN = 60.0


async def test_get_schedule_answers_the_table_with_next_runs(make_api: MakeApi) -> None:
    api = await make_api(schedule=DEFAULT_SCHEDULE)
    status, body = await api.get("/schedule", role="agent")
    assert status == 200
    assert body["success"] is True
    assert set(body["data"]) == set(SYNC_TYPES)
    assert body["data"]["customers"] == {
        "interval": 30,
        "startDelay": 5,
        "unit": "minutes",
        "enabled": True,
        "nextRunAt": "2026-01-01T00:05:00.000Z",
    }
    assert body["data"]["products"]["nextRunAt"] == "2026-01-01T00:30:00.000Z"


async def test_get_schedule_moves_on_after_each_slot_with_no_new_view(make_api: MakeApi) -> None:
    # The encoded schedule is kept until its earliest next run, then read afresh.
    api = await make_api(schedule=DEFAULT_SCHEDULE)
    first = (await api.get("/schedule"))[1]["data"]
    assert (first["customers"]["nextRunAt"], first["orders"]["nextRunAt"]) == (
        "2026-01-01T00:05:00.000Z",
        "2026-01-01T00:10:00.000Z",
    )
    await api.advance(5 * MIN)
    later = (await api.get("/schedule"))[1]["data"]
    assert later["customers"]["nextRunAt"] == "2026-01-01T00:35:00.000Z"
    assert later["orders"] == first["orders"]


async def test_post_schedule_retunes_the_live_timer(make_api: MakeApi) -> None:
    api = await make_api(schedule=DEFAULT_SCHEDULE)
    status, body = await api.post("/schedule", json={"syncType": "customers", "startDelayMinutes": 7})
    assert status == 200
    assert body["success"] is True
    assert body["data"]["customers"]["startDelay"] == 7
    assert body["data"]["customers"]["nextRunAt"] == "2026-01-01T00:07:00.000Z"
    # the answer is the schedule as it now stands, and so is every later read
    assert (await api.get("/schedule"))[1]["data"] == body["data"]
    schedule = await asyncio.wrap_future(api.service.schedule_future())
    assert schedule["customers"]["nextRunAt"] == "2026-01-01T00:07:00.000Z"
    # staggering survives: the retune of customers moved no other timer
    assert body["data"]["prices"]["nextRunAt"] == "2026-01-01T00:10:00.000Z"
    # and the timer really fires at the new time
    await api.advance(7 * MIN)
    assert ("customers", "auto") in api.runs.ran


async def test_post_schedule_interval_and_pause(make_api: MakeApi) -> None:
    api = await make_api(schedule=DEFAULT_SCHEDULE)
    status, body = await api.post("/schedule", json={"syncType": "ddt", "intervalMinutes": 60.5})
    assert status == 200
    assert body["data"]["ddt"]["interval"] == 60.5
    status, body = await api.post("/schedule", json={"syncType": "ddt", "enabled": False})
    assert status == 200
    assert body["data"]["ddt"]["enabled"] is False
    assert body["data"]["ddt"]["nextRunAt"] is None
    status, body = await api.post(
        "/schedule", json={"syncType": "ddt", "enabled": True, "startDelayMinutes": 0, "intervalMinutes": 5}
    )
    assert status == 200
    assert body["data"]["ddt"]["nextRunAt"] == "2026-01-01T00:05:00.000Z"


async def test_get_status(api: Api) -> None:
    status, body = await api.get("/status", role="agent")
    assert status == 200
    data = body["data"]
    assert data["running"] is None
    assert data["queue"] == []
    assert data["held"] is False
    assert data["orchestrator"] == "running"
    assert set(data["types"]) == set(SYNC_TYPES)
    assert data["types"]["orders"]["state"] == "idle"
    assert data["types"]["orders"]["timer"] == "paused"


async def test_manual_run_is_accepted_and_coalesced(api: Api) -> None:
    status, body = await api.post("/orders/run", role="agent")
    assert (status, body) == (202, {"success": True, "data": {"syncType": "orders", "coalesced": False}})
    await api.advance(0)  # orders starts
    status, body = await api.post("/prices/run", role="agent")
    assert body["data"] == {"syncType": "prices", "coalesced": False}
    status, body = await api.post("/prices/run", role="agent")
    assert (status, body["data"]) == (202, {"syncType": "prices", "coalesced": True})
    data = (await api.get("/status"))[1]["data"]
    assert data["running"]["syncType"] == "orders"
    assert data["running"]["trigger"] == "manual"
    assert [q["syncType"] for q in data["queue"]] == ["prices"]
    assert data["types"]["prices"]["coalesced"] == 1


async def test_manual_run_of_an_unknown_type_is_a_400_naming_sync_type(api: Api) -> None:
    status, body = await api.post("/nope/run")
    assert status == 400
    assert body["success"] is False
    assert "syncType" in body["error"]


async def test_history_newest_first_with_filters(api: Api) -> None:
    await api.run("orders")
    await api.run("prices")
    await api.run("orders")
    status, body = await api.get("/history", role="agent")
    assert status == 200
    runs = body["data"]
    assert [r["syncType"] for r in runs] == ["orders", "prices", "orders"]
    assert runs[0]["outcome"] == "success"
    assert runs[0]["trigger"] == "manual"
    assert runs[0]["durationMs"] == 10_000
    assert runs[0]["finishedAt"] > runs[1]["finishedAt"]
    assert [r["syncType"] for r in (await api.get("/history?syncType=orders"))[1]["data"]] == ["orders"] * 2
    assert len((await api.get("/history?limit=1"))[1]["data"]) == 1
    assert len((await api.get("/history?syncType=&limit="))[1]["data"]) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("limit=601", "limit"),
        ("syncType=nope", "syncType"),
    ],
)
async def test_history_rejects_bad_queries(api: Api, query: str, field: str) -> None:
    status, body = await api.get(f"/history?{query}")
    assert status == 400
    assert field in body["error"]


async def test_unknown_path_and_method_answer_json(api: Api) -> None:
    unknown = ("/api/sync/nothing-here", "/api/sync", "/api/sync/", "/api/sync/schedule/", "/api/sync/a/b/c")
    for path in unknown:
        status, body = await api.call("GET", path)
        assert (status, body["success"]) == (404, False), path
        assert path in body["error"]
    async with api.client.delete("/api/sync/schedule", headers=bearer()) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET,HEAD,POST"
        assert (await response.json())["success"] is False
    async with api.client.get("/api/sync/orders/run", headers=bearer()) as response:
        assert (response.status, response.headers["Allow"]) == (405, "POST")
    async with api.client.get("/api/syncing") as response:  # not under the prefix: the host's 404
        assert response.status == 404
        assert response.content_type != "application/json"


async def test_head_of_a_read_has_the_headers_and_no_body(api: Api) -> None:
    async with api.client.head("/api/sync/schedule", headers=bearer()) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.read() == b""


async def test_healthz_ok_then_degraded_when_a_child_failed(api: Api) -> None:
    status, body = await api.call("GET", "/healthz", role=None)
    assert (status, body) == (200, {"status": "ok"})
    for _ in range(6):  # past 5 restarts in 60 s the timer stays down
        api.service.inject_fault("prices")
        await api.advance(2.0)
    status, body = await api.call("GET", "/healthz", role=None)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["failed"] == ["prices"]
    assert (await api.get("/status"))[1]["data"]["types"]["prices"]["timer"] == "failed"


async def test_metrics_count_runs_in_a_registry_of_their_own(api: Api) -> None:
    await api.run("orders")
    response = await api.client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'archibald_sync_runs_total{outcome="success",sync_type="orders"} 1.0' in text
    assert 'archibald_sync_runs_total{outcome="failed",sync_type="prices"} 0.0' in text
    assert (
        REGISTRY.get_sample_value("archibald_sync_runs_total", {"outcome": "success", "sync_type": "orders"})
        is None
    )


# --- the bridge: the service down, slow or failing -----------------------------------------


async def _unstarted(aiohttp_client: Any, **kwargs: Any) -> tuple[Any, SyncService]:
    service = SyncService(schedule=PAUSED)
    app = web.Application()
    setup(app, service, authenticator=JWTAuthenticator(SECRET), manage_service=False, **kwargs)
    return await aiohttp_client(app), service


async def test_a_service_that_is_not_running_answers_503(aiohttp_client: Any) -> None:
    client, _ = await _unstarted(aiohttp_client)
    response = await client.get("/api/sync/status", headers=bearer())
    assert response.status == 503
    assert (await response.json())["success"] is False
    response = await client.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "degraded"
    assert "not running" in body["error"]


def _never() -> Future[Any]:
    return Future()


def _failing(error: BaseException) -> Any:
    def start(*args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(error)
        return future

    return start


async def test_no_answer_in_time_is_a_504_and_the_loop_stays_free(
    make_api: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build(service: SyncService) -> web.Application:
        app = web.Application()
        setup(app, service, authenticator=JWTAuthenticator(SECRET), timeout=0.5)
        return app

    api = await make_api(build=build)
    monkeypatch.setattr(api.service, "status_future", _never)
    waiting = asyncio.create_task(api.get("/status"))
    # While that handler waits for the actors, the loop serves another request to the end.
    other, _ = await api.get("/openapi.json", role=None)
    assert other == 200
    assert not waiting.done()
    status, body = await waiting
    assert status == 504
    assert "no answer" in body["error"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidValueError("intervalMinutes", "must be between 5 and 180 minutes"), 400),
        (ServiceUnavailableError("the timer is down"), 503),
        (OSError("disk full"), 503),
    ],
)
async def test_failures_in_the_actors_map_to_statuses(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: BaseException, code: int
) -> None:
    monkeypatch.setattr(api.service, "retune_future", _failing(error))
    status, body = await api.post("/schedule", json={"syncType": "orders", "intervalMinutes": 20})
    assert status == code
    assert body["success"] is False
    if code == 400:
        assert "intervalMinutes" in body["error"]


async def test_overlapping_reads_share_one_round_trip(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = api.service.status_future

    def counting() -> Future[Any]:
        nonlocal calls
        calls += 1
        return original()

    monkeypatch.setattr(api.service, "status_future", counting)
    answers = await asyncio.gather(*(api.get("/status") for _ in range(20)))
    assert all(status == 200 for status, _ in answers)
    assert len({json.dumps(body, sort_keys=True) for _, body in answers}) == 1
    assert 1 <= calls < 20
    # a read that starts after a write never shares a round trip begun before it
    before = calls
    await api.post("/orders/run")
    assert (await api.get("/status"))[1]["data"]["running"]["syncType"] == "orders"
    assert calls == before + 1


async def test_schedule_reads_take_the_published_view_and_see_every_answered_retune(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_round_trip() -> Future[Any]:
        raise AssertionError("GET /schedule asked the actors")

    monkeypatch.setattr(api.service, "schedule_future", no_round_trip)
    for minutes in (15, 25, 35):
        update = {"syncType": "prices", "intervalMinutes": minutes}
        status, answered = await api.post("/schedule", json=update)
        assert status == 200
        status, read = await api.get("/schedule")
        assert status == 200
        assert read["data"] == answered["data"]
        assert read["data"]["prices"]["interval"] == minutes


async def test_a_dead_orchestrator_means_504_on_runs_and_a_degraded_health(make_api: MakeApi) -> None:
    def build(service: SyncService) -> web.Application:
        app = web.Application()
        setup(app, service, authenticator=JWTAuthenticator(SECRET), timeout=0.2)
        return app

    api = await make_api(build=build)
    for _ in range(6):
        api.service.inject_fault("orchestrator")
        await api.advance(2.0)
    status, body = await api.post("/orders/run")
    assert status == 504
    assert body["success"] is False
    status, body = await api.get("/status")
    assert (status, body["data"]["orchestrator"]) == (200, "failed")
    status, body = await api.call("GET", "/healthz", role=None)
    assert status == 503
    assert "orchestrator" in body["failed"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UnknownSyncTypeError("nope", SYNC_TYPES), 400),
        (InvalidValueError("limit", "must be a positive whole number"), 400),
        (ServiceStateError("not started"), 503),
    ],
)
async def test_the_bridge_maps_errors_raised_before_sending(error: Exception, code: int) -> None:
    def start() -> Future[Any]:
        raise error

    with pytest.raises(ApiError) as caught:
        await Bridge(1.0).call(start, "thing")
    assert caught.value.status == code
    assert caught.value.message


def test_the_bridge_needs_a_positive_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Bridge(0)
