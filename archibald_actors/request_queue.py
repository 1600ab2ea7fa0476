"""The orchestrator's pending requests: coalescing and run order (plain data, no threads).

At most one pending request per type. A request for a pending type merges into it; a
request for the running type becomes that type's single follow-up. Run order: every
non-follow-up before any follow-up (so a long or hung type cannot starve the others),
then manual before automatic, then higher priority, then oldest.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from archibald_actors.domain import Trigger
from archibald_actors.schedule import ScheduleEntry

__all__ = ["PendingRequest", "RequestQueue"]


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """One queued request (possibly the merge of several)."""

    sync_type: str
    trigger: Trigger
    scheduled_at: float | None
    requested_at: float
    follow_up: bool
    seq: int
    #: The slot this request's earlier, interrupted run claimed already (a retry's own slot).
    claimed: float | None = None


class RequestQueue:
    """Pending requests keyed by type, ordered on demand."""

    def __init__(self, entries: Mapping[str, ScheduleEntry]) -> None:
        self._entries = entries
        self._pending: dict[str, PendingRequest] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, sync_type: object) -> bool:
        return sync_type in self._pending

    def add(
        self,
        sync_type: str,
        trigger: Trigger,
        scheduled_at: float | None,
        requested_at: float,
        *,
        running: str | None,
        claimed: float | None = None,
    ) -> bool:
        """Queue a request; return True if it merged into one already pending (coalesced)."""
        existing = self._pending.get(sync_type)
        if existing is None:
            self._pending[sync_type] = PendingRequest(
                sync_type,
                trigger,
                scheduled_at,
                requested_at,
                follow_up=(sync_type == running),
                seq=next(self._seq),
                claimed=claimed,
            )
            return False
        merged_trigger: Trigger = "manual" if "manual" in (existing.trigger, trigger) else existing.trigger
        newest_slot = max(
            (s for s in (existing.scheduled_at, scheduled_at) if s is not None), default=None
        )
        self._pending[sync_type] = replace(existing, trigger=merged_trigger, scheduled_at=newest_slot)
        return True

    def _key(self, request: PendingRequest) -> tuple[bool, bool, int, float, int]:
        priority = self._entries[request.sync_type].priority
        return (
            request.follow_up,
            request.trigger != "manual",
            -priority,
            request.requested_at,
            request.seq,
        )

    def ordered(self) -> list[PendingRequest]:
        """Pending requests in the order they would run."""
        return sorted(self._pending.values(), key=self._key)

    def __iter__(self) -> Iterator[PendingRequest]:
        return iter(self.ordered())

    def clear(self) -> None:
        """Drop every pending request."""
        self._pending.clear()

    def restore(self, request: PendingRequest) -> None:
        """Put back a request taken by :meth:`pop_next` (merging with any newer one)."""
        newer = self._pending.get(request.sync_type)
        if newer is None:
            self._pending[request.sync_type] = request
        else:
            self.add(request.sync_type, request.trigger, request.scheduled_at, request.requested_at,
                     running=None)

    def pop_next(self) -> PendingRequest | None:
        """Remove and return the request to run next."""
        if not self._pending:
            return None
        first = min(self._pending.values(), key=self._key)
        del self._pending[first.sync_type]
        return first
