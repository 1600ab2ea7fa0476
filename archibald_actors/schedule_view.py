"""The schedule as readers see it: an immutable snapshot the supervisor publishes.

Reading the schedule is by far the most frequent request, and it needs nothing but the
supervisor's entries and the slots its timers were armed for. So after every message that
may change them, the supervisor builds a ``ScheduleView`` and publishes it (one reference
swap) *before* it answers the retune that caused the change. A reader on any thread takes
the latest view without a round trip to the actors, and a reader that saw a retune
answered sees its effect. A timer re-arms at each of its slots without telling the
supervisor; once the slot a view knows has passed, the view reads the next one from the
grid, which is where the timer armed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archibald_actors.clock import Clock
from archibald_actors.domain import iso
from archibald_actors.schedule import ScheduleEntry, first_slot_after

__all__ = ["ScheduleView"]


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """The schedule at one moment of the supervisor's life.

    Attributes:
        entries: the schedule table.
        next_slots: per type, the slot its timer was armed for, or None for no next run
            (paused, or its timer failed for good). Once that slot has passed, the timer
            has re-armed for the next slot on the grid.
        from_grid: types with no armed timer here whose next run is still due (a
            follower's, or a timer between restarts): their ``nextRunAt`` is the first slot
            after the time of reading, from the epoch and the entry.
        epoch: the schedule time slots are counted from.
    """

    entries: Mapping[str, ScheduleEntry]
    next_slots: Mapping[str, float | None]
    from_grid: frozenset[str]
    epoch: float

    def next_slot(self, sync_type: str, now: float) -> float | None:
        """Schedule time of the next run of ``sync_type`` as of ``now``; None if none is due."""
        slot = self.next_slots[sync_type]
        if sync_type in self.from_grid or (slot is not None and slot <= now):
            return first_slot_after(self.epoch, self.entries[sync_type], now)
        return slot

    def fixed_until(self, now: float) -> float:
        """Until when (schedule time) the rows read at ``now`` stay what they are: the earliest next run."""
        slots = [self.next_slot(t, now) for t in self.entries]
        return min((s for s in slots if s is not None), default=float("inf"))

    def next_run_at(self, sync_type: str, clock: Clock) -> str | None:
        """``nextRunAt`` of ``sync_type``: ISO 8601 UTC, or None."""
        slot = self.next_slot(sync_type, clock.now())
        return None if slot is None else iso(clock.wall(slot))

    def rows(self, clock: Clock) -> dict[str, dict[str, Any]]:
        """``{type: {interval, startDelay, unit, enabled, nextRunAt}}``, a fresh dict per call."""
        return {t: {**e.to_json(), "nextRunAt": self.next_run_at(t, clock)} for t, e in self.entries.items()}
