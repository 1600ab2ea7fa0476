"""Prometheus metrics of one mounted service, in a registry of its own (never the global one).

Counters are fed from the service's ``EventBus``; prometheus-client's counters are
thread-safe, so the subscriber counts right on the publishing actor thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from archibald_actors.events import Event, EventBus
from archibald_actors.web.error import Handler

__all__ = ["OUTCOMES", "SyncMetrics", "metrics_handler"]

#: Outcomes of a run (DESIGN section 6).
OUTCOMES = ("success", "failed", "timeout", "cancelled")


class SyncMetrics:
    """The service's metrics; ``registry`` is private to this instance.

    Args:
        sync_types: types whose counters start at zero, so they show before the first run.
    """

    def __init__(self, sync_types: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "archibald_sync_runs",
            "Finished sync runs by type and outcome.",
            ["sync_type", "outcome"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "archibald_child_restarts",
            "Restarts of supervised actors (timers and the orchestrator).",
            ["child"],
            registry=self.registry,
        )
        for sync_type in sync_types:
            for outcome in OUTCOMES:
                self.runs.labels(sync_type, outcome)
        self._unsubscribe: Callable[[], None] | None = None

    def observe(self, event: Event) -> None:
        """Count one service event (called on actor threads)."""
        kind = event.get("type")
        if kind in ("sync.completed", "sync.failed"):
            self.runs.labels(str(event.get("syncType")), str(event.get("outcome"))).inc()
        elif kind == "child.restarted":
            self.restarts.labels(str(event.get("name"))).inc()

    def attach(self, bus: EventBus) -> None:
        """Start counting the events of ``bus``."""
        self.detach()
        self._unsubscribe = bus.subscribe(self.observe)

    def detach(self) -> None:
        """Stop counting."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def render(self) -> bytes:
        """The Prometheus text exposition of the registry."""
        return generate_latest(self.registry)


def metrics_handler(metrics: SyncMetrics) -> Handler:
    """A handler serving ``metrics`` in the Prometheus text format."""

    async def serve_metrics(request: web.Request) -> web.Response:
        """Prometheus text format of this service's metrics."""
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve_metrics
