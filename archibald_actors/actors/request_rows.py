"""``RequestRows``: manual requests kept as rows of the store, so neither a restart nor a
change of leader loses one.

Every manual request is written before it is acknowledged (and, in a cluster, announced);
the leader queues the rows it has not seen yet and deletes a type's rows when that
type's run starts. Rows left by a stopped or killed process run after the next start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archibald_actors.clock import Clock
from archibald_actors.messages import Trigger
from archibald_actors.store.base import ClusterStore, Store

__all__ = ["RequestRows"]

TRIGGERS: tuple[Trigger, ...] = ("auto", "manual", "retry")


@dataclass
class RequestRows:
    """Row ids per type that the leader has queued; lives in the orchestrator's state."""

    store: Store
    clock: Clock
    by_type: dict[str, list[int]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)

    def record(self, sync_type: str, trigger: Trigger, requested_at: float) -> None:
        """Write a request (and announce it to the other replicas)."""
        row = self.store.add_request(sync_type, trigger, self.clock.wall(requested_at))
        self.seen.add(row)
        self.by_type.setdefault(sync_type, []).append(row)
        if isinstance(self.store, ClusterStore):
            self.store.notify("request", {"syncType": sync_type, "id": row})

    def unseen(self) -> list[tuple[str, Trigger, float]]:
        """Rows written by any replica (or an earlier run) not queued here yet, oldest first."""
        now, wall_now = self.clock.now(), self.clock.wall()
        found: list[tuple[str, Trigger, float]] = []
        for row, sync_type, trigger, requested_at in self.store.pending_requests():
            if row in self.seen:
                continue
            self.seen.add(row)
            self.by_type.setdefault(sync_type, []).append(row)
            kind: Trigger = trigger if trigger in TRIGGERS else "manual"
            found.append((sync_type, kind, now - (wall_now - requested_at).total_seconds()))
        return found

    def started(self, sync_type: str) -> None:
        """The type's run started: its rows are done."""
        rows = self.by_type.pop(sync_type, [])
        if rows:
            self.store.delete_requests(rows)

    def forget(self) -> None:
        """Stepping down: the rows stay in the store for the next leader."""
        self.by_type.clear()
        self.seen.clear()
