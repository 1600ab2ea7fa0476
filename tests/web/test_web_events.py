"""Server-Sent Events: real syncs streamed, slow clients dropped, streams ended on shutdown."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import ClientResponse, web

from archibald_actors import SyncService
from archibald_actors.web import EventHub, JWTAuthenticator, Principal, setup

from .conftest import RUN_SECONDS, SECRET, Api, MakeApi, archibald_threads, bearer, token


async def next_message(response: ClientResponse, timeout: float = 5.0) -> dict[str, Any]:
    """The next SSE message as {"id", "event", "data"} (comments and ``retry`` skipped); {} at EOF."""
    message: dict[str, Any] = {}
    while True:
        line = (await asyncio.wait_for(response.content.readline(), timeout)).decode()
        if not line:
            return {}
        line = line.rstrip("\n")
        if not line:
            if "event" in message:
                return message
            continue
        if line.startswith(":"):
            message.setdefault("comments", []).append(line[1:].strip())
            continue
        name, _, value = line.partition(": ")
        message[name] = json.loads(value) if name == "data" else value


async def messages_until(response: ClientResponse, event: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        message = await next_message(response)
        assert message, f"stream ended before {event}; got {[m['event'] for m in seen]}"
        seen.append(message)
        if message["event"] == event:
            return seen


def with_hub(hubs: list[EventHub]) -> Any:
    def build(service: SyncService) -> web.Application:
        app = web.Application()
        hubs.append(setup(app, service, authenticator=JWTAuthenticator(SECRET)).hub)
        return app

    return build


async def test_a_real_sync_streams_started_and_completed(api: Api) -> None:
    async with api.client.get("/api/sync/events", params={"token": token("agent")}) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.headers["Cache-Control"].startswith("no-cache")
        status, _ = await api.post("/customers/run", role="agent")
        assert status == 202
        await api.advance(RUN_SECONDS + 1)
        seen = await messages_until(stream, "sync.completed")
    kinds = [m["event"] for m in seen]
    assert kinds.index("queue.changed") < kinds.index("sync.started") < kinds.index("sync.completed")
    started = seen[kinds.index("sync.started")]
    assert started["data"]["type"] == "sync.started"
    assert started["data"]["syncType"] == "customers"
    assert started["data"]["trigger"] == "manual"
    completed = seen[-1]["data"]
    assert completed["syncType"] == "customers"
    assert completed["outcome"] == "success"
    assert completed["durationMs"] == 10_000
    ids = [int(m["id"]) for m in seen]
    assert ids == sorted(ids)


async def test_a_failed_sync_and_a_retune_are_streamed(make_api: MakeApi) -> None:
    def broken(ctx: Any) -> None:
        raise RuntimeError("ERP login refused")

    api = await make_api(handlers={"ddt": broken})
    async with api.client.get("/api/sync/events", headers=bearer("agent")) as stream:
        await api.post("/schedule", json={"syncType": "orders", "intervalMinutes": 25})
        changed = (await messages_until(stream, "schedule.changed"))[-1]["data"]
        assert changed["syncType"] == "orders"
        assert changed["interval"] == 25
        await api.post("/ddt/run")
        await api.advance(1)
        failed = (await messages_until(stream, "sync.failed"))[-1]["data"]
    assert failed["syncType"] == "ddt"
    assert failed["outcome"] == "failed"
    assert "ERP login refused" in failed["error"]


async def test_a_client_that_falls_behind_is_dropped(make_api: MakeApi) -> None:
    hubs: list[EventHub] = []
    api = await make_api(build=with_hub(hubs))
    hubs[0].queue_size = 4
    async with api.client.get("/api/sync/events", headers=bearer()) as stream:
        assert hubs[0].clients == 1
        # 50 events arrive before the stream's handler gets a turn: its queue of 4 overflows
        for n in range(50):
            api.service.events.publish("test.burst", n=n)
        received = []
        while message := await next_message(stream):
            received.append(message)
    assert [m["data"]["n"] for m in received[:-1]] == [0, 1, 2, 3]
    assert received[-1]["event"] == "overflow"
    assert hubs[0].clients == 0
    # the service never noticed
    assert (await api.get("/status"))[0] == 200


async def test_heartbeats_keep_an_idle_stream_alive_and_a_gone_client_is_forgotten(make_api: MakeApi) -> None:
    hubs: list[EventHub] = []
    api = await make_api(build=with_hub(hubs))
    hubs[0].heartbeat = 0.02
    async with api.client.get("/api/sync/events", headers=bearer()) as stream:
        first = await asyncio.wait_for(stream.content.readline(), 5)
        assert first.startswith(b"retry:")
        lines = [await asyncio.wait_for(stream.content.readline(), 5) for _ in range(4)]
        assert b": ping\n" in lines
    await hubs[0].wait_clients(0, timeout=5)  # the handler notices on its next heartbeat write
    assert hubs[0].clients == 0


async def test_shutdown_ends_open_streams_promptly(make_api: MakeApi) -> None:
    api = await make_api()
    async with api.client.get("/api/sync/events", headers=bearer()) as stream:
        started = time.monotonic()
        await api.client.server.close()  # runs on_shutdown, then waits for handlers, then cleanup
        elapsed = time.monotonic() - started
        tail = await asyncio.wait_for(stream.content.read(), 5)
    assert elapsed < 5.0
    assert b"sync." not in tail
    assert not archibald_threads()


class ShortLived:
    """Credentials valid for 50 ms more."""

    async def authenticate(self, request: web.Request) -> Principal:
        return Principal("u", "u", "agent", expires_at=time.time() + 0.05)


async def test_a_stream_ends_when_its_credential_expires(make_api: MakeApi) -> None:
    def build(service: SyncService) -> web.Application:
        app = web.Application()
        setup(app, service, authenticator=ShortLived())
        return app

    api = await make_api(build=build)
    async with api.client.get("/api/sync/events") as stream:
        assert stream.status == 200
        message = await next_message(stream)
        assert message["event"] == "expired"
        assert await next_message(stream) == {}


def test_tokens_carry_their_expiry_into_the_principal() -> None:
    principal = JWTAuthenticator(SECRET).decode(token(ttl=120))
    assert principal.expires_at is not None
    assert 100 < principal.expires_at - time.time() <= 120
