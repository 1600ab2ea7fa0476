"""``RequestRows``: which stored manual requests the leader has queued, so neither a restart
nor a change of leader loses one.

Every manual request is written before it is acknowledged (and, in a cluster, announced);
the leader queues the rows it has not seen yet and deletes a type's rows when that
type's run starts. Rows left by a stopped or killed process run after the next start.
The orchestrator makes the store calls (off its thread); this is only the bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archibald_actors.clock import Clock
from archibald_actors.domain import TRIGGERS, Trigger
from archibald_actors.messages import StoredRequest

__all__ = ["RequestRows"]


@dataclass
class RequestRows:
    """Row ids per type that the leader has queued; lives in the orchestrator's state."""

    by_type: dict[str, list[int]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)

    def note(self, sync_type: str, row: int) -> None:
        """A request of ``sync_type`` was written here as ``row``."""
        self.seen.add(row)
        self.by_type.setdefault(sync_type, []).append(row)

    def unseen(self, rows: list[StoredRequest], clock: Clock) -> list[tuple[str, Trigger, float]]:
        """Of the stored ``rows``, those not queued here yet, oldest first, with clock times."""
        now, wall_now = clock.now(), clock.wall()
        found: list[tuple[str, Trigger, float]] = []
        for row, sync_type, trigger, requested_at in rows:
            if row in self.seen:
                continue
            self.note(sync_type, row)
            kind: Trigger = trigger if trigger in TRIGGERS else "manual"
            found.append((sync_type, kind, now - (wall_now - requested_at).total_seconds()))
        return found

    def started(self, sync_type: str) -> list[int]:
        """The type's run started: its rows are done; returns them for deletion."""
        return self.by_type.pop(sync_type, [])

    def forget(self) -> None:
        """Stepping down: the rows stay in the store for the next leader."""
        self.by_type.clear()
        self.seen.clear()
