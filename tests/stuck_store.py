"""Waiting, bounded, for a service to count its hung store as stuck."""

from __future__ import annotations

import threading
import time

from archibald_actors import SyncService
from archibald_actors.actors.store_worker import STUCK_AFTER


def until_stuck(service: SyncService) -> None:
    """Return once the service counts its store as stuck (a call unanswered for ``STUCK_AFTER``)."""
    deadline = time.monotonic() + 5 * STUCK_AFTER
    while service.status()["store"] != "unavailable":
        assert time.monotonic() < deadline, "the hung store never counted as stuck"
        threading.Event().wait(0.02)
