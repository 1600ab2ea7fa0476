"""``SyncApi``: one mounted API (its service and parts), handed to each of its requests."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    # Left out of repr(): the document is thousands of characters long.
    openapi: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"SyncApi(prefix={self.prefix!r}, sync_types={list(self.service.sync_types)!r})"


#: The API a request was routed to; set before the handler runs.
API_KEY = web.RequestKey("archibald_api", SyncApi)
