"""The supervisor's leadership glue: this replica's ``Role``, and the ``StateLoader`` it needs.

A service reads the store when it starts (the epoch, the retuned entries, the slots
served, the last runs, the agents) and, in a cluster, again when it wins an election (what the last
leader changed). Only then do its timers fire: alone at once, in a cluster once elected.
Losing an election stops the timers at once.

The read runs on the store worker; its result comes back to the supervisor as
``StateLoaded``. A store that fails is read again after a backoff on the service clock
(1 s doubling to 30 s), for as long as it takes: meanwhile the status says the store is
unavailable and health is degraded, and no timer fires. Each attempt has a number, so
the answer to an attempt given up (the replica was deposed meanwhile) is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from archibald_actors.actors.base import Address
from archibald_actors.actors.schedule_owner import ScheduleOwner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.agent import Agent
from archibald_actors.clock import Clock, Wakeup
from archibald_actors.domain import RunRecord
from archibald_actors.events import EventBus
from archibald_actors.ledger import HISTORY_PER_TYPE
from archibald_actors.messages import (
    LoadState,
    SetLeading,
)
from archibald_actors.store.base import Store, StoredState
from archibald_actors.store_messages import (
    Booted,
    StateLoaded,
)

__all__ = ["Loaded", "Role", "StateLoader"]

log = logging.getLogger("archibald_actors.supervisor")

RETRY_FIRST = 1.0
RETRY_MAX = 30.0

#: What a load reads: the stored state, the epoch (first writer wins), the last runs and the agents.
Loaded = tuple[StoredState, datetime, list[RunRecord], list[Agent]]


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
            return stored, epoch, store.runs(None, limit), store.agents()

        self._store.submit(read, lambda result: address.tell(StateLoaded(attempt, result)))


class Role:
    """This replica's part: "standalone", "leader" or "follower"; used on the supervisor's thread.

    Args:
        shared: the store is a cluster's (start as a follower and wait for an election).
        loader: reads the store.
        schedule: the supervisor's schedule (takes the stored entries and epoch).
        orchestrator: the orchestrator's address (told the epoch, and when to lead).
        clock: the service clock (anchored at the stored epoch).
        events: the service's event bus.
        timers: starts (True) or stops (False) every timer.
        booted: told the epoch once the store was first read.
        agents: takes the agents read (before anything may run: jobs fan out to them).
    """

    def __init__(
        self,
        *,
        shared: bool,
        loader: StateLoader,
        schedule: ScheduleOwner,
        orchestrator: Address,
        clock: Clock,
        events: EventBus,
        timers: Callable[[bool], None],
        booted: Callable[[float], None],
        agents: Callable[[list[Agent]], None],
    ) -> None:
        self.name = "follower" if shared else "standalone"
        self._elected = False
        self._loader = loader
        self._schedule = schedule
        self._orchestrator = orchestrator
        self._clock = clock
        self._events = events
        self._timers = timers
        self._booted = booted
        self._agents = agents

    def loaded(self, message: StateLoaded) -> Loaded | None:
        """The store was read (at start, or after winning an election): lead if we should."""
        loaded = self._loader.loaded(message)
        if loaded is None:
            return None
        self._agents(loaded[3])  # the orchestrator knows them before the first slot reaches it
        epoch = self._schedule.epoch
        if epoch is None:
            self._boot(loaded)
        else:
            stored = loaded[0]
            self._schedule.adopt_stored(stored.entries, {t: epoch + s for t, s in stored.served.items()})
        if self.name == "standalone" or self._elected:
            self._lead()
        return loaded

    def _boot(self, loaded: Loaded) -> None:
        stored, stored_epoch, runs, _ = loaded
        clock = self._clock
        clock.anchor(stored_epoch)
        now = clock.now()  # one reading: every replica then places the grid alike
        epoch = now - (clock.wall(now) - stored_epoch).total_seconds()
        served = {t: epoch + offset for t, offset in stored.served.items() if t in self._schedule.entries}
        self._schedule.epoch = epoch
        self._schedule.adopt_stored(stored.entries, served)
        self._orchestrator.tell(Booted(epoch, served, tuple(runs)))
        self._booted(epoch)

    def _lead(self) -> None:
        if self.name == "follower":
            self._change("leader")
        # The orchestrator must lead before the timers' first catch-up reaches it.
        self._orchestrator.tell(SetLeading(True))
        self._timers(True)

    def elected(self, leading: bool) -> None:
        """Won: read what other leaders changed, then lead. Lost: stop firing at once."""
        if leading == self._elected:
            return
        self._elected = leading
        booted = self._schedule.epoch is not None
        if leading:
            if booted:
                self._loader.load()  # else the first read is still under way: it leads when done
            return
        if booted:
            self._loader.cancel()
        if self.name == "leader":
            self._change("follower")
            self._timers(False)
            self._orchestrator.tell(SetLeading(False))

    def _change(self, name: str) -> None:
        self.name = name
        log.warning("this replica is now the %s", name)
        self._events.publish("leadership.changed", role=name)
