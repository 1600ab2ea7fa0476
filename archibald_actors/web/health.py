"""``GET /healthz``: ok, or degraded once a supervised actor failed for good or a type is stale."""

from __future__ import annotations

from aiohttp import web

from archibald_actors.service import SyncService
from archibald_actors.web.bridge import Bridge
from archibald_actors.web.error import ApiError, Handler

__all__ = ["HEALTH_TIMEOUT", "health_handler"]

#: Real seconds a health probe waits for the actors.
HEALTH_TIMEOUT = 2.0


def health_handler(service: SyncService, bridge: Bridge, timeout: float = HEALTH_TIMEOUT) -> Handler:
    """A handler answering 200 ``{"status": "ok"}`` or 503 ``{"status": "degraded", ...}``.

    A service that does not answer within ``timeout`` is degraded too, with an ``error``.
    """

    async def healthz(request: web.Request) -> web.Response:
        """Liveness of the service's actors; no credential needed."""
        try:
            health = await bridge.read("health", service.health_future, "health", timeout=timeout)
        except ApiError as exc:
            return web.json_response({"status": "degraded", "error": exc.message}, status=503)
        return web.json_response(health, status=200 if health["status"] == "ok" else 503)

    return healthz
