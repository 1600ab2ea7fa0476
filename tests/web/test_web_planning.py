"""POST /schedule/preview and POST /schedule/suggest: simulations of the live service that apply nothing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from archibald_actors import DEFAULT_SCHEDULE
from archibald_actors.web import planning_routes

from .conftest import Api, MakeApi, bearer

PREVIEW = "/schedule/preview"


async def post_raw(api: Api, path: str, body: bytes, role: str = "admin") -> tuple[int, Any]:
    async with api.client.post(
        api.prefix + path, data=body, headers={**bearer(role), "Content-Type": "application/json"}
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def live_state(api: Api) -> dict[str, Any]:
    """Everything a preview must leave as it was: the schedule, the store, the status."""
    service, store = api.service, api.service.store
    stored = store.load()
    status = await asyncio.to_thread(service.status)
    return {
        "schedule": (await api.get("/schedule"))[1],
        "epoch": stored.epoch,
        "entries": stored.entries,
        "served": stored.served,
        "runs": store.runs(None, 1000),
        "requests": store.requests(),
        "queue": status["queue"],
        "running": status["running"],
        "counters": {t: (s["runs"], s["coalesced"], s["missed"]) for t, s in status["types"].items()},
        "clock": api.clock.now(),
    }


def minutes_after_epoch(document: dict[str, Any], stamp: str) -> float:
    epoch = datetime.fromisoformat(document["epoch"])
    return (datetime.fromisoformat(stamp) - epoch).total_seconds() / 60


@pytest.fixture
async def live(make_api: MakeApi) -> Api:
    """The default table, running for 25 minutes (runs take 10 s each)."""
    api = await make_api(schedule=DEFAULT_SCHEDULE)
    await api.advance(25 * 60)
    return api


async def test_a_preview_applies_nothing(live: Api) -> None:
    await live.post("/orders/run", role="agent")  # a stored manual request, and orders running
    await live.advance(1)
    before = await live_state(live)
    assert before["running"] is not None and before["runs"]
    change = {"syncType": "prices", "startDelayMinutes": 13}
    status, body = await live.post(f"{PREVIEW}?hours=3", json=change, role="agent")
    assert status == 200, body
    assert await live_state(live) == before
    preview = body["data"]
    # The preview did use the change: prices now runs on its 13-minute grid.
    prices = [r for r in preview["runs"] if r["syncType"] == "prices"]
    assert prices and all(minutes_after_epoch(preview, r["scheduledAt"]) % 30 == 13 for r in prices)
    assert preview["schedule"]["prices"]["startDelayMinutes"] == 13


async def test_the_running_job_and_the_queue_come_first(live: Api) -> None:
    live.runs.seconds = 600.0  # orders will run for 10 minutes
    await live.post("/orders/run")
    await live.advance(1)
    await live.post("/customers/run")  # stored, queued behind orders
    status, body = await live.post(PREVIEW, json={"syncType": "ddt", "enabled": False})
    assert status == 200, body
    preview = body["data"]
    [running] = preview["running"]
    assert running["syncType"] == "orders"
    ends = datetime.fromisoformat(running["expectedEndAt"])
    # Nothing starts before the live run is expected to end; the manual request goes first.
    first = preview["runs"][0]
    assert datetime.fromisoformat(first["startedAt"]) >= ends > datetime.fromisoformat(preview["from"])
    assert (first["syncType"], first["trigger"]) == ("customers", "manual")
    assert not [r for r in preview["runs"] if r["syncType"] == "ddt"]


async def test_durations_come_from_the_types_history(live: Api) -> None:
    status, body = await live.post(PREVIEW, json={"syncType": "orders", "enabled": True})
    assert status == 200
    preview = body["data"]
    assert preview["schedule"]["orders"]["durationSeconds"] == [10, 10]  # the median of its runs
    assert preview["schedule"]["products"]["durationSeconds"] == [40, 60]  # never ran: the demo's
    orders = [r for r in preview["runs"] if r["syncType"] == "orders" and r["finishedAt"]]
    assert orders and {r["durationSeconds"] for r in orders} == {10}


async def test_a_longer_interval_shows_fewer_runs(live: Api) -> None:
    counts = {}
    for interval in (10, 30):
        status, body = await live.post(PREVIEW, json={"syncType": "orders", "intervalMinutes": interval})
        assert status == 200
        counts[interval] = sum(1 for r in body["data"]["runs"] if r["syncType"] == "orders")
    assert counts[30] < counts[10]
    assert 34 <= counts[10] <= 37 and 11 <= counts[30] <= 13  # 6 hours


async def test_a_list_of_changes_applies_each(live: Api) -> None:
    changes = [{"syncType": "orders", "intervalMinutes": 30}, {"syncType": "orders", "startDelayMinutes": 2}]
    status, body = await live.post(f"{PREVIEW}?hours=2", json=changes)
    assert status == 200
    entry = body["data"]["schedule"]["orders"]
    assert (entry["intervalMinutes"], entry["startDelayMinutes"]) == (30, 2)
    hours = datetime.fromisoformat(body["data"]["until"]) - datetime.fromisoformat(body["data"]["from"])
    assert hours == timedelta(hours=2)


BAD_BODIES = [
    b"",
    b"not json",
    b"{",
    b"\xff\xfe{}",
    b'"orders"',
    b"null",
    b"[" * 10_000 + b"]" * 10_000,
    b'{"syncType": "orders", "intervalMinutes": NaN}',
    b'{"syncType": "orders", "startDelayMinutes": 1e309}',
    b'{"syncType": "orders", "intervalMinutes": "15"}',
    b'{"syncType": "orders", "intervalMinutes": 4}',
    b'{"syncType": "orders", "intervalMinutes": true}',
    b'{"syncType": "orders", "enabled": 1}',
    b'{"syncType": "orders"}',
    b'{"syncType": "nope", "enabled": true}',
    b'{"syncType": 3, "enabled": true}',
    b'{"intervalMinutes": 10}',
    b'{"syncType": "orders", "intervalMinutes": 10, "extra": 1}',
    b" " * 70_000,
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
async def test_bad_bodies_get_the_same_400s_as_post_schedule(live: Api, body: bytes) -> None:
    real = await post_raw(live, "/schedule", body)
    previewed = await post_raw(live, PREVIEW, body)
    assert real[0] in (400, 413)
    assert previewed == real


async def test_a_bad_item_of_a_list_is_named_by_its_index(live: Api) -> None:
    bad = {"syncType": "orders", "intervalMinutes": 4}
    _, single = await post_raw(live, "/schedule", json.dumps(bad).encode())
    body = json.dumps([{"syncType": "orders", "enabled": True}, bad]).encode()
    expected = {"success": False, "error": f"body[1]: {single['error']}"}
    assert await post_raw(live, PREVIEW, body) == (400, expected)
    assert (await post_raw(live, PREVIEW, b"[]"))[0] == 400


@pytest.mark.parametrize(
    "query", ["hours=0", "hours=49", "hours=x", "hours=nan", "days=1", "hours=1e400", "hours=2&hours=3"]
)
async def test_hours_out_of_range_is_a_400(live: Api, query: str) -> None:
    status, body = await live.post(f"{PREVIEW}?{query}", json={"syncType": "orders", "enabled": True})
    assert status == 400
    assert body["error"].startswith(
        ("hours must be a number from 1 to 48", "unknown query parameter", "hours is given more than once")
    )


async def test_a_preview_needs_a_token_and_a_suggestion_an_admin(live: Api) -> None:
    assert (await live.post(PREVIEW, json={"syncType": "orders", "enabled": True}, role=None))[0] == 401
    assert (await live.post("/schedule/suggest", role="agent"))[0] == 403
    assert (await live.post("/schedule/suggest", json={"what": 1}))[0] == 400


async def test_a_suggestion_for_the_live_table(live: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Time enough for the whole search on a loaded machine: the search is deterministic then.
    monkeypatch.setattr(planning_routes, "SUGGEST_BUDGET", 300.0)
    before = await live_state(live)
    status, body = await live.post("/schedule/suggest?hours=3")
    assert status == 200, body
    suggestion = body["data"]
    assert await live_state(live) == before  # nothing applied
    assert suggestion["complete"] is True
    assert suggestion["collisions"]["before"] > 0  # the default table's collisions...
    assert suggestion["collisionFree"] is True  # ... a stagger removes them all (10 s runs)
    for sync_type, waits in suggestion["waits"].items():
        assert waits["after"]["mean"] == 0, sync_type
        delay = suggestion["delays"][sync_type]["suggested"]
        assert 0 <= delay < DEFAULT_SCHEDULE[sync_type].interval_minutes and float(delay).is_integer()


async def test_a_stopped_service_previews_nothing(live: Api) -> None:
    await asyncio.to_thread(live.service.stop, 5.0)
    status, body = await live.post(PREVIEW, json={"syncType": "orders", "enabled": True})
    assert status == 503 and "not running" in body["error"]
    assert (await live.post("/schedule/suggest"))[0] == 503


async def test_a_preview_past_its_budget_answers_with_what_it_got_through(
    live: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning_routes, "PREVIEW_BUDGET", 0.0)
    status, body = await live.post(f"{PREVIEW}?hours=48", json={"syncType": "orders", "enabled": True})
    assert status == 200
    preview = body["data"]
    assert preview["complete"] is False and preview["hours"] == 48
    reached = datetime.fromisoformat(preview["until"]) - datetime.fromisoformat(preview["from"])
    assert reached < timedelta(hours=1)  # it stopped at its first look at the budget


async def test_a_suggestion_is_scored_over_12_hours_at_most(live: Api) -> None:
    status, body = await live.post("/schedule/suggest?hours=13")
    assert status == 400 and body["error"] == 'hours must be a number from 1 to 12, got "13"'


async def test_a_preview_fans_out_to_the_live_agents(make_api: MakeApi) -> None:
    schedule = {**DEFAULT_SCHEDULE, "orders": replace(DEFAULT_SCHEDULE["orders"], scope="per_agent")}
    api = await make_api(schedule=schedule, max_concurrent=2)
    for agent in ("anna", "bruno", "carla"):
        await asyncio.to_thread(api.service.put_agent, agent)
    assert (await api.post("/orders/run"))[0] == 202  # every agent's job: two run, one waits
    await api.advance(1)
    status, body = await api.post(f"{PREVIEW}?hours=1", json={"syncType": "prices", "enabled": False})
    assert status == 200, body
    preview = body["data"]
    assert {r["agentId"] for r in preview["running"]} == {"anna", "bruno"}
    assert preview["maxConcurrent"] == 2 and preview["agents"] == 3
    orders = [r for r in preview["runs"] if r["syncType"] == "orders"]
    assert {r["agentId"] for r in orders} == {"anna", "bruno", "carla"}
    assert not [r for r in preview["runs"] if r["syncType"] == "prices"]
