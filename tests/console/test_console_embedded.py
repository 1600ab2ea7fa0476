"""The console mounted by ``setup(..., console=True)`` in a host application, in real Chromium:
served under the host's prefix, talking to the API there, and showing a hold as a banner."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from playwright.sync_api import Browser, expect

from archibald_actors import DEFAULT_SCHEDULE, ScaledClock, SyncService
from archibald_actors.web import make_token, setup
from tests.console.conftest import Pages
from tests.web.conftest import SECRET

PREFIX = "/erp/sync"
#: Real seconds to start or stop the host.
HOST_TIMEOUT = 30.0


@dataclass
class Host:
    """A host aiohttp application with the sync API and its console, served on its own thread."""

    service: SyncService
    base: str
    loop: asyncio.AbstractEventLoop
    runner: web.AppRunner
    thread: threading.Thread

    @classmethod
    def start(cls, service: SyncService) -> Host:
        app = web.Application()

        async def hello(_: web.Request) -> web.Response:
            return web.Response(text="the host's own page")

        app.router.add_get("/", hello)
        setup(app, service, prefix=PREFIX, secret=SECRET, console=True)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="console-test-host", daemon=True)
        thread.start()
        runner = web.AppRunner(app)

        async def listen() -> str:
            await runner.setup()  # starts the service (setup's cleanup_ctx)
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            return f"http://127.0.0.1:{runner.addresses[0][1]}"

        base = asyncio.run_coroutine_threadsafe(listen(), loop).result(HOST_TIMEOUT)
        return cls(service, base, loop, runner, thread)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(HOST_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(HOST_TIMEOUT)
        self.loop.close()


@contextlib.contextmanager
def held(service: SyncService) -> Iterator[None]:
    """``service.exclusive()`` taken and released on a thread of its own.

    Not on this thread: Playwright's sync API runs its event loop here, and the service
    refuses blocking calls on a loop's thread.
    """
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with service.exclusive(timeout=10):
            taken.set()
            release.wait(HOST_TIMEOUT)

    thread = threading.Thread(target=hold, name="console-test-hold")
    thread.start()
    try:
        assert taken.wait(HOST_TIMEOUT)
        yield
    finally:
        release.set()
        thread.join(HOST_TIMEOUT)


@pytest.fixture
def host() -> Iterator[Host]:
    """A host on a scaled clock with every timer paused: nothing runs unless asked."""
    paused = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
    host = Host.start(SyncService(clock=ScaledClock(30), schedule=paused))
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def host_pages(browser: Browser, host: Host, tmp_path: Path) -> Iterator[Pages]:
    """Browser contexts closed before the host stops; no script error allowed."""
    opened = Pages(browser, tmp_path)
    try:
        yield opened
        errors = list(opened.errors)
    finally:
        for context in opened.contexts:
            context.close()
    assert not errors


def test_the_embedded_console_lives_under_the_prefix_and_shows_a_hold(host: Host, host_pages: Pages) -> None:
    token = make_token(SECRET, role="admin", sub="alice")
    page = host_pages.open(f"{host.base}{PREFIX}/console/?token={token}")
    expect(page.locator("tr[data-sync-type]")).to_have_count(6)
    assert page.url == f"{host.base}{PREFIX}/console/"
    for row in page.locator("tr[data-sync-type]").all():
        expect(row).to_have_attribute("data-state", "paused")
    hold = page.locator("[data-banner=hold]")
    expect(hold).to_have_count(0)
    with held(host.service):
        expect(hold).to_be_visible()
        expect(hold).to_contain_text("on hold")
        # Held, runs wait in the queue: each row shows its place, in the service's order.
        page.locator('[data-sync-type="customers"] [data-action=run]').click()
        expect(page.locator('tr[data-sync-type="customers"]')).to_have_attribute("data-state", "queued")
        page.locator('[data-sync-type="orders"] [data-action=run]').click()
        expect(page.locator("tr[data-state=queued]")).to_have_count(2)
        queue = [q["syncType"] for q in host.service.status_future().result(HOST_TIMEOUT)["queue"]]
        assert sorted(queue) == ["customers", "orders"]
        for place, sync_type in enumerate(queue, 1):
            badge = page.locator(f'[data-sync-type="{sync_type}"] .badge.state-queued')
            expect(badge).to_have_text(f"queued #{place}")
    expect(hold).to_have_count(0)
    # Released, both run (the host's handlers return at once): success, and back to paused.
    for sync_type in ("customers", "orders"):
        expect(page.locator(f'tr[data-sync-type="{sync_type}"]')).to_have_attribute("data-state", "paused")
        expect(page.locator(f'[data-sync-type="{sync_type}"] .outcome')).to_have_text("success")
    # Every request stayed on the host's origin, under the prefix.
    assert all(url.startswith(f"{host.base}{PREFIX}/") for url in host_pages.requests), host_pages.requests
