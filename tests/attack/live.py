"""A real standalone app on a real loopback port, served from a background thread with its own loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService
from archibald_actors.web import create_app

#: Every timer paused: nothing runs unless a request asks for it.
PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
#: Real seconds the server gets to start and to stop.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


class LiveServer:
    """``create_app(SyncService(...))`` behind an ``AppRunner``/``TCPSite`` on 127.0.0.1, port 0.

    The loop runs on a thread of its own, so blocking clients (requests, urllib) can talk to it.
    """

    def __init__(self, secret: str, *, schedule: Mapping[str, Any] | None = None) -> None:
        self.clock = ManualClock()
        self.service = SyncService({}, clock=self.clock, schedule=schedule or PAUSED)
        self._app = create_app(self.service, secret=secret)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="attack-live-server", daemon=True)
        self.port = 0
        #: Records the package logged at ERROR or above while the server ran.
        self.errors: list[logging.LogRecord] = []
        self._log_handler = _Collector(self.errors)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        """Start serving; returns once the port is bound (AssertionError past the timeout)."""
        logging.getLogger("archibald_actors").addHandler(self._log_handler)
        self._thread.start()
        assert self._ready.wait(START_TIMEOUT), "the live server did not start in time"
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._setup())
        except BaseException as exc:  # handed to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._cleanup())
        self._loop.close()

    async def _setup(self) -> None:
        self._runner = web.AppRunner(self._app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # the app's cleanup_ctx stops the service

    def stop(self) -> None:
        """Stop serving and the service; AssertionError if the thread does not end in time."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_TIMEOUT)
            assert not self._thread.is_alive(), "the live server did not stop in time"
        self.service.stop(5.0)  # no-op once the app's cleanup stopped it
        logging.getLogger("archibald_actors").removeHandler(self._log_handler)


class _Collector(logging.Handler):
    """Keeps every record at ERROR or above."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(record)
