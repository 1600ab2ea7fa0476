"""``StateLoader``: reads the store's state when the service starts and when it wins an election.

The read runs on the store worker; its result comes back to the supervisor as
``StateLoaded``. A store that fails is read again after a backoff on the service clock
(1 s doubling to 30 s), for as long as it takes: meanwhile the status says the store is
unavailable and health is degraded, and no timer fires. Each attempt has a number, so
the answer to an attempt given up (the replica was deposed meanwhile) is ignored.
"""

from __future__ import annotations

import logging
from datetime import datetime

from archibald_actors.actors.base import Address
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.clock import Clock, Wakeup
from archibald_actors.domain import RunRecord
from archibald_actors.ledger import HISTORY_PER_TYPE
from archibald_actors.messages import LoadState, StateLoaded
from archibald_actors.store.base import Store, StoredState

__all__ = ["Loaded", "StateLoader"]

log = logging.getLogger("archibald_actors.supervisor")

RETRY_FIRST = 1.0
RETRY_MAX = 30.0

#: What a load reads: the stored state, the epoch (first writer wins) and the last runs.
Loaded = tuple[StoredState, datetime, list[RunRecord]]


class StateLoader:
    """Loads the stored state with retries; used on the supervisor's thread only.

    Args:
        store: the store worker.
        clock: the service clock (the backoff runs on it).
        address: the supervisor's address.
        types: how many types there are (the history read is 100 runs per type).
    """

    def __init__(self, store: StoreWorker, clock: Clock, address: Address, types: int) -> None:
        self._store = store
        self._clock = clock
        self._address = address
        self._limit = HISTORY_PER_TYPE * types
        self._attempt = 0
        self._failures = 0
        self._retry: Wakeup | None = None
        self.wanted = False
        self.failing = False

    def load(self) -> None:
        """Start a fresh read (replacing any read or retry in progress)."""
        self.cancel()
        self.wanted = True
        self._failures = 0
        self._submit()

    def cancel(self) -> None:
        """Give up the read in progress: its answer, when it comes, is ignored."""
        self._attempt += 1
        self.wanted = False
        self.failing = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def retry(self, message: LoadState) -> None:
        """The backoff of ``message.attempt`` has passed: read again, unless given up."""
        if message.attempt == self._attempt and self.wanted:
            self._retry = None
            self._submit()

    def loaded(self, message: StateLoaded) -> Loaded | None:
        """The state read, if ``message`` answers the current attempt and the store answered.

        A failed read is retried after the backoff; None is returned then.
        """
        if message.attempt != self._attempt or not self.wanted:
            return None
        if message.result.error is None:
            self.wanted = self.failing = False
            return message.result.unwrap()
        delay = min(RETRY_FIRST * 2**self._failures, RETRY_MAX)
        self._failures += 1
        self.failing = True
        log.error("cannot read the store, trying again in %g s: %s", delay, message.result.error)
        address, attempt = self._address, self._attempt
        self._retry = self._clock.call_at(self._clock.now() + delay, lambda: address.tell(LoadState(attempt)))
        return None

    def _submit(self) -> None:
        self._attempt += 1
        attempt, address, limit, wall = self._attempt, self._address, self._limit, self._clock.real_wall()

        def read(store: Store) -> Loaded:
            stored = store.load()
            # First writer wins: every replica of a cluster counts slots from one epoch.
            epoch = store.ensure_epoch(wall)
            return stored, epoch, store.runs(None, limit)

        self._store.submit(read, lambda result: address.tell(StateLoaded(attempt, result)))
