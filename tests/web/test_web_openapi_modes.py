"""Every answer of every route matches the served OpenAPI document, in every mode.

Standalone (``create_app``), embedded (``setup()`` in a host app, another prefix, a type of
its own), and both replicas of a cluster on PostgreSQL: a leader and a follower, whose
``/healthz`` names its ``role`` and whose timers read ``"standby"``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest
from aiohttp import web
from pg_server import PG_DSN, admin_connection
from psycopg import sql

from archibald_actors import DEFAULT_SCHEDULE, ScaledClock, ScheduleEntry, SyncService
from archibald_actors.events import Event
from archibald_actors.store import PostgresStore
from archibald_actors.web import JWTAuthenticator, create_app, setup

from .conftest import PAUSED, SECRET, MakeApi
from .openapi_check import Conformance, exercise

#: Real seconds any wait of these tests may take.
WAIT = 10.0


async def test_standalone(make_api: MakeApi) -> None:
    api = await make_api()
    conformance = Conformance(api.client, "/api/sync/openapi.json")
    await conformance.load()
    await exercise(conformance, "/api/sync", "/healthz", "/metrics", "orders")
    await api.advance(60)  # orders runs (twice: the second request was a follow-up) ...
    assert await asyncio.to_thread(api.service.wait_idle, 5.0)
    await api.post("/prices/run")
    await api.advance(1)  # ... and prices is running now, with orders queued behind it
    await api.post("/orders/run")
    _, status = await conformance.call("GET", "/api/sync/status", "/api/sync/status")
    assert status["data"]["running"]["syncType"] == "prices" and status["data"]["queue"]
    assert status["data"]["types"]["orders"]["lastRun"]["outcome"] == "success"
    _, history = await conformance.call("GET", "/api/sync/history", "/api/sync/history")
    assert history["data"]
    for _ in range(6):  # the ddt timer dies for good: health turns degraded
        api.service.inject_fault("ddt")
        await api.advance(2.0)
    assert (await conformance.call("GET", "/healthz", "/healthz", role=None))[0] == 503
    assert conformance.operations() == conformance.documented()


async def test_embedded_with_another_prefix_and_a_type_of_its_own(make_api: MakeApi) -> None:
    refunds = ScheduleEntry("refunds", interval_minutes=15, start_delay_minutes=2, priority=3, enabled=False)
    schedule = {**PAUSED, "refunds": refunds}

    def host(service: SyncService) -> web.Application:
        app = web.Application()
        setup(
            app,
            service,
            prefix="/erp/sync",
            authenticator=JWTAuthenticator(SECRET),
            healthz_path="/erp/healthz",
            metrics_path="/erp/metrics",
        )
        return app

    api = await make_api(schedule=schedule, build=host, handlers={"refunds": lambda ctx: ctx.sleep(5)})
    conformance = Conformance(api.client, "/erp/sync/openapi.json")
    document = await conformance.load()
    assert document["components"]["schemas"]["SyncType"]["enum"] == [*DEFAULT_SCHEDULE, "refunds"]
    await exercise(conformance, "/erp/sync", "/erp/healthz", "/erp/metrics", "refunds")
    await api.advance(30)
    assert await asyncio.to_thread(api.service.wait_idle, 5.0)
    _, status = await conformance.call("GET", "/erp/sync/status", "/erp/sync/status")
    assert status["data"]["types"]["refunds"]["lastRun"]["syncType"] == "refunds"
    assert conformance.operations() == conformance.documented()


# --- a cluster: two replicas on one PostgreSQL schema -----------------------------------


class Watch:
    """A service's events (subscribed before it starts), waited for with a bound."""

    def __init__(self, service: SyncService) -> None:
        self.events: list[Event] = []
        self._changed = threading.Condition()
        service.events.subscribe(self._seen)

    def _seen(self, event: Event) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def count(self, kind: str, sync_type: str | None = None) -> int:
        with self._changed:
            return sum(1 for e in self.events if e["type"] == kind and sync_type in (None, e.get("syncType")))

    def wait_for(self, what: Callable[[Watch], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: what(self), WAIT), f"not seen in {self.events}"


@pytest.fixture
def schema() -> Any:
    name = f"o_{uuid4().hex[:8]}"
    yield name
    with admin_connection("OpenAPI cluster") as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
async def replica(aiohttp_client: Any, schema: str) -> AsyncIterator[Callable[[], Any]]:
    """Start a replica (a standalone app over a PostgreSQL store); all closed in teardown."""
    clients: list[Any] = []

    async def make() -> tuple[Any, SyncService, Watch]:
        def handler(ctx: Any) -> None:
            ctx.sleep(30)  # 0.05 real seconds at 600x

        # Every timer paused: runs come from the tests' requests, the timers are all on "standby"
        # on the follower whatever their state on the leader.
        service = SyncService(
            dict.fromkeys(DEFAULT_SCHEDULE, handler),
            clock=ScaledClock(600.0),
            schedule=PAUSED,
            store=PostgresStore(PG_DSN, schema),
        )
        watch = Watch(service)
        client = await aiohttp_client(create_app(service, secret=SECRET))
        clients.append(client)
        return client, service, watch

    yield make
    for client in clients:
        await client.close()


async def test_cluster_leader_and_follower(replica: Callable[[], Any]) -> None:
    leader_client, _, watch = await replica()
    await asyncio.to_thread(watch.wait_for, lambda w: w.count("leadership.changed") > 0)
    assert watch.events[0]["role"] == "leader"
    follower_client, follower, _ = await replica()
    follower_status = await asyncio.to_thread(follower.status)
    assert follower_status["role"] == "follower"
    assert {t["timer"] for t in follower_status["types"].values()} == {"standby"}

    for client in (leader_client, follower_client):
        conformance = Conformance(client, "/api/sync/openapi.json")
        await conformance.load()
        done = watch.count("sync.completed", "invoices")
        await exercise(conformance, "/api/sync", "/healthz", "/metrics", "invoices")
        # The leader runs every request, the follower's too.
        await asyncio.to_thread(watch.wait_for, lambda w, n=done: w.count("sync.completed", "invoices") > n)
        _, status = await conformance.call("GET", "/api/sync/status", "/api/sync/status")
        assert status["data"]["types"]["invoices"]["lastRun"] is not None
        _, health = await conformance.call("GET", "/healthz", "/healthz", role=None)
        assert health["role"] == status["data"]["role"]
        assert conformance.operations() == conformance.documented()
