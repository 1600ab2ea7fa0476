"""``EventBus``: what happened inside the service, for SSE clients, metrics and logs.

Actors publish small JSON-ready dicts; subscribers are called on the publishing thread
and must only hand the event off (put it in a bounded queue, schedule it on a loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["RUN_END_EVENTS", "Event", "EventBus"]

log = logging.getLogger("archibald_actors.events")

Event = dict[str, Any]
#: The events a run's end is published as: success, failed or timeout, cancelled (by a
#: hold or a shutdown), skipped (it did not run: ``reason`` says why). Each carries the
#: run's history record.
RUN_END_EVENTS = ("sync.completed", "sync.failed", "sync.cancelled", "sync.skipped")
Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers; a failing subscriber never hurts the publisher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = ()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; return the function that removes it."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    def publish(self, kind: str, **data: Any) -> None:
        """Send ``{"type": kind, **data}`` to every subscriber."""
        event: Event = {"type": kind, **data}
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a subscriber's bug must not kill an actor
                log.exception("event subscriber failed on %s", kind)
