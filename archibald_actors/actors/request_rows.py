"""``RequestRows``: which stored manual requests the leader has queued, so neither a restart
nor a change of leader loses one.

Every manual request is written before it is acknowledged (and, in a cluster, announced);
the leader queues the rows it has not seen yet as jobs and deletes a row once every job
it became has started (a request for every agent of a per-agent type is one row and many
jobs). Rows left by a stopped or killed process run after the next start. The
orchestrator makes the store calls (off its thread); this is only the bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from archibald_actors.clock import Clock
from archibald_actors.domain import TRIGGERS, Trigger
from archibald_actors.messages import StoredRequest
from archibald_actors.request_queue import JobKey

__all__ = ["RequestRows", "UnseenRequest"]

#: A stored request not queued yet: ``(row, syncType, trigger, requestedAt clock time, agentId)``.
UnseenRequest = tuple[int, str, Trigger, float, str | None]


@dataclass
class RequestRows:
    """Row ids per job that the leader has queued; lives in the orchestrator's state."""

    by_key: dict[JobKey, list[int]] = field(default_factory=dict)
    #: Per row, how many of the jobs it became have not started yet.
    remaining: dict[int, int] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)

    def note(self, keys: Iterable[JobKey], row: int) -> None:
        """A request written as ``row`` was queued as the jobs ``keys``."""
        self.seen.add(row)
        for key in keys:
            self.by_key.setdefault(key, []).append(row)
            self.remaining[row] = self.remaining.get(row, 0) + 1

    def unseen(self, rows: list[StoredRequest], clock: Clock) -> list[UnseenRequest]:
        """Of the stored ``rows``, those not queued here yet, oldest first, with clock times.

        The caller notes each once it knows the jobs it became.
        """
        now, wall_now = clock.now(), clock.wall()
        found: list[UnseenRequest] = []
        for row, sync_type, trigger, requested_at, agent_id in rows:
            if row in self.seen:
                continue
            kind: Trigger = trigger if trigger in TRIGGERS else "manual"
            found.append((row, sync_type, kind, now - (wall_now - requested_at).total_seconds(), agent_id))
        return found

    def started(self, key: JobKey) -> list[int]:
        """The job ``key`` started (or was dropped): returns the rows now done, for deletion."""
        done = []
        for row in self.by_key.pop(key, []):
            left = self.remaining.get(row, 1) - 1
            if left <= 0:
                self.remaining.pop(row, None)
                done.append(row)
            else:
                self.remaining[row] = left
        return done

    def forget(self) -> None:
        """Stepping down: the rows stay in the store for the next leader."""
        self.by_key.clear()
        self.remaining.clear()
        self.seen.clear()
