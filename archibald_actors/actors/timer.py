"""``TimerActor``: fires one sync type's slots, drift-free, by the slot rule.

A type with start delay d and interval i has its slots at ``epoch + d + k*i``. The timer
remembers the latest slot it fired for (``served``) and, whenever it is armed, fires
once for the latest due slot newer than that, then waits for the first slot after now.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.clock import Activity, Clock, Wakeup
from archibald_actors.messages import ChildFailed, Pick, Rearm, RequestSync, TimerArmed, Wake
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

    Every arming (start, retune, resume, restart, wake-up) applies the same rule in
    :meth:`_arm`, the one place that fires a slot and records it as served. A wake-up
    carries the token of the arming that made it, so wake-ups from before a retune or a
    restart never fire.

    Same-instant picks: from the moment a wake-up's callback runs until its request
    reaches the orchestrator, the fire counts in ``fires_in_flight``, so the orchestrator
    waits for it before it picks. The orchestrator ends the count when it accepts the
    request; a wake-up that fires nothing ends it here and tells the orchestrator to pick.
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
        # Tokens whose wake-up ran and whose Wake this incarnation has not handled yet,
        # each holding one unit of ``fires_in_flight``. Guarded by a lock: the clock's
        # thread adds to it, this actor's thread takes from it, and at death settles it.
        self._pending_lock = threading.Lock()
        self._pending: set[object] = set()
        self._gone = False

    def on_started(self) -> None:
        """Arm for the first time in this incarnation."""
        self._arm()

    def handle(self, message: Any) -> None:
        """Wake-ups and retunes both end in :meth:`_arm`."""
        if isinstance(message, Wake):
            self._woken(message.token)
        elif isinstance(message, Rearm):
            self._entry = message.entry
            self._retune_seq = max(self._retune_seq, message.seq)
            self._arm()
        else:
            super().handle(message)

    def _woken(self, token: object) -> None:
        with self._pending_lock:
            if token not in self._pending:
                return  # from an incarnation that died: it settled its count itself
            self._pending.discard(token)
        # A stale token means a retune re-armed in between and fired whatever was due.
        if token is not self._token or not self._arm(counted=True):
            self._settle_fire()

    def _arm(self, *, counted: bool = False) -> bool:
        """Apply the slot rule, then arm the wake-up for the first slot after now.

        Args:
            counted: a fire now carries one unit of ``fires_in_flight`` to the orchestrator.

        Returns:
            True if a slot was fired.
        """
        self._disarm()
        self._token = token = object()
        entry = self._entry
        if not entry.enabled:
            self._report(None, 0)
            return False
        now = self._clock.now()
        latest = slot_index(self._epoch, entry, now)
        missed = 0
        fired = False
        if latest >= 0:
            slot = slot_time(self._epoch, entry, latest)
            if self._served is None or self._served < slot:
                missed = self._slots_between(self._served, latest)
                self._fire(slot, missed, counted)
                fired = True
        next_slot = first_slot_after(self._epoch, entry, now)
        self._wakeup = self._clock.call_at(next_slot, self._wake_callback(token))
        self._report(next_slot, missed)
        return fired

    def _wake_callback(self, token: object) -> Callable[[], None]:
        """What the clock runs at the slot, on its own thread: count the fire, tell this actor."""
        address = self._sv_address

        def wake() -> None:
            with self._pending_lock:
                if self._gone:
                    return
                self._pending.add(token)
                self._fires.begin()
            address.tell(Wake(token))

        return wake

    def _settle_fire(self) -> None:
        """End one fire in flight that sent no request; the orchestrator may pick now."""
        self._fires.end()
        self._orchestrator.tell(Pick())

    def _slots_between(self, served: float | None, latest: int) -> int:
        """Slots strictly between the one served and slot ``latest`` (skipped by a catch-up)."""
        served_index = -1 if served is None else slot_index(self._epoch, self._entry, served)
        return max(0, latest - served_index - 1)

    def _fire(self, slot: float, missed: int, counted: bool) -> None:
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
                from_wake=counted,
            )
        )

    def _report(self, next_slot: float | None, missed: int) -> None:
        report = TimerArmed(self._entry.sync_type, self._served, next_slot, missed, self._retune_seq)
        self._supervisor.tell(report)

    def _disarm(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup = None

    def _go(self) -> None:
        """This incarnation ends: no wake-up may count a fire any more; settle those counted."""
        self._disarm()
        with self._pending_lock:
            self._gone = True
            settled = len(self._pending)
            self._pending.clear()
        for _ in range(settled):
            self._settle_fire()

    def on_death(self, error: str) -> None:
        """Disarm, then tell the supervisor."""
        self._go()
        self._supervisor.tell(ChildFailed(self._entry.sync_type, error))

    def on_stop(self) -> None:
        """Disarm on a clean stop."""
        self._go()
        super().on_stop()
