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
from archibald_actors.messages import ChildFailed, Rearm, RequestSync, TimerArmed
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

    Every arming (start, retune, resume, restart) and every wake-up applies the same
    rule through :meth:`_fire_due`, the one place that fires a slot and records it as
    served. A wake-up runs on the clock's thread and does all of its work there: it fires
    its slot and arms the wake-up for the next one, without this actor's thread or the
    supervisor's (at a slot, the only thread woken is the orchestrator's). The supervisor
    hears from a timer when it is armed (its next slot) and when it ends (what it served);
    between the two, the schedule view reads the next slots from the grid. A wake-up
    carries the token of the arming that made it: one from before a retune or a restart
    fires and arms nothing.

    ``_token``, ``_wakeup``, ``_served`` and ``_missed`` are shared with the clock's
    thread, under ``_lock``; the rest is this actor's alone. This actor never holds the
    lock while calling the clock, whose own lock is held while a wake-up runs.
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
        self._retune_seq = retune_seq
        self._orchestrator = orchestrator
        self._supervisor = supervisor
        self._fires = fires_in_flight
        self._lock = threading.Lock()
        self._wakeup: Wakeup | None = None
        self._token: object | None = None  # None: no wake-up of this incarnation may fire
        self._served = served
        self._missed = 0  # slots skipped by catch-ups, not reported to the supervisor yet

    def on_started(self) -> None:
        """Arm for the first time in this incarnation."""
        self._arm()

    def handle(self, message: Any) -> None:
        """A retune: arm again with the new entry."""
        if isinstance(message, Rearm):
            self._entry = message.entry
            self._retune_seq = max(self._retune_seq, message.seq)
            self._arm()
        else:
            super().handle(message)

    def _arm(self) -> None:
        """Fire the latest due slot if it was not served, then arm for the first slot after now."""
        self._disarm()
        entry = self._entry
        with self._lock:
            self._token = token = object()
        if not entry.enabled:
            self._report(None)
            return
        self._fire_due(token, entry)
        self._report(self._arm_next(token, entry))

    def _arm_next(self, token: object, entry: ScheduleEntry) -> float:
        """Arm the wake-up for the first slot after now, unless ``token`` is outdated; return the slot."""
        next_slot = first_slot_after(self._epoch, entry, self._clock.now())
        wakeup: Wakeup | None = self._clock.call_at(next_slot, self._wake_callback(token, entry))
        with self._lock:
            if token is self._token:
                self._wakeup, wakeup = wakeup, None
        if wakeup is not None:  # a retune or the end came meanwhile (only on the clock's thread)
            wakeup.cancel()
        return next_slot

    def _wake_callback(self, token: object, entry: ScheduleEntry) -> Callable[[], None]:
        """What the clock runs at the slot, on its own thread.

        A wake-up that comes late (after a host suspend) fires the latest slot due,
        once, like every arming does; only then, having slots to report as missed, does
        it tell the supervisor.
        """

        def wake() -> None:
            with self._lock:
                if token is not self._token:
                    return
            self._fire_due(token, entry, from_wake=True)
            next_slot = self._arm_next(token, entry)
            with self._lock:
                missed = self._missed
            if missed:
                self._report(next_slot, answers_retunes=False)

        return wake

    def _fire_due(self, token: object, entry: ScheduleEntry, *, from_wake: bool = False) -> bool:
        """The slot rule: if the latest slot <= now is newer than the one served, fire it.

        Runs on this actor's thread (arming) or on the clock's (a wake-up); ``token``
        must still be current, so a wake-up overtaken by a retune fires nothing.

        Args:
            from_wake: a wake-up fires: count it in ``fires_in_flight`` until the
                orchestrator has its request, so that the orchestrator waits for it
                before it picks among the requests of this instant. (A fire on arming
                answers a start, retune or restart, not an instant other timers share.)

        Returns:
            True if a slot was fired.
        """
        now = self._clock.now()
        latest = slot_index(self._epoch, entry, now)
        if latest < 0:
            return False
        slot = slot_time(self._epoch, entry, latest)
        with self._lock:
            if token is not self._token or (self._served is not None and self._served >= slot):
                return False
            served_index = -1 if self._served is None else slot_index(self._epoch, entry, self._served)
            missed = max(0, latest - served_index - 1)
            self._served = slot
            self._missed += missed
            if from_wake:
                self._fires.begin()
            self._orchestrator.tell(
                RequestSync(entry.sync_type, "auto", slot, now, missed=missed, from_wake=from_wake)
            )
        if missed:
            log.info("%s: catch-up for slot %.3f, %d slots missed", entry.sync_type, slot, missed)
        return True

    def _report(self, next_slot: float | None, *, answers_retunes: bool = True) -> None:
        """Tell the supervisor the slot served, the next one and the slots missed since the last report.

        Args:
            answers_retunes: False on the clock's thread, which cannot know whether a retune
                is being applied: only this actor's own reports answer retunes.
        """
        with self._lock:
            served, missed, self._missed = self._served, self._missed, 0
        seq = self._retune_seq if answers_retunes else 0
        self._supervisor.tell(TimerArmed(self._entry.sync_type, served, next_slot, missed, seq))

    def _disarm(self) -> None:
        """No wake-up armed so far fires any more (one running now arms nothing after it)."""
        with self._lock:
            self._token = None
            wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None:
            wakeup.cancel()

    def _end(self) -> None:
        """No wake-up of this incarnation fires any more; the supervisor learns what it served."""
        self._disarm()
        # A wake-up may have fired just before: the next incarnation must not fire it again.
        self._report(None)

    def on_death(self, error: str) -> None:
        """Disarm, then tell the supervisor."""
        self._end()
        self._supervisor.tell(ChildFailed(self._entry.sync_type, error))

    def on_stop(self) -> None:
        """Disarm on a clean stop."""
        self._end()
        super().on_stop()
