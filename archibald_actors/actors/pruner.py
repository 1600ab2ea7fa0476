"""``Pruner``: drops ledger rows and slot claims past the retention, every six hours.

The delete may take a while on a big ledger, so it runs on a thread of its own and
nothing waits for it; a failure is logged and tried again next time.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from archibald_actors.actors.base import Address
from archibald_actors.clock import Activity, Clock, Wakeup
from archibald_actors.messages import PruneLedger
from archibald_actors.store.base import Store

__all__ = ["PRUNE_EVERY", "Pruner"]

log = logging.getLogger("archibald_actors.supervisor")

#: Clock seconds between two prunes of the ledger.
PRUNE_EVERY = 6 * 3600.0


class Pruner:
    """Prunes now and arms the next prune (a ``PruneLedger`` to ``address``)."""

    def __init__(self, store: Store, clock: Clock, address: Address, retention_days: float) -> None:
        self._store = store
        self._clock = clock
        self._address = address
        self._retention = retention_days * 86400.0
        self._thread: threading.Thread | None = None
        self._wakeup: Wakeup | None = None

    def prune(self) -> None:
        """Start a prune unless one still runs; arm the next."""
        clock = self._clock
        cutoff = clock.wall() - timedelta(seconds=self._retention)
        if self._thread is None or not self._thread.is_alive():
            clock.activity.begin()
            args = (self._store, cutoff, clock.activity)
            self._thread = threading.Thread(target=_prune, args=args, name="archibald-prune", daemon=True)
            self._thread.start()
        address = self._address
        self._wakeup = clock.call_at(clock.now() + PRUNE_EVERY, lambda: address.tell(PruneLedger()))

    def stop(self, timeout: float) -> None:
        """Disarm the next prune and wait up to ``timeout`` real seconds for one running."""
        if self._wakeup is not None:
            self._wakeup.cancel()
        if self._thread is not None:
            self._thread.join(timeout)


def _prune(store: Store, cutoff: datetime, activity: Activity) -> None:
    try:
        runs, claims = store.prune(cutoff), store.prune_claims(cutoff)
        if runs or claims:
            log.info("pruned %d runs and %d slot claims older than %s", runs, claims, cutoff)
    except Exception:  # pruning is housekeeping: log, try again next time
        log.exception("pruning the ledger failed")
    finally:
        activity.end()
