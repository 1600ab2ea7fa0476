"""A sync handler that delegates the sync to an HTTP endpoint (``url = ...`` in the config).

The handler is a coroutine function, so it runs on the service's asyncio loop and a
timeout or a stop cancels the request in flight.
"""

from __future__ import annotations

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
        clock: the service clock (turns the slot's clock time into wall time).
        timeout_seconds: real seconds the whole request may take.

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
        timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=payload) as response,
            ):
                if 200 <= response.status < 300:
                    return
                body = (await response.content.read(_BODY_EXCERPT)).decode("utf-8", "replace").strip()
        except TimeoutError:
            raise WebhookError(f"webhook {url} did not answer within {timeout_seconds:g} s") from None
        except aiohttp.ClientError as exc:
            raise WebhookError(f"webhook {url} unreachable: {exc}") from exc
        detail = f": {body}" if body else ""
        raise WebhookError(f"webhook answered {response.status}{detail}")

    call_webhook.__name__ = call_webhook.__qualname__ = "webhook_sync"
    return call_webhook
