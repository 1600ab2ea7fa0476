"""``TimerActor``: fires one sync type's slots, drift-free, by the slot rule of DESIGN section 5."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.clock import Activity, Clock, Wakeup
from archibald_actors.messages import ChildFailed, Expect, Rearm, RequestSync, TimerArmed, Wake
from archibald_actors.schedule import (
    ScheduleEntry,
    first_slot_after,
    slot_index,
    slot_time,
)

__all__ = ["TimerActor"]

log = logging.getLogger("archibald_actors.timer")


class TimerActor(TrackedActor):
    """Arms one clock wake-up at a time for the next slot of its type.

    Every arming (start, retune, resume, restart, wake-up) applies the same rule: if a
    slot <= now exists that is newer than the one served, fire once for the latest such
    slot, then wait for the first slot after now. A wake-up carries the token of the
    arming that made it, so wake-ups from before a retune or a restart never fire.
    """

    def __init__(
        self,
        *,
        address: Address,
        clock: Clock,
        entry: ScheduleEntry,
        epoch: float,
        served: float | None,
        retune_seq: int,
        orchestrator: Address,
        supervisor: Address,
        fires_in_flight: Activity,
    ) -> None:
        super().__init__(address, clock.activity)
        self._clock = clock
        self._entry = entry
        self._epoch = epoch
        self._served = served
        self._retune_seq = retune_seq
        self._orchestrator = orchestrator
        self._supervisor = supervisor
        self._fires = fires_in_flight
        self._token: object = object()
        self._wakeup: Wakeup | None = None
        self._heads_up: Wakeup | None = None

    def on_started(self) -> None:
        """Arm for the first time in this incarnation."""
        self._arm()

    def handle(self, message: Any) -> None:
        """Wake-ups and retunes both end in :meth:`_arm`."""
        if isinstance(message, Wake):
            # The wake-up already sent the slot's request (see _arm): record it as served.
            if self._served is None or self._served < message.slot:
                self._served = message.slot
            if message.token is self._token:
                self._arm(missed_before=message.missed)
        elif isinstance(message, Rearm):
            self._entry = message.entry
            self._retune_seq = max(self._retune_seq, message.seq)
            self._arm()
        else:
            super().handle(message)

    def _arm(self, *, missed_before: int = 0) -> None:
        """Apply the slot rule, then arm the wake-up for the first slot after now."""
        self._disarm()
        self._token = token = object()
        entry = self._entry
        if not entry.enabled:
            self._report(None, missed_before)
            return
        now = self._clock.now()
        latest = slot_index(self._epoch, entry, now)
        missed = 0
        if latest >= 0:
            slot = slot_time(self._epoch, entry, latest)
            if self._served is None or self._served < slot:
                missed = self._slots_between(self._served, latest)
                self._fire(slot, missed)
        next_slot = first_slot_after(self._epoch, entry, now)
        self._wakeup = self._clock.call_at(next_slot, self._wake_callback(token, next_slot))
        if (heads_up := self._clock.heads_up) > 0:
            # The orchestrator stays awake over the slot, so its request costs no thread wake-up.
            expect, orchestrator = Expect(next_slot + heads_up), self._orchestrator
            self._heads_up = self._clock.call_at(next_slot - heads_up, lambda: orchestrator.tell(expect))
        self._report(next_slot, missed_before + missed)

    def _wake_callback(self, token: object, next_slot: float) -> Callable[[], None]:
        """What the clock runs at ``next_slot``, on its own thread.

        It sends the slot's request to the orchestrator itself (a thread hop less between
        a slot and its sync) and then, ``clock.settle_delay`` later, tells this actor,
        which records the slot as served and arms the next. A wake-up that comes late
        (after a suspend) fires the latest slot due, once, like every arming does.
        """
        clock, epoch, entry = self._clock, self._epoch, self._entry
        orchestrator, address, fires = self._orchestrator, self._sv_address, self._fires

        def wake() -> None:
            now = clock.now()
            latest = max(slot_index(epoch, entry, now), slot_index(epoch, entry, next_slot))
            slot = slot_time(epoch, entry, latest)
            missed = latest - slot_index(epoch, entry, next_slot)
            # Counted until the request reaches the orchestrator, so that it waits for
            # the requests of the same instant before it picks.
            fires.begin()
            orchestrator.tell(
                RequestSync(entry.sync_type, "auto", slot, now, missed=missed, from_wake=True)
            )
            # The bookkeeping waits until the instant's requests have been handled: woken
            # together, this actor (and the supervisor it reports to) would compete with
            # the orchestrator for the GIL just when the sync should start.
            clock.call_at(now + clock.settle_delay, lambda: address.tell(Wake(token, slot, missed)))

        return wake

    def _slots_between(self, served: float | None, latest: int) -> int:
        """Slots strictly between the one served and slot ``latest`` (skipped by a catch-up)."""
        served_index = -1 if served is None else slot_index(self._epoch, self._entry, served)
        return max(0, latest - served_index - 1)

    def _fire(self, slot: float, missed: int) -> None:
        self._served = slot
        if missed:
            log.info("%s: catch-up for slot %.3f, %d slots missed", self._entry.sync_type, slot, missed)
        self._orchestrator.tell(
            RequestSync(
                sync_type=self._entry.sync_type,
                trigger="auto",
                scheduled_at=slot,
                requested_at=self._clock.now(),
                missed=missed,
            )
        )

    def _report(self, next_slot: float | None, missed: int) -> None:
        report = TimerArmed(self._entry.sync_type, self._served, next_slot, missed, self._retune_seq)
        self._supervisor.tell(report)

    def _disarm(self) -> None:
        for wakeup in (self._wakeup, self._heads_up):
            if wakeup is not None:
                wakeup.cancel()
        self._wakeup = self._heads_up = None

    def on_death(self, error: str) -> None:
        """Disarm, then tell the supervisor."""
        self._disarm()
        self._supervisor.tell(ChildFailed(self._entry.sync_type, error))

    def on_stop(self) -> None:
        """Disarm on a clean stop."""
        self._disarm()
        super().on_stop()
