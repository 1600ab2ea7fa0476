"""Embedding the API in a host aiohttp application, and the service's lifecycle with the app."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from archibald_actors import ServiceStateError, SyncService
from archibald_actors.web import JWTAuthenticator, SyncApi, freeze_heap, setup

from .conftest import PAUSED, RUN_SECONDS, SECRET, MakeApi, archibald_threads, bearer


def host_app(service: SyncService, **options: Any) -> web.Application:
    """A host backend with a route and a middleware of its own."""
    host_routes = web.RouteTableDef()

    @host_routes.get("/hello")
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    @web.middleware
    async def stamp(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        response.headers["X-Host"] = "yes"
        return response

    app = web.Application(middlewares=[stamp], **options.pop("app_options", {}))
    app.add_routes(host_routes)
    into: list[SyncApi] = options.pop("into", [])
    into.append(setup(app, service, authenticator=JWTAuthenticator(SECRET), **options))
    return app


async def test_a_host_mounts_the_api_drives_a_sync_and_shuts_down_cleanly(make_api: MakeApi) -> None:
    api = await make_api(coroutine=True, build=host_app)
    client = api.client
    async with client.get("/hello") as response:
        assert response.status == 200
        assert await response.json() == {"hello": "world"}
        assert response.headers["X-Host"] == "yes"
    async with client.post("/api/sync/invoices/run", headers=bearer("agent")) as response:
        assert response.status == 202
        assert response.headers["X-Host"] == "yes"  # the host's middleware sees the API too
    await api.advance(RUN_SECONDS + 1)
    async with client.get("/api/sync/history", headers=bearer()) as response:
        runs = (await response.json())["data"]
    assert [(r["syncType"], r["outcome"]) for r in runs] == [("invoices", "success")]
    # the coroutine handler ran on the app's own loop
    assert api.runs.loops == [asyncio.get_running_loop()]
    async with client.get("/healthz") as response:
        assert response.status == 200
        assert response.headers["X-Host"] == "yes"
    async with client.get("/nope") as response:
        assert response.status == 404  # the host's own 404, untouched
    assert archibald_threads()  # the actors are alive while the app is
    await client.close()
    assert not archibald_threads()


async def test_closing_the_app_cancels_a_running_coroutine_sync(make_api: MakeApi) -> None:
    ends: list[str] = []

    async def long_sync(ctx: Any) -> None:
        try:
            await ctx.sleep(3600)
        except BaseException as exc:
            ends.append(type(exc).__name__)
            raise

    api = await make_api(handlers={"orders": long_sync}, build=host_app)
    await api.post("/orders/run")
    await api.advance(1)  # orders is running, sleeping on the clock
    assert (await api.get("/status"))[1]["data"]["running"]["syncType"] == "orders"
    started = time.monotonic()
    await api.client.close()
    assert time.monotonic() - started < 5.0
    assert not archibald_threads()
    assert ends in (["CancelledError"], ["SyncCancelledError"])


async def test_prefix_and_root_paths_are_configurable(make_api: MakeApi) -> None:
    apis: list[SyncApi] = []

    def build(service: SyncService) -> web.Application:
        app = host_app(
            service, prefix="/internal/sync", healthz_path="/internal/healthz", metrics_path=None, into=apis
        )
        return app

    api = await make_api(build=build)
    async with api.client.get("/internal/sync/schedule", headers=bearer()) as response:
        assert response.status == 200
    async with api.client.get("/internal/healthz") as response:
        assert response.status == 200
    for gone in ("/api/sync/schedule", "/healthz", "/metrics"):
        async with api.client.get(gone, headers=bearer()) as response:
            assert response.status == 404
    paths = set(apis[0].openapi["paths"])
    assert "/internal/sync/schedule" in paths
    assert "/internal/healthz" in paths
    assert "/metrics" not in paths


async def test_the_body_limit_holds_whatever_the_hosts_client_max_size(make_api: MakeApi) -> None:
    api = await make_api(build=lambda s: host_app(s, app_options={"client_max_size": 1024}))
    body = json.dumps({"syncType": "orders", "intervalMinutes": 20}).encode() + b" " * 4096
    async with api.client.post("/api/sync/schedule", data=body, headers=bearer()) as response:
        assert response.status == 200


async def test_a_host_that_manages_the_service_itself(make_api: MakeApi) -> None:
    def build(service: SyncService) -> web.Application:
        async def own_lifecycle(app: web.Application) -> AsyncIterator[None]:
            service.start()
            yield
            # left running on purpose: the test checks the web layer did not stop it

        app = web.Application()
        app.cleanup_ctx.append(own_lifecycle)
        setup(app, service, authenticator=JWTAuthenticator(SECRET), manage_service=False)
        return app

    api = await make_api(build=build)
    assert (await api.get("/status"))[0] == 200
    await api.client.close()
    status = await asyncio.wrap_future(api.service.status_future())
    assert status["orchestrator"] == "running"  # still up: the host owns it
    await asyncio.to_thread(api.service.stop, 5.0)
    assert not archibald_threads()


async def test_an_app_cannot_start_a_service_that_already_runs() -> None:
    service = SyncService(schedule=PAUSED)
    service.start()
    try:
        app = web.Application()
        setup(app, service, authenticator=JWTAuthenticator(SECRET))
        runner = web.AppRunner(app)
        with pytest.raises(ServiceStateError):
            await runner.setup()
        await runner.cleanup()
        status = await asyncio.wrap_future(service.status_future())
        assert status["orchestrator"] == "running"  # a failed start stopped nothing
    finally:
        await asyncio.to_thread(service.stop, 5.0)
    assert not archibald_threads()


def test_freeze_heap_hides_what_exists_from_the_collector() -> None:
    made_before = [object()]  # a list is tracked by the collector
    try:
        frozen = freeze_heap()
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is made_before for o in gc.get_objects())
        made_after: list[object] = [object()]
        assert any(o is made_after for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert any(o is made_before for o in gc.get_objects())


@pytest.mark.parametrize("prefix", ["", "/", "api/sync", "/api/sync/", "/api/{x}"])
def test_a_prefix_that_is_not_a_path_is_refused_naming_it(prefix: str) -> None:
    service = SyncService(schedule=PAUSED)
    with pytest.raises(ValueError, match="prefix"):
        setup(web.Application(), service, prefix=prefix, authenticator=JWTAuthenticator(SECRET))
