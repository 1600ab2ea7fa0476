"""The circuit breakers over HTTP with real tokens (the admin's reset, in the OpenAPI document),
and how a status's ``breakers`` shows in /metrics."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from archibald_actors.web.metrics import SyncMetrics
from archibald_actors.web.openapi import build_openapi

from .conftest import Api, bearer
from .openapi_check import Checker
from .test_web_metrics import samples, scrape

RESET = "/breakers/reset"


def spy_on_resets(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str | None, str | None]]:
    """Record the scope of every reset the route asks the service for (the real call still runs)."""
    asked: list[tuple[str | None, str | None]] = []
    real = api.service.reset_breakers_future

    def recording(sync_type: str | None = None, agent_id: str | None = None) -> Future[int]:
        asked.append((sync_type, agent_id))
        return real(sync_type, agent_id)

    monkeypatch.setattr(api.service, "reset_breakers_future", recording)
    return asked


async def test_an_admin_resets_breakers_by_type_agent_pair_or_all(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = spy_on_resets(api, monkeypatch)
    for body in (
        None,
        {},
        {"syncType": "orders"},
        {"agentId": "mario"},
        {"syncType": "ddt", "agentId": "a.b@c"},
    ):
        status, answer = await api.post(RESET, json=body)
        assert (status, answer) == (200, {"success": True, "data": {"reset": 0}})
    assert asked == [(None, None), (None, None), ("orders", None), (None, "mario"), ("ddt", "a.b@c")]
    status, _ = await api.post(RESET, data=b"", headers={"Content-Type": "application/json"})
    assert status == 200 and asked[-1] == (None, None)  # an empty body is {}


async def test_only_an_admin_resets_breakers(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = spy_on_resets(api, monkeypatch)
    for role in ("agent", "viewer"):
        status, body = await api.post(RESET, json={}, role=None, headers=bearer(role, sub="mario"))
        assert status == 403 and "admin only" in body["error"]
    status, body = await api.post(RESET, json={}, role=None)
    assert status == 401 and body["success"] is False
    expired = bearer("admin", ttl=-60)
    assert (await api.post(RESET, json={}, role=None, headers=expired))[0] == 401
    assert asked == []  # nothing reached the service


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"syncType": 5}, "syncType"),
        ({"syncType": "nope"}, 'syncType "nope" is unknown'),
        ({"agentId": "a b"}, "agentId"),
        ({"agentId": 7}, "agentId"),
        ({"agentId": None}, "agentId"),
        ({"lane": "mario"}, '"lane" is not a known field; expected syncType, agentId'),
        (["orders"], "body must be a JSON object"),
        ("orders", "body must be a JSON object"),
    ],
)
async def test_bad_reset_bodies_are_400_naming_the_field(
    api: Api, monkeypatch: pytest.MonkeyPatch, body: Any, words: str
) -> None:
    asked = spy_on_resets(api, monkeypatch)
    status, answer = await api.post(RESET, json=body)
    assert status == 400 and words in answer["error"], answer
    bad_json = await api.post(RESET, data=b"{", headers={"Content-Type": "application/json"})
    assert bad_json[0] == 400 and "invalid JSON" in bad_json[1]["error"]
    assert asked == []


#: A status as the orchestrator builds it once breakers are wired (``Breakers.snapshot()``).
BREAKERS = {
    "pairs": [
        {
            "syncType": "orders",
            "agentId": "mario",
            "state": "open",
            "failures": 3,
            "openedAt": "2026-03-01T08:00:00.000Z",
            "until": "2026-03-01T10:00:00.000Z",
        },
        {
            "syncType": "orders",
            "agentId": "luigi",
            "state": "half_open",
            "failures": 3,
            "openedAt": "2026-03-01T06:00:00.000Z",
            "until": "2026-03-01T08:00:00.000Z",
        },
        {"syncType": "orders", "agentId": "anna", "state": "closed", "failures": 1},
        {
            "syncType": "prices",
            "agentId": None,
            "state": "open",
            "failures": 3,
            "openedAt": "2026-03-01T08:00:00.000Z",
            "until": "2026-03-01T10:00:00.000Z",
        },
        {
            "syncType": "orders",
            "agentId": "bea",
            "state": "open",
            "failures": 4,
            "openedAt": "2026-03-01T08:10:00.000Z",
            "until": "2026-03-01T10:10:00.000Z",
        },
    ],
    "erp": {"state": "open", "until": "2026-03-01T08:25:00.000Z", "lanes": 5},
}
CLOSED = {"pairs": [], "erp": {"state": "closed", "until": None, "lanes": 0}}


def healthy_status(**extra: Any) -> dict[str, Any]:
    row = {"timer": "running", "fresh": True, "consecutiveFailures": 0}
    return {"orchestrator": "running", "types": {"orders": row, "prices": row}, **extra}


def test_metrics_count_open_pairs_per_type_and_the_erp_breaker() -> None:
    metrics = SyncMetrics(["orders", "prices", "ddt"])
    before = samples(metrics.render().decode())
    assert before[("archibald_sync_breakers_open", (("sync_type", "ddt"),))] == 0  # shown before any opens
    assert before[("archibald_sync_erp_breaker_open", ())] == 0
    metrics.observe_status(healthy_status(breakers=BREAKERS))
    seen = samples(metrics.render().decode())
    assert seen[("archibald_sync_breakers_open", (("sync_type", "orders"),))] == 2
    assert seen[("archibald_sync_breakers_open", (("sync_type", "prices"),))] == 1
    assert seen[("archibald_sync_breakers_open", (("sync_type", "ddt"),))] == 0
    assert seen[("archibald_sync_erp_breaker_open", ())] == 1
    metrics.observe_status(healthy_status())  # a status without breakers changes nothing
    assert samples(metrics.render().decode()) == seen
    metrics.observe_status(healthy_status(breakers=CLOSED))  # all closed again: back to zero
    after = samples(metrics.render().decode())
    assert after[("archibald_sync_breakers_open", (("sync_type", "orders"),))] == 0
    assert after[("archibald_sync_erp_breaker_open", ())] == 0


async def test_a_scrape_reads_the_breakers_from_the_status(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    open_key = ("archibald_sync_breakers_open", (("sync_type", "orders"),))
    assert (await scrape(api))[open_key] == 0  # the real status: no breaker open
    real = api.service.status_future

    def with_breakers() -> Future[dict[str, Any]]:
        status: Future[dict[str, Any]] = Future()
        status.set_result({**real().result(5), "breakers": BREAKERS})
        return status

    monkeypatch.setattr(api.service, "status_future", with_breakers)
    seen = await scrape(api)
    assert seen[open_key] == 2 and seen[("archibald_sync_erp_breaker_open", ())] == 1


def test_the_document_describes_the_reset_and_its_body() -> None:
    document = build_openapi(sync_types=["orders", "prices"])
    checker = Checker(document)
    checker.check("POST", "/api/sync/breakers/reset", 200, {"success": True, "data": {"reset": 3}})
    for bad in ({"reset": -1}, {"reset": 1, "extra": True}, {}):
        with pytest.raises(AssertionError):
            checker.check("POST", "/api/sync/breakers/reset", 200, {"success": True, "data": bad})
    request = document["components"]["schemas"]["BreakerResetRequest"]
    assert request["additionalProperties"] is False and set(request["properties"]) == {"syncType", "agentId"}
    assert request["properties"]["syncType"]["$ref"] == "#/components/schemas/SyncType"
    assert request["properties"]["agentId"]["pattern"] == "^[A-Za-z0-9._@-]{1,64}$"
    operation = document["paths"]["/api/sync/breakers/reset"]["post"]
    assert operation["requestBody"]["required"] is False
    assert set(operation["responses"]) == {"200", "400", "401", "403", "413", "503", "504"}
