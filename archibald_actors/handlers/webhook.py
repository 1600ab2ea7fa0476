"""A sync handler that delegates the sync to an HTTP endpoint (``url = ...`` in the config).

The handler is a coroutine function, so it runs on the service's asyncio loop and a
timeout or a stop cancels the request in flight. Its timeout is counted on the service
clock, like the type's own timeout and every other time of the service: in real seconds
on the default clock, ``speed`` times faster under ``serve --speed``.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from archibald_actors.actors.runner import SyncContext, SyncHandler
from archibald_actors.clock import Clock
from archibald_actors.domain import iso

__all__ = ["WebhookError", "webhook_handler"]

#: Characters of a failing answer's body kept in the error message.
_BODY_EXCERPT = 200


class WebhookError(RuntimeError):
    """The webhook answered with a status other than 2xx, timed out, or could not be reached."""


def webhook_handler(url: str, *, clock: Clock, timeout_seconds: float = 60.0) -> SyncHandler:
    """A coroutine handler POSTing ``{"syncType", "trigger", "scheduledAt"}`` as JSON to ``url``.

    ``scheduledAt`` is the slot's UTC wall time in ISO 8601 (null for a manual run). A 2xx
    answer is a success; anything else fails the run with the reason as its error.

    Args:
        url: an ``http://`` or ``https://`` URL.
        clock: the service clock: it turns the slot's clock time into wall time and
            counts the timeout.
        timeout_seconds: seconds on ``clock`` the whole request may take.

    Raises:
        ValueError: ``url`` is not an http(s) URL with a host, or the timeout is not positive.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an http:// or https:// URL with a host, got {url!r}")
    if not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")

    async def call_webhook(ctx: SyncContext) -> None:
        scheduled = None if ctx.scheduled_at is None else iso(clock.wall(ctx.scheduled_at))
        payload = {"syncType": ctx.sync_type, "trigger": ctx.trigger, "scheduledAt": scheduled}
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        done = expired = False

        def expire() -> None:  # on the loop; the request may have ended meanwhile
            nonlocal expired
            if not done and task is not None:
                expired = True
                task.cancel()

        def on_deadline() -> None:  # on the clock's thread
            loop.call_soon_threadsafe(expire)

        deadline = clock.call_at(clock.now() + timeout_seconds, on_deadline)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session,
                session.post(url, json=payload) as response,
            ):
                if 200 <= response.status < 300:
                    return
                body = (await response.content.read(_BODY_EXCERPT)).decode("utf-8", "replace").strip()
        except asyncio.CancelledError:
            if expired and task is not None and task.uncancel() == 0:  # our own cancel, not a stop of the run
                raise WebhookError(
                    f"webhook {url} did not answer within {timeout_seconds:g} s (service clock)"
                ) from None
            raise
        except aiohttp.ClientError as exc:
            raise WebhookError(f"webhook {url} unreachable: {exc}") from exc
        finally:
            done = True
            deadline.cancel()
        detail = f": {body}" if body else ""
        raise WebhookError(f"webhook answered {response.status}{detail}")

    call_webhook.__name__ = call_webhook.__qualname__ = "webhook_sync"
    return call_webhook
