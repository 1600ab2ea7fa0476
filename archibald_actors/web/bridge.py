"""The non-blocking bridge from aiohttp handlers to the actors.

Handlers never await a pykka future (its ``__await__`` blocks the loop) and never block on
a ``concurrent.futures.Future``: the service's ``*_future()`` methods hand back a
``concurrent.futures.Future`` that the actors complete from their threads, and the bridge
awaits it through ``asyncio.wrap_future`` with a timeout. Every failure becomes an
``ApiError``: bad input 400, an unknown agent 404, service down 503, no answer in time 504.

Identical reads that overlap share one round trip to the actors (a "single flight"):
under load a burst of ``GET /schedule`` costs the actors one message, not one per request.
A write that completes ends the sharing, so a read that starts after a write sees it.

State the actors publish (the schedule view) is read without a round trip at all:
:meth:`Bridge.snapshot` maps its errors like any call, and :meth:`Bridge.encode_once`
encodes one published value once, however many requests read it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

import pykka

from archibald_actors.errors import (
    InvalidValueError,
    ServiceStateError,
    ServiceUnavailableError,
    StoreError,
    UnknownAgentError,
    UnknownSyncTypeError,
)
from archibald_actors.web.error import ApiError

__all__ = ["DEFAULT_TIMEOUT", "Bridge"]

log = logging.getLogger("archibald_actors.web")

T = TypeVar("T")
R = TypeVar("R")
#: Real seconds a handler waits for the actors by default.
DEFAULT_TIMEOUT = 5.0


class Bridge:
    """Awaits the service's futures on the event loop, with a timeout, mapping errors to HTTP.

    Args:
        timeout: real seconds to wait for an answer before giving up with 504.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = timeout
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        self._encoded: dict[Hashable, tuple[object, bytes, float]] = {}

    def snapshot(self, read: Callable[[], T], what: str) -> T:
        """Take state the actors published (``read`` must not block), mapping errors like :meth:`call`.

        Raises:
            ApiError: 503 if the service is not running or its actors are gone.
        """
        try:
            return read()
        except ServiceStateError:
            raise ApiError(503, f"{what}: the sync service is not running") from None
        except ServiceUnavailableError as exc:
            raise ApiError(503, f"{what}: the sync service is unavailable: {exc}") from None

    def encode_once(
        self,
        key: Hashable,
        value: T,
        encode: Callable[[T], bytes],
        *,
        now: float = 0.0,
        until: Callable[[T], float] | None = None,
    ) -> bytes:
        """``encode(value)``, kept while ``value`` is the very object last seen under ``key``
        and ``now`` is before ``until(value)`` (the time, on any one scale, at which its
        encoding changes; asked only when encoding, never on a hit).

        For immutable published values: a new value under ``key`` replaces the old one.
        """
        cached = self._encoded.get(key)
        if cached is not None and cached[0] is value and now < cached[2]:
            return cached[1]
        body = encode(value)
        self._encoded[key] = (value, body, math.inf if until is None else until(value))
        return body

    async def call(self, start: Callable[[], Future[T]], what: str, *, timeout: float | None = None) -> T:
        """Send one request to the actors (``start`` returns its future) and await the answer.

        Raises:
            ApiError: 400 for invalid input, 404 for an unknown agent, 503 if the service is
                down, 504 on timeout.
        """
        limit = self.timeout if timeout is None else timeout
        try:
            future = start()
        except (InvalidValueError, UnknownSyncTypeError) as exc:
            raise ApiError(400, str(exc)) from None
        except ServiceStateError:
            raise ApiError(503, f"{what}: the sync service is not running") from None
        try:
            async with asyncio.timeout(limit):  # no extra task, unlike wait_for
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()
            raise ApiError(504, f"{what}: no answer from the actors within {limit:g} s") from None
        except (InvalidValueError, UnknownSyncTypeError) as exc:
            raise ApiError(400, str(exc)) from None
        except UnknownAgentError as exc:
            raise ApiError(404, str(exc)) from None
        except (ServiceUnavailableError, ServiceStateError, pykka.ActorDeadError) as exc:
            raise ApiError(503, f"{what}: the sync service is unavailable: {exc}") from None
        except StoreError as exc:  # the store failed or did not answer: the message says it all
            log.warning("%s failed in the actors: %s", what, exc)
            raise ApiError(503, f"{what}: the sync service could not do it: {exc}") from None
        except Exception as exc:  # the actors failed the request some other way
            log.warning("%s failed in the actors: %s", what, exc, exc_info=True)
            raise ApiError(503, f"{what}: the sync service could not do it: {exc}") from None

    async def read(
        self, key: Hashable, start: Callable[[], Future[T]], what: str, *, timeout: float | None = None
    ) -> T:
        """Like :meth:`call` for a read; overlapping reads with the same ``key`` share one answer.

        The shared value must be treated as read-only.
        """
        flight = self._flight(("value", key), lambda: self.call(start, what, timeout=timeout))
        # shield: a caller that goes away must not cancel the answer the others wait for
        return cast(T, await asyncio.shield(flight))

    async def read_encoded(
        self,
        key: Hashable,
        start: Callable[[], Future[T]],
        what: str,
        encode: Callable[[T], bytes],
        *,
        timeout: float | None = None,
    ) -> bytes:
        """Like :meth:`read`, sharing the encoded answer: overlapping reads encode it once."""

        async def fetch() -> bytes:
            return encode(await self.call(start, what, timeout=timeout))

        return cast(bytes, await asyncio.shield(self._flight(("encoded", key), fetch)))

    def _flight(self, key: Hashable, fetch: Callable[[], Coroutine[Any, Any, R]]) -> asyncio.Task[R]:
        """The round trip in flight for ``key``, or a new one."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaited is not logged as lost

    def invalidate(self) -> None:
        """Stop sharing the reads in flight: later reads ask the actors afresh (call after a write)."""
        self._inflight.clear()
