"""``stop(timeout)`` is bounded however many handler threads are stuck; abandoned ones are counted.

A stuck handler here is a plain function that ignores ``ctx`` and blocks on an event only
the test's teardown sets: it outlives its timeout and the grace period after it, so the
orchestrator writes its run off and its thread is abandoned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ScaledClock, SyncService
from archibald_actors.status import ABANDONED_THREADS_CAP, health_from_status
from archibald_actors.web import SyncMetrics

#: Types whose runs time out after a minute (0.1 real seconds at SPEED), then are abandoned.
STUCK = ("orders", "customers", "prices", "invoices", "ddt")
#: The type left running (stuck too, with a day's timeout) when the service is stopped.
LAST = "products"
SPEED = 600.0


class Abandoned:
    """Counts the runs the orchestrator wrote off, from the service's events."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0
        self.started: set[str] = set()

    def observe(self, event: dict[str, Any]) -> None:
        with self._cond:
            if event["type"] == "sync.failed" and "abandoned" in (event.get("error") or ""):
                self.count += 1
            elif event["type"] == "sync.started":
                self.started.add(event["syncType"])
            self._cond.notify_all()

    def wait_count(self, n: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.count >= n, 10.0), f"{self.count} of {n} abandoned"

    def wait_started(self, sync_type: str) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: sync_type in self.started, 10.0), f"{sync_type} never started"


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """What the stuck handlers wait for; set in teardown, then their threads are joined."""
    event = threading.Event()
    yield event
    event.set()
    for thread in threading.enumerate():
        if thread.name.startswith("archibald-sync-"):
            thread.join(5.0)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("archibald-")]


def gauge(metrics: SyncMetrics, name: str) -> float:
    text = metrics.render().decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_stop_returns_within_its_timeout_with_nine_abandoned_and_one_stuck_thread(
    release: threading.Event,
) -> None:
    def stuck(ctx: Any) -> None:
        release.wait()  # ignores ctx.stop_requested: only the teardown ends it

    schedule = {
        # No retries: each timed-out run must leave exactly one thread behind.
        t: replace(e, enabled=False, retries=0, timeout_seconds=60.0 if t in STUCK else 86400.0)
        for t, e in DEFAULT_SCHEDULE.items()
    }
    service = SyncService(dict.fromkeys(SYNC_TYPES, stuck), clock=ScaledClock(SPEED), schedule=schedule)
    abandoned = Abandoned()
    service.events.subscribe(abandoned.observe)
    metrics = SyncMetrics(SYNC_TYPES)
    metrics.count_abandoned_threads(lambda: service.abandoned_threads)  # as the web app wires it
    service.start()
    try:
        for sync_type in STUCK:
            service.request_sync(sync_type)
        abandoned.wait_count(5)
        for sync_type in STUCK[:4]:
            service.request_sync(sync_type)
        abandoned.wait_count(9)

        status = service.status()
        assert status["abandonedThreads"] == 9
        assert status["running"] is None and status["queue"] == []
        health = service.health()
        assert health["status"] == "degraded"
        assert health["abandonedThreads"] == 9
        assert gauge(metrics, "archibald_sync_abandoned_threads") == 9

        service.request_sync(LAST)
        abandoned.wait_started(LAST)
        started = time.monotonic()
        service.stop(timeout=2.0)
        elapsed = time.monotonic() - started
        print(f"stop(timeout=2) took {elapsed:.2f} s")
        assert elapsed < 4.0, f"stop(timeout=2) took {elapsed:.1f} s"
    finally:
        service.stop(timeout=2.0)  # a no-op once stopped

    assert service.abandoned_threads == 10  # the nine, and the one stop() gave up on
    left = [t for t in threading.enumerate() if t.name.startswith("archibald-")]
    assert {t.name for t in left} == {f"archibald-sync-{t}" for t in SYNC_TYPES}
    assert len(left) == 10
    assert all(t.daemon for t in left)


def test_health_stays_ok_up_to_the_cap_of_abandoned_threads() -> None:
    types = {t: {"timer": "running", "fresh": True, "consecutiveFailures": 0} for t in SYNC_TYPES}
    status = {"orchestrator": "running", "types": types, "abandonedThreads": ABANDONED_THREADS_CAP}
    assert health_from_status(status) == {"status": "ok"}
    status["abandonedThreads"] = ABANDONED_THREADS_CAP + 1
    assert health_from_status(status) == {
        "status": "degraded",
        "failed": [],
        "stale": [],
        "failing": [],
        "abandonedThreads": ABANDONED_THREADS_CAP + 1,
    }
