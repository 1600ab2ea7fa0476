"""``SyncApi``: one mounted API (its service and parts), handed to each of its requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from archibald_actors.service import SyncService
from archibald_actors.web.auth import Authenticator
from archibald_actors.web.bridge import Bridge
from archibald_actors.web.events import EventHub
from archibald_actors.web.metrics import SyncMetrics

__all__ = ["API_KEY", "SyncApi"]


@dataclass(frozen=True, eq=False)
class SyncApi:
    """What :func:`~archibald_actors.web.setup` mounted under ``prefix``.

    Attributes:
        service: the service the API fronts.
        prefix: where its routes are, e.g. ``/api/sync``.
        authenticator: who may call.
        bridge: the handlers' only path to the actors.
        hub: the event streams.
        metrics: the Prometheus metrics, in a registry of their own.
        openapi: the OpenAPI document served at ``{prefix}/openapi.json``.
    """

    service: SyncService
    prefix: str
    authenticator: Authenticator
    bridge: Bridge
    hub: EventHub
    metrics: SyncMetrics
    openapi: dict[str, Any]


#: The API a request was routed to; set before the handler runs.
API_KEY = web.RequestKey("archibald_api", SyncApi)
