"""Server-Sent Events: the service's events streamed to browsers.

The ``EventBus`` calls subscribers on actor threads. The hub's subscriber only hands each
event to the loop (``call_soon_threadsafe``); on the loop it goes into a bounded queue per
client. A client whose queue is full is dropped, so a slow client never slows the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable

from aiohttp import web

from archibald_actors.events import Event, EventBus
from archibald_actors.web.auth import PRINCIPAL_KEY

__all__ = ["EventHub"]

log = logging.getLogger("archibald_actors.web")


#: Events a client may fall behind by before it is dropped.
QUEUE_SIZE = 256
#: Real seconds between heartbeat comments on an idle stream.
HEARTBEAT = 15.0
#: Milliseconds a browser waits before reconnecting.
RETRY_MS = 3000


class _Client:
    """One connected stream."""

    __slots__ = ("closing", "overflowed", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.overflowed = False
        self.closing = False

    def put(self, item: bytes | None) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True


class EventHub:
    """Fans the service's events out to the connected SSE clients of one event loop.

    Args:
        queue_size: events a client may fall behind by before it is dropped.
        heartbeat: real seconds between ``: ping`` comments on an idle stream.
    """

    def __init__(self, *, queue_size: int = QUEUE_SIZE, heartbeat: float = HEARTBEAT) -> None:
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self._clients: set[_Client] = set()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False
        self._changed = asyncio.Event()

    @property
    def clients(self) -> int:
        """Streams connected now."""
        return len(self._clients)

    async def wait_clients(self, count: int, timeout: float) -> None:
        """Wait until exactly ``count`` streams are connected.

        Raises:
            TimeoutError: that did not happen within ``timeout`` real seconds.
        """
        async with asyncio.timeout(timeout):
            while len(self._clients) != count:
                self._changed.clear()
                await self._changed.wait()

    def attach(self, bus: EventBus) -> None:
        """Subscribe to ``bus``; call on the loop the clients are served on."""
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._unsubscribe = bus.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        """On an actor thread: hand the event to the loop, nothing more."""
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody to tell
            loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: Event) -> None:
        item = _frame(next(self._ids), event)  # encoded once, whatever the number of clients
        for client in list(self._clients):
            if not client.put(item):
                client.overflowed = True
                self._clients.discard(client)
                self._changed.set()
                log.warning("dropping an event-stream client that fell %d events behind", self.queue_size)

    def close(self) -> None:
        """Unsubscribe and end every stream (on app shutdown, so handlers return promptly)."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for client in self._clients:
            client.closing = True
            client.put(None)  # wakes a waiting handler; a full queue is drained and then ends
        self._clients.clear()
        self._changed.set()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Serve one client until it leaves, falls behind, or the app shuts down."""
        if self._closed:
            raise web.HTTPServiceUnavailable(reason="shutting down")
        client = _Client(self.queue_size)
        self._clients.add(client)
        self._changed.set()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache, no-transform",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
            principal = request.get(PRINCIPAL_KEY)
            expires_at = principal.expires_at if principal is not None else None
            while (frame := await self._next_frame(client, expires_at)) is not None:
                await response.write(frame)
            return response
        except ConnectionError:
            return response  # the client went away; nothing left to send
        finally:
            self._clients.discard(client)
            self._changed.set()

    async def _next_frame(self, client: _Client, expires_at: float | None) -> bytes | None:
        """What to send next: an event, a heartbeat, a last word; None once the stream ends."""
        if client.closing:
            return None
        if client.overflowed and client.queue.empty():
            client.closing = True
            return b"event: overflow\ndata: {}\n\n"
        wait = self.heartbeat
        if expires_at is not None:  # the stream must not outlive its credential
            wait = min(wait, expires_at - time.time())  # tokens expire on the wall clock
            if wait <= 0:
                client.closing = True
                return b"event: expired\ndata: {}\n\n"
        try:
            item = await asyncio.wait_for(client.queue.get(), wait)
        except TimeoutError:
            return b": ping\n\n"
        if item is None or client.closing:
            return None
        return item


def _frame(event_id: int, event: Event) -> bytes:
    """One SSE message: ``id``, ``event`` (the event's type) and the JSON as ``data``."""
    data = json.dumps(event, separators=(",", ":"), default=str)
    return f"id: {event_id}\nevent: {event.get('type', 'message')}\ndata: {data}\n\n".encode()
