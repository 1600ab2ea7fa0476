"""``ScheduleOwner``: the supervisor's schedule: entries, retunes and the published view.

A retune is stored before it is applied and answered: the new entry goes to the store
worker, and the timer re-arms once the write's result comes back as a message. Retunes
of one type are chained: a second one, computed on top of the first still being
stored, is not stored if the first was not (it would store half of the first).
Used on the supervisor's thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archibald_actors.actors.base import Address
from archibald_actors.actors.store_worker import Chain, StoreNotAnsweringError, StoreWorker, announce
from archibald_actors.clock import Clock
from archibald_actors.errors import InvalidValueError
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    Rearm,
    Reply,
    Retune,
    TimerArmed,
    answer,
    fail,
)
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.store.base import ClusterStore, Store
from archibald_actors.store_messages import (
    EntriesRead,
    EntryStored,
    StoreResult,
)

__all__ = ["ScheduleOwner", "TimerView"]

log = logging.getLogger("archibald_actors.supervisor")


@dataclass
class TimerView:
    """A timer's last report."""

    served: float | None = None
    next_slot: float | None = None
    missed: int = 0


class ScheduleOwner:
    """Entries, the timers' reports and the retunes in flight; publishes the schedule view.

    Args:
        entries: the table to start from.
        clock: the service clock.
        address: the supervisor's address (store results come back to it).
        timers: the address of each type's timer.
        timer_state: the supervisor's state of a type's timer ("running", "standby", ...).
        store: the store worker.
        cluster: the store shared with other replicas, if any (retunes are announced).
        events: the service's event bus.
        publish_view: receives every view, before anyone is answered with it.
    """

    def __init__(
        self,
        *,
        entries: Mapping[str, ScheduleEntry],
        clock: Clock,
        address: Address,
        timers: Mapping[str, Address],
        timer_state: Callable[[str], str],
        store: StoreWorker,
        cluster: ClusterStore | None,
        events: EventBus,
        publish_view: Callable[[ScheduleView], None],
    ) -> None:
        self.entries = dict(entries)
        self.epoch: float | None = None  # until the store was read
        self.views = {t: TimerView() for t in entries}
        self.retune_seq = dict.fromkeys(entries, 0)
        self._clock = clock
        self._address = address
        self._timers = timers
        self._timer_state = timer_state
        self._store = store
        self._cluster = cluster
        self._events = events
        self._publish_view = publish_view
        self._replies: dict[str, list[tuple[int, Reply]]] = {t: [] for t in entries}
        self._storing: dict[str, list[tuple[Retune, ScheduleEntry]]] = {t: [] for t in entries}
        self._chains = {t: Chain() for t in entries}
        # Nothing is known to run yet; the owner publishes its first view once it is started.
        self.view = ScheduleView(dict(self.entries), dict.fromkeys(self.entries), frozenset(), 0.0)

    def adopt_stored(self, stored: Mapping[str, ScheduleEntry], served: Mapping[str, float]) -> None:
        """Take the stored timing of each type and its latest served slot (clock times)."""
        for sync_type, entry in self.entries.items():
            self.entries[sync_type] = entry.with_timing_of(stored.get(sync_type))
            if sync_type in served:
                self.views[sync_type].served = served[sync_type]

    # --- retunes ------------------------------------------------------------------

    def retune(self, message: Retune) -> None:
        """Store the retuned entry; it is applied when the store's answer comes back."""
        sync_type = message.sync_type
        storing = self._storing[sync_type]
        base = storing[-1][1] if storing else self.entries[sync_type]
        try:
            entry = base.retuned(
                interval_minutes=message.interval_minutes,
                start_delay_minutes=message.start_delay_minutes,
                enabled=message.enabled,
            )
        except InvalidValueError as exc:
            fail(message.reply, exc)
            return
        if not storing:
            self._chains[sync_type] = Chain()  # nothing in flight: earlier failures are behind us
        storing.append((message, entry))
        cluster, address = self._cluster, self._address

        def write(store: Store) -> None:
            store.save_entry(entry)
            announce(cluster, "retune", {"syncType": sync_type})

        self._store.submit(
            write,
            lambda result: address.tell(EntryStored(message, entry, result)),
            for_caller=True,
            chain=self._chains[sync_type],
        )

    def stored(self, message: EntryStored) -> None:
        """The write of a retune ended: apply it, or tell the caller why it was not."""
        storing = self._storing[message.retune.sync_type]
        if storing and storing[0][0] is message.retune:
            storing.pop(0)
        if message.result.error is not None:
            sync_type, error = message.retune.sync_type, message.result.error
            # The caller is told either way; a store that is only slow is no error of ours.
            level = logging.WARNING if isinstance(error, StoreNotAnsweringError) else logging.ERROR
            log.log(level, "retune of %s not applied, the store failed: %s", sync_type, error)
            fail(message.retune.reply, message.result.error)
            return
        self.apply(message.entry, message.retune.reply)

    def read_stored(self) -> None:
        """Another replica retuned: read the stored entries (they come back as ``EntriesRead``)."""
        address = self._address
        self._store.submit(
            lambda store: store.load().entries, lambda result: address.tell(EntriesRead(result))
        )

    def adopt_read(self, result: StoreResult[dict[str, ScheduleEntry]]) -> None:
        """Apply the stored entries that differ from ours."""
        if result.error is not None:  # the listener announces a resync once it can
            log.error("cannot reload the schedule: %s", result.error)
            return
        stored = result.unwrap()
        for sync_type, entry in self.entries.items():
            new_entry = entry.with_timing_of(stored.get(sync_type))
            if new_entry != entry:
                self.apply(new_entry, reply=None)

    def apply(self, new_entry: ScheduleEntry, reply: Reply | None) -> None:
        """Adopt a stored entry; answer ``reply`` once the timer re-armed (or at once if none runs)."""
        sync_type = new_entry.sync_type
        self.entries[sync_type] = new_entry
        self._events.publish("schedule.changed", syncType=sync_type, **new_entry.to_json())
        if self._timer_state(sync_type) in ("failed", "standby"):
            answer(reply, self.rows())
            return
        self.retune_seq[sync_type] += 1
        seq = self.retune_seq[sync_type]
        if reply is not None:
            self._replies[sync_type].append((seq, reply))
        self._timers[sync_type].tell(Rearm(new_entry, seq))

    def timer_armed(self, report: TimerArmed) -> None:
        """A timer's report: keep its view; answer the retunes it has applied."""
        view = self.views[report.sync_type]
        view.served = report.served
        view.next_slot = report.next_slot
        view.missed += report.missed
        pending = self._replies[report.sync_type]
        done = [reply for seq, reply in pending if seq <= report.retune_seq]
        if done:
            pending[:] = [(seq, reply) for seq, reply in pending if seq > report.retune_seq]
            schedule = self.rows()
            for reply in done:
                answer(reply, schedule)

    def timer_gone(self, sync_type: str) -> None:
        """The type's timer stopped for good or stands by: no next slot; answer its retunes."""
        view = self.views[sync_type]
        view.next_slot = None
        self.timer_armed(TimerArmed(sync_type, view.served, None, 0, self.retune_seq[sync_type]))

    # --- views --------------------------------------------------------------------

    def refresh(self) -> ScheduleView:
        """Build the schedule view from the current state and publish it."""
        next_slots: dict[str, float | None] = {}
        from_grid = set()
        for sync_type, entry in self.entries.items():
            state = self._timer_state(sync_type)
            slot = self.views[sync_type].next_slot
            if not entry.enabled or state == "failed" or self.epoch is None:
                slot = None  # paused, failed for good, or the store not read yet: no next run known
            elif slot is None or state == "standby":
                from_grid.add(sync_type)  # no timer here (a follower): the grid says when
            next_slots[sync_type] = slot
        epoch = 0.0 if self.epoch is None else self.epoch
        self.view = ScheduleView(dict(self.entries), next_slots, frozenset(from_grid), epoch)
        self._publish_view(self.view)
        return self.view

    def rows(self) -> dict[str, dict[str, Any]]:
        """The schedule as it stands now, published before any caller is answered with it."""
        return self.refresh().rows(self._clock)
