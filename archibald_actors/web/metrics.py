"""Prometheus metrics of one mounted service, in a registry of its own (never the global one).

Counters are fed from the service's ``EventBus``; prometheus-client's counters are
thread-safe, so the subscriber counts right on the publishing actor thread. The breaker
gauges are read from the service's status at each scrape (:meth:`SyncMetrics.observe_status`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from archibald_actors.domain import OUTCOMES
from archibald_actors.events import RUN_END_EVENTS, Event, EventBus
from archibald_actors.web.error import ApiError, Handler

__all__ = ["SyncMetrics", "metrics_handler"]


class SyncMetrics:
    """The service's metrics; ``registry`` is private to this instance.

    Args:
        sync_types: the service's types: their counters start at zero, so they show before
            the first run.
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
        self.duration = Histogram(
            "archibald_sync_duration_seconds",
            "Run time of finished syncs.",
            ["sync_type"],
            buckets=(0.5, 1, 5, 15, 30, 60, 90, 120, 300, 600, 900, 1800),
            registry=self.registry,
        )
        self.lateness = Histogram(
            "archibald_timer_fire_lateness_seconds",
            "Schedule seconds from a slot to its request reaching the orchestrator.",
            ["sync_type"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1, 10, 60, 600),
            registry=self.registry,
        )
        self.queue_depth = Gauge("archibald_queue_depth", "Requests waiting to run.", registry=self.registry)
        self.missed = Counter(
            "archibald_missed_slots", "Slots skipped by a catch-up.", ["sync_type"], registry=self.registry
        )
        self.coalesced = Counter(
            "archibald_coalesced_requests",
            "Requests merged into one already pending.",
            ["sync_type"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "archibald_last_success_timestamp_seconds",
            "Unix time of the last successful run.",
            ["sync_type"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "archibald_leader",
            "1 while this replica runs the syncs (leader or standalone), 0 while it follows.",
            registry=self.registry,
        )
        self.leader.set(1)
        self.abandoned_threads = Gauge(
            "archibald_sync_abandoned_threads",
            "Sync handler threads written off after a timeout or a stop that are still alive.",
            registry=self.registry,
        )
        self.breakers_open = Gauge(
            "archibald_sync_breakers_open",
            "Circuit breakers open (skipping their jobs) per sync type, one per (type, lane).",
            ["sync_type"],
            registry=self.registry,
        )
        self.erp_breaker_open = Gauge(
            "archibald_sync_erp_breaker_open",
            "1 while the ERP-wide circuit breaker holds every job, else 0.",
            registry=self.registry,
        )
        self._types = tuple(sync_types)
        for sync_type in self._types:
            self.breakers_open.labels(sync_type)
            for outcome in OUTCOMES:
                self.runs.labels(sync_type, outcome)
            self.missed.labels(sync_type)
            self.coalesced.labels(sync_type)
        self._unsubscribe: Callable[[], None] | None = None

    def observe(self, event: Event) -> None:
        """Count one service event (called on actor threads)."""
        kind = event.get("type")
        sync_type = str(event.get("syncType"))
        if kind in RUN_END_EVENTS:
            self.runs.labels(sync_type, str(event.get("outcome"))).inc()
            self.duration.labels(sync_type).observe(float(event.get("durationMs") or 0) / 1000)
            if event.get("outcome") == "success" and event.get("finishedAt"):
                finished = datetime.fromisoformat(str(event["finishedAt"]).replace("Z", "+00:00"))
                self.last_success.labels(sync_type).set(finished.timestamp())
        elif kind == "queue.changed":
            self.queue_depth.set(len(event.get("queue") or ()))
            if event.get("coalesced"):
                self.coalesced.labels(sync_type).inc()
            if event.get("missed"):
                self.missed.labels(sync_type).inc(int(event["missed"]))
            if event.get("fireLatenessSeconds") is not None:
                self.lateness.labels(sync_type).observe(float(event["fireLatenessSeconds"]))
        elif kind == "sync.started":
            self.queue_depth.set(len(event.get("queue") or ()))
        elif kind == "child.restarted":
            self.restarts.labels(str(event.get("name"))).inc()
        elif kind == "leadership.changed":
            self.leader.set(1 if event.get("role") == "leader" else 0)

    def observe_status(self, status: Mapping[str, Any]) -> None:
        """Set the breaker gauges from a status's ``breakers`` (left as they are without one)."""
        breakers = status.get("breakers")
        if not isinstance(breakers, Mapping):
            return
        open_pairs = dict.fromkeys(self._types, 0)
        for pair in breakers.get("pairs", ()):
            if pair.get("state") == "open":
                sync_type = str(pair["syncType"])
                open_pairs[sync_type] = open_pairs.get(sync_type, 0) + 1
        for sync_type, count in open_pairs.items():
            self.breakers_open.labels(sync_type).set(count)
        self.erp_breaker_open.set(1 if (breakers.get("erp") or {}).get("state") == "open" else 0)

    def count_abandoned_threads(self, count: Callable[[], int]) -> None:
        """Read the abandoned-threads gauge from ``count`` at every scrape."""
        self.abandoned_threads.set_function(count)

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


def metrics_handler(
    metrics: SyncMetrics, read_status: Callable[[], Awaitable[Mapping[str, Any]]] | None = None
) -> Handler:
    """A handler serving ``metrics`` in the Prometheus text format.

    ``read_status`` (the service's status, through the bridge) refreshes the gauges read
    from the status at each scrape; a service that does not answer leaves them as they were
    (the scrape still answers: /healthz is where an outage shows).
    """

    async def serve_metrics(request: web.Request) -> web.Response:
        """Prometheus text format of this service's metrics."""
        if read_status is not None:
            with contextlib.suppress(ApiError):
                metrics.observe_status(await read_status())
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve_metrics
