"""Fixtures of the web tests: a real service on a ManualClock behind a real aiohttp test server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, SyncService
from archibald_actors.web import create_app

SECRET = "web-tests-secret-" + "s" * 50  # long enough for HS512 too (64 bytes)
PREFIX = "/api/sync"
#: Every timer paused: nothing runs unless a test asks for it.
PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
#: Clock seconds a test handler takes.
RUN_SECONDS = 10.0


def token(
    role: str | None = "admin",
    *,
    sub: str | None = "alice",
    secret: str = SECRET,
    ttl: float = 3600,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    """A real token signed with PyJWT; ``None`` leaves a claim out."""
    payload: dict[str, Any] = {"exp": int(time.time() + ttl), **claims}
    if sub is not None:
        payload["sub"] = sub
    if role is not None:
        payload["role"] = role
    return jwt.encode(payload, secret, algorithm=algorithm)


def bearer(role: str | None = "admin", **kwargs: Any) -> dict[str, str]:
    """An ``Authorization`` header with a fresh token."""
    return {"Authorization": f"Bearer {token(role, **kwargs)}"}


@dataclass
class Runs:
    """Plain handlers that sleep on the service clock and record what ran."""

    seconds: float = RUN_SECONDS
    ran: list[tuple[str, str]] = field(default_factory=list)
    loops: list[asyncio.AbstractEventLoop] = field(default_factory=list)

    def plain(self, sync_types: Iterable[str] = SYNC_TYPES) -> dict[str, Callable[[Any], None]]:
        def handle(ctx: Any) -> None:
            self.ran.append((ctx.sync_type, ctx.trigger))
            ctx.sleep(self.seconds)

        return dict.fromkeys(sync_types, handle)

    def coroutine(
        self, sync_types: Iterable[str] = SYNC_TYPES
    ) -> dict[str, Callable[[Any], Awaitable[None]]]:
        async def handle(ctx: Any) -> None:
            self.loops.append(asyncio.get_running_loop())
            self.ran.append((ctx.sync_type, ctx.trigger))
            await ctx.sleep(self.seconds)

        return dict.fromkeys(sync_types, handle)


@dataclass
class Api:
    """A client of the API with helpers for tokens, JSON and the ManualClock."""

    client: TestClient[web.Request, web.Application]
    service: SyncService
    clock: ManualClock
    runs: Runs
    prefix: str = PREFIX

    async def call(
        self, method: str, path: str, *, role: str | None = "admin", json: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        """Send a request (``role=None``: no token) and return status and decoded JSON."""
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers.update(bearer(role))
        async with self.client.request(method, path, headers=headers, json=json, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """GET ``prefix + path``."""
        return await self.call("GET", self.prefix + path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        """POST ``prefix + path``."""
        return await self.call("POST", self.prefix + path, **kwargs)

    async def advance(self, seconds: float) -> None:
        """Advance the ManualClock off the loop (coroutine handlers need the loop meanwhile)."""
        await asyncio.to_thread(self.clock.advance, seconds)

    async def run(self, sync_type: str) -> None:
        """Request a manual run and let it finish."""
        status, _ = await self.post(f"/{sync_type}/run")
        assert status == 202
        await self.advance(RUN_SECONDS + 1)
        assert await asyncio.to_thread(self.service.wait_idle, 5.0)


MakeApi = Callable[..., Awaitable[Api]]


_ACTOR_THREADS = ("SupervisorActor-", "TimerActor-", "OrchestratorActor-")


def archibald_threads() -> list[str]:
    """Names of the service's threads still alive: its own (``archibald-*``) and its actors'."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("archibald-") or t.name.startswith(_ACTOR_THREADS)
    ]


@pytest.fixture
async def make_api(aiohttp_client: Any) -> AsyncIterator[MakeApi]:
    """Build a service on a fresh ManualClock and a standalone app serving it; all closed in teardown."""
    made: list[Api] = []

    async def make(
        *,
        schedule: Mapping[str, Any] | None = None,
        coroutine: bool = False,
        handlers: Mapping[str, Callable[[Any], Any]] | None = None,
        build: Callable[[SyncService], web.Application] | None = None,
        **service_kwargs: Any,
    ) -> Api:
        clock = ManualClock()
        runs = Runs()
        schedule = schedule or PAUSED
        recorded = runs.coroutine(schedule) if coroutine else runs.plain(schedule)
        all_handlers = {**recorded, **(handlers or {})}
        service = SyncService(all_handlers, clock=clock, schedule=schedule, **service_kwargs)
        app = build(service) if build is not None else create_app(service, secret=SECRET)
        client = await aiohttp_client(app)
        await asyncio.to_thread(clock.wait_quiet)  # the timers have armed and reported
        api = Api(client, service, clock, runs)
        made.append(api)
        return api

    yield make
    for api in made:
        await api.client.close()
        await asyncio.to_thread(api.service.stop, 5.0)
    assert not archibald_threads(), f"threads left behind: {archibald_threads()}"


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    """A standalone app over a service whose timers are all paused."""
    return await make_api()
