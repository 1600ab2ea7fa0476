"""The webhook handler against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from archibald_actors import ManualClock, ScaledClock, SyncService
from archibald_actors.actors.runner import SyncContext
from archibald_actors.config import parse_config
from archibald_actors.handlers.webhook import WebhookError, webhook_handler

Received = list[dict[str, Any]]


@pytest.fixture
async def hook(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> AsyncIterator[tuple[str, Received]]:
    """A server answering 204 on /ok and 500 "boom" on /fail; yields its base URL and the bodies."""
    received: Received = []

    async def ok(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    async def fail(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/fail", fail)
    server = await aiohttp_server(app)
    yield f"http://127.0.0.1:{server.port}", received


def context(scheduled_at: float | None, trigger: str = "auto") -> SyncContext:
    return SyncContext(
        sync_type="orders",
        trigger=trigger,  # type: ignore[arg-type]
        scheduled_at=scheduled_at,
        clock=ManualClock(),
        is_async=True,
    )


async def test_2xx_is_success_and_the_body_names_the_run(hook: tuple[str, Received]) -> None:
    base, received = hook
    handler = webhook_handler(f"{base}/ok", clock=ManualClock())
    await handler(context(600.0))
    await handler(context(None, "manual"))
    assert received == [
        {"syncType": "orders", "trigger": "auto", "scheduledAt": "2026-01-01T00:10:00.000Z"},
        {"syncType": "orders", "trigger": "manual", "scheduledAt": None},
    ]


async def test_500_raises_with_status_and_body(hook: tuple[str, Received]) -> None:
    base, _ = hook
    handler = webhook_handler(f"{base}/fail", clock=ManualClock())
    with pytest.raises(WebhookError, match=r"^webhook answered 500: boom$"):
        await handler(context(0.0))


@pytest.fixture
async def silent() -> AsyncIterator[Silent]:
    """A server that takes requests and never answers."""
    silent = Silent()
    server = await asyncio.start_server(silent.serve, "127.0.0.1", 0)
    silent.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/slow"
    try:
        yield silent
    finally:
        server.close()
        await server.wait_closed()


class Silent:
    """Counts connections and notices when the client hangs up."""

    def __init__(self) -> None:
        self.url = ""
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected.set()
        await reader.read()  # until the client gives up and closes
        writer.close()
        await writer.wait_closed()
        self.closed.set()


async def test_the_timeout_counts_on_the_service_clock(silent: Silent) -> None:
    clock = ManualClock()
    handler = webhook_handler(silent.url, clock=clock, timeout_seconds=30)
    call = asyncio.create_task(handler(context(0.0)))
    await asyncio.wait_for(silent.connected.wait(), 5.0)
    # A wake-up due by now would have reached this loop before the thread's result did.
    await asyncio.to_thread(clock.advance, 29.5)
    assert not call.done() and call.cancelling() == 0
    await asyncio.to_thread(clock.advance, 0.5)
    with pytest.raises(WebhookError, match=r"did not answer within 30 s \(service clock\)"):
        await asyncio.wait_for(call, 5.0)
    await asyncio.wait_for(silent.closed.wait(), 5.0)  # the client hung up when it gave up
    assert clock.next_deadline() is None


async def test_a_stopped_run_is_cancelled_not_timed_out_and_disarms_its_deadline(silent: Silent) -> None:
    clock = ManualClock()
    call = asyncio.create_task(webhook_handler(silent.url, clock=clock, timeout_seconds=30)(context(0.0)))
    await asyncio.wait_for(silent.connected.wait(), 5.0)
    call.cancel()  # what a stop or the type's timeout does to a coroutine handler
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(silent.closed.wait(), 5.0)
    assert clock.next_deadline() is None


async def test_unreachable_is_a_failure() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = webhook_handler(f"http://127.0.0.1:{port}/x", clock=ManualClock())
    with pytest.raises(WebhookError, match="unreachable"):
        await handler(context(0.0))


@pytest.mark.parametrize("url", ["ftp://host/x", "http:///path", "127.0.0.1:80"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        webhook_handler(url, clock=ManualClock())


@pytest.mark.parametrize(("path", "outcome", "error"), [("ok", "success", None), ("fail", "failed", "500")])
async def test_service_records_the_webhook_outcome(
    hook: tuple[str, Received], path: str, outcome: str, error: str | None
) -> None:
    base, received = hook
    clock = ManualClock()
    config = parse_config(f'[sync.orders]\nurl = "{base}/{path}"\n', clock=clock)
    service = SyncService(config.handlers, clock=clock, schedule=config.schedule)
    # Started off this loop, so the coroutine handler runs on the service's own loop while
    # this loop keeps serving the webhook.
    await asyncio.to_thread(service.start)
    try:
        await asyncio.to_thread(clock.run_due)  # orders' slot at T+0; quiet once the POST ended
        assert await asyncio.to_thread(service.wait_idle, 10.0)
        run = (await asyncio.to_thread(service.history, "orders", 1))[0]
    finally:
        await asyncio.to_thread(service.stop, 5.0)
    assert run["outcome"] == outcome and run["trigger"] == "auto"
    assert received == [{"syncType": "orders", "trigger": "auto", "scheduledAt": "2026-01-01T00:00:00.000Z"}]
    if error is None:
        assert run["error"] is None
    else:
        assert run["error"] == "WebhookError: webhook answered 500: boom"
    assert not [t.name for t in threading.enumerate() if t.name.startswith("archibald-")]


async def test_under_a_scaled_clock_a_silent_webhook_times_out_in_scaled_time(silent: Silent) -> None:
    clock = ScaledClock(600)  # serve --speed 600: a 60 s timeout is a tenth of a real second
    text = f'[sync.orders]\nenabled = false\ntimeout_seconds = 60\nurl = "{silent.url}"\n'
    config = parse_config(text, clock=clock)
    service = SyncService(config.handlers, clock=clock, schedule=config.schedule)
    await asyncio.to_thread(service.start)  # coroutine handlers on the service's own loop
    try:
        await asyncio.to_thread(service.request_sync, "orders")
        assert await asyncio.to_thread(service.wait_idle, 10.0)  # not 60 real seconds
        run = (await asyncio.to_thread(service.history, "orders", 1))[0]
    finally:
        await asyncio.to_thread(service.stop, 5.0)
        await asyncio.to_thread(clock.join, 5.0)
    assert run["outcome"] == "timeout"
    assert run["durationMs"] >= 60_000  # schedule time
    await asyncio.wait_for(silent.closed.wait(), 5.0)
