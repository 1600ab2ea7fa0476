"""Over HTTP: a run stopped by a hold is streamed and counted as cancelled, and a type whose
runs keep failing degrades /healthz, with its count in /status."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from archibald_actors.breaker import BreakerPolicy
from archibald_actors.web import build_openapi

from .conftest import PAUSED, Api, MakeApi, bearer
from .test_web_events import messages_until


def validate(component: str, body: Any) -> None:
    """``body`` is valid against the OpenAPI document's schema ``component``."""
    document = build_openapi()
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:openapi#/components/schemas/{component}"}
    validator = Draft202012Validator(schema, registry=registry)
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, errors


async def metric(api: Api, line_start: str) -> float:
    async with api.client.get("/metrics") as response:
        text = await response.text()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    assert len(values) == 1, (line_start, values)
    return values[0]


async def test_a_run_stopped_by_a_hold_is_streamed_and_counted_as_cancelled(make_api: MakeApi) -> None:
    api = await make_api(coroutine=True)  # the handler runs on this loop, as in a host app
    cancelled = 'archibald_sync_runs_total{outcome="cancelled",sync_type="customers"}'
    failed = 'archibald_sync_runs_total{outcome="failed",sync_type="customers"}'
    async with api.client.get("/api/sync/events", headers=bearer("agent")) as stream:
        assert (await api.post("/customers/run"))[0] == 202
        await messages_until(stream, "sync.started")
        async with api.service.exclusive(timeout=5.0):  # a user action in a host's route
            seen = await messages_until(stream, "sync.cancelled")
    assert "sync.failed" not in [m["event"] for m in seen]
    ended = seen[-1]
    assert ended["data"]["syncType"] == "customers"
    assert ended["data"]["outcome"] == "cancelled"
    assert await metric(api, cancelled) == 1.0
    assert await metric(api, failed) == 0.0


async def test_three_failed_runs_in_a_row_degrade_healthz_until_a_success(make_api: MakeApi) -> None:
    broken = True

    def ddt(ctx: Any) -> None:
        if broken:
            raise RuntimeError("ERP login refused")

    # Retries and breakers aside (test_recovery has them): this is the failure streak alone.
    schedule = {t: replace(e, retries=0) for t, e in PAUSED.items()}
    breakers = BreakerPolicy(breaker_failures=99)
    api = await make_api(handlers={"ddt": ddt}, schedule=schedule, breakers=breakers)

    async def run_ddt() -> None:
        assert (await api.post("/ddt/run"))[0] == 202
        await api.advance(1)
        assert await asyncio.wait_for(asyncio.wrap_future(api.service.wait_idle_future()), 5)

    async def healthz() -> tuple[int, Any]:
        return await api.call("GET", "/healthz", role=None)

    async def failures() -> int:
        status, body = await api.get("/status")
        assert status == 200
        validate("Status", body["data"])
        count: int = body["data"]["types"]["ddt"]["consecutiveFailures"]
        return count

    for expected in (1, 2):
        await run_ddt()
        assert await failures() == expected
        assert await healthz() == (200, {"status": "ok"})
    await run_ddt()
    assert await failures() == 3
    status, body = await healthz()
    assert (status, body) == (503, {"status": "degraded", "failed": [], "stale": [], "failing": ["ddt"]})
    validate("HealthDegraded", body)
    # Another type's success does not help ddt; ddt's own success clears it.
    await api.run("orders")
    assert (await healthz())[0] == 503
    broken = False
    await run_ddt()
    assert await failures() == 0
    assert await healthz() == (200, {"status": "ok"})
