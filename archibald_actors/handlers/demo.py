"""Demo sync handlers that take as long as the real ERP syncs do in production, on the service clock.

Every wait goes through ``ctx.sleep``, so ``--speed`` scales them, a ``ManualClock`` makes
them a deterministic simulation, and a stop request ends them at once. They are coroutine
handlers: they only wait, so they run on the service's loop rather than a thread each. Durations are
drawn from a seeded generator: runs on a ``ManualClock`` repeat exactly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from archibald_actors.actors.runner import SyncContext, SyncHandler
from archibald_actors.clock import Clock
from archibald_actors.schedule import SYNC_TYPES

__all__ = [
    "DEFAULT_DEMO_DURATION",
    "DEMO_DURATIONS",
    "LOGIN_SECONDS",
    "SESSION_IDLE_SECONDS",
    "SESSION_REUSE_SECONDS",
    "DemoErp",
    "demo_handlers",
]

#: Seconds an export-parse-upsert takes per type, as (shortest, longest), as measured in
#: production where measured; invoices and DDT are report exports of similar size to orders.
DEMO_DURATIONS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "orders": (30.0, 60.0),
        "customers": (15.0, 20.0),
        "prices": (60.0, 90.0),
        "invoices": (25.0, 45.0),
        "ddt": (20.0, 35.0),
        "products": (40.0, 60.0),
    }
)
#: Seconds of a type the table above does not list (one a schedule or config adds).
DEFAULT_DEMO_DURATION = (20.0, 40.0)
#: A full login through the headless browser.
LOGIN_SECONDS = 8.0
#: Reusing a session that is still open.
SESSION_REUSE_SECONDS = 0.5
#: A session unused for this long (clock seconds) has expired and needs a full login.
SESSION_IDLE_SECONDS = 30 * 60.0
#: Share of a sync spent waiting for the report export; the rest is parsing and upserting.
_EXPORT_SHARE = 0.6


class DemoErp:
    """A stand-in for the ERP and its one shared browser session.

    Args:
        seed: seed of the duration generator (same seed, same durations in the same order).
        clock: the service clock, to expire an idle session; without it a session never expires.
        durations: per type (shortest, longest) seconds; ``DEMO_DURATIONS`` by default.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        durations: Mapping[str, tuple[float, float]] = DEMO_DURATIONS,
    ) -> None:
        self._random = random.Random(seed)
        self._clock = clock
        self._durations = dict(durations)
        self._lock = threading.Lock()
        self._session_used_at: float | None = None
        self.logins = 0

    def login_seconds(self) -> float:
        """What opening the session costs now: a full login, or reusing a live session."""
        with self._lock:
            used = self._session_used_at
            if used is None:
                return LOGIN_SECONDS
            if self._clock is not None and self._clock.now() - used > SESSION_IDLE_SECONDS:
                return LOGIN_SECONDS
            return SESSION_REUSE_SECONDS

    def sync_seconds(self, sync_type: str) -> float:
        """A draw of how long exporting and importing ``sync_type`` takes (0.1 s resolution)."""
        low, high = self._durations.get(sync_type, DEFAULT_DEMO_DURATION)
        with self._lock:
            return round(self._random.uniform(low, high), 1)

    def _touch_session(self, full_login: bool) -> None:
        with self._lock:
            if full_login:
                self.logins += 1
            self._session_used_at = self._clock.now() if self._clock is not None else 0.0

    def handler(self, sync_type: str) -> SyncHandler:
        """The demo handler of ``sync_type``: log in (or reuse), export, then parse and upsert."""
        duration = self.sync_seconds  # bound here so the closure stays small

        async def sync(ctx: SyncContext) -> None:
            login = self.login_seconds()
            await ctx.sleep(login)
            self._touch_session(full_login=login == LOGIN_SECONDS)
            total = duration(sync_type)
            await ctx.sleep(total * _EXPORT_SHARE)  # the ERP builds the report
            # A stop requested meanwhile makes the next sleep raise SyncCancelledError:
            # the run ends before writing anything, at its safe point.
            await ctx.sleep(total * (1 - _EXPORT_SHARE))  # parse and upsert the rows
            self._touch_session(full_login=False)

        sync.__name__ = sync.__qualname__ = f"demo_{sync_type}_sync"
        return sync

    def handlers(self, sync_types: Iterable[str] | None = None) -> dict[str, SyncHandler]:
        """A handler for each of ``sync_types`` (default: those with known durations), one session."""
        types = [t for t in SYNC_TYPES if t in self._durations] if sync_types is None else list(sync_types)
        return {t: self.handler(t) for t in types}


def demo_handlers(
    *, seed: int = 0, clock: Clock | None = None, sync_types: Iterable[str] | None = None
) -> dict[str, SyncHandler]:
    """Demo handlers for ``sync_types`` (the seed's six by default) sharing one ``DemoErp`` session."""
    return DemoErp(seed=seed, clock=clock).handlers(sync_types)
