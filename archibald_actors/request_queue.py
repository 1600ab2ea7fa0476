"""The orchestrator's pending jobs: coalescing and run order (plain data, no threads).

A job is one run of a type: of a shared type, or of one agent's share of a per-agent
type; it is keyed by ``(sync_type, agent_id)`` (``agent_id`` None for a shared type).
At most one pending job per key. A request for a pending key merges into it.

A **follow-up** is a job whose type has run since it was requested: the request arrived
while a job of its own *type* was running (any agent's, for a per-agent type), or a job of
that type started while it waited. Run order: every non-follow-up before any follow-up,
so a type that runs long, hangs or has more jobs than the budget has lanes cannot keep
the other types out: each type with work waiting gets its turn before any gets another.
Among the others: manual before automatic, then higher priority, then oldest, then the
order the jobs were queued in (a fan-out queues its agents in the round-robin order of its
slot). Follow-ups: manual first, then oldest, whatever their priority, so under a budget
too small for the load no type's waiting jobs are overtaken for good by another's. A
follow-up merged with a request that arrives while its type no longer runs is an ordinary
job again; merged while its type still runs, it stays one.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace

from archibald_actors.domain import Trigger
from archibald_actors.schedule import ScheduleEntry

__all__ = ["JobKey", "OnLane", "PendingRequest", "RequestQueue"]

#: ``(sync_type, agent_id)``: one job's identity (``agent_id`` None for a shared type).
JobKey = tuple[str, str | None]
_SortKey = tuple[bool, bool, int, float, int]


class OnLane:
    """A job's key and lane, which follow from its type and agent (waiting or running)."""

    __slots__ = ()
    sync_type: str
    agent_id: str | None

    @property
    def key(self) -> JobKey:
        """``(sync_type, agent_id)``."""
        return (self.sync_type, self.agent_id)

    @property
    def lane(self) -> str | None:
        """The ERP session the job uses: its agent's, or None for the service's own."""
        return self.agent_id


@dataclass(frozen=True, slots=True)
class PendingRequest(OnLane):
    """One queued job (possibly the merge of several requests)."""

    sync_type: str
    trigger: Trigger
    scheduled_at: float | None
    requested_at: float
    follow_up: bool
    seq: int
    #: The slot this job's earlier, interrupted run claimed already (a retry's own slot).
    claimed: float | None = None
    #: The agent of a per-agent type's job; None for a shared type.
    agent_id: str | None = None
    #: Which try of the job this is (1 first; retries count up).
    attempt: int = 1
    #: The ticket of its (type, lane) breaker's half-open trial, if admitted as one: its end decides the pair.
    ticket: int | None = None


#: A heap entry: the job's run-order key, its push count (ties), the job.
_Entry = tuple[_SortKey, int, PendingRequest]


class RequestQueue:
    """Pending jobs keyed by ``(type, agent)``; the next to run is taken from a heap."""

    def __init__(self, entries: Mapping[str, ScheduleEntry]) -> None:
        self._entries = entries
        self._pending: dict[JobKey, PendingRequest] = {}
        # The keys of the pending jobs that are no follow-ups, by type: a start of their type demotes them.
        self._fresh: dict[str, set[JobKey]] = {}
        # Entries go stale when their job merges, starts or is dropped: a heap entry
        # counts only while its request is still the one pending under its key.
        self._heap: list[_Entry] = []
        # The same entries by type: each type's first job without a look at the others'.
        self._by_type: dict[str, list[_Entry]] = {}
        self._seq = itertools.count()
        self._pushes = itertools.count()  # ties of merged versions of one job never compare requests
        # ``ordered()`` sorted once and kept while only the first job is taken (the usual case:
        # every job start publishes the queue, and sorting 4,000 jobs per start costs ~1 ms).
        self._sorted: list[PendingRequest] | None = None
        self._sorted_from = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: object) -> bool:
        return key in self._pending

    def _put(self, request: PendingRequest) -> None:
        self._sorted = None
        self._pending[request.key] = request
        fresh = self._fresh.setdefault(request.sync_type, set())
        if request.follow_up:
            fresh.discard(request.key)
        else:
            fresh.add(request.key)
        entry = (self._key(request), next(self._pushes), request)
        of_type = self._by_type.setdefault(request.sync_type, [])
        for heap in (self._heap, of_type):
            heapq.heappush(heap, entry)
            if len(heap) > 2 * len(self._pending) + 64:  # merges and starts left many stale entries
                heap[:] = [e for e in heap if self._live(e)]
                heapq.heapify(heap)

    def _live(self, entry: _Entry) -> bool:
        return self._pending.get(entry[2].key) is entry[2]

    def add(
        self,
        sync_type: str,
        trigger: Trigger,
        scheduled_at: float | None,
        requested_at: float,
        *,
        running_types: Collection[str] = (),
        claimed: float | None = None,
        agent_id: str | None = None,
        attempt: int = 1,
    ) -> bool:
        """Queue a job; return True if it merged into one already pending (coalesced).

        ``running_types`` holds the types with a job running now: a job of one of them is a
        follow-up (for a per-agent type, whichever agent's job runs).
        """
        key = (sync_type, agent_id)
        existing = self._pending.get(key)
        if existing is None:
            self._put(
                PendingRequest(
                    sync_type,
                    trigger,
                    scheduled_at,
                    requested_at,
                    follow_up=sync_type in running_types,
                    seq=next(self._seq),
                    claimed=claimed,
                    agent_id=agent_id,
                    attempt=attempt,
                )
            )
            return False
        merged_trigger: Trigger = "manual" if "manual" in (existing.trigger, trigger) else existing.trigger
        newest_slot = max(
            (s for s in (existing.scheduled_at, scheduled_at) if s is not None), default=None
        )
        # A merge is a fresh job: a retry merged into a new slot's job starts again at try 1.
        attempts = min(existing.attempt, attempt)
        # And it keeps the better rank of the two: a follow-up whose type no longer runs
        # when the next request comes is an ordinary job again (else, under a budget too
        # small for the load, the jobs queued while their type ran once would wait for good).
        follow_up = existing.follow_up and sync_type in running_types
        self._put(
            replace(
                existing,
                trigger=merged_trigger,
                scheduled_at=newest_slot,
                attempt=attempts,
                follow_up=follow_up,
            )
        )
        return True

    def _key(self, request: PendingRequest) -> _SortKey:
        # Follow-ups run oldest first, whatever their type's priority.
        priority = 0 if request.follow_up else self._entries[request.sync_type].priority
        return (
            request.follow_up,
            request.trigger != "manual",
            -priority,
            request.requested_at,
            request.seq,
        )

    def ordered(self) -> list[PendingRequest]:
        """Pending jobs in the order they would run (lanes aside)."""
        if self._sorted is None:
            self._sorted, self._sorted_from = sorted(self._pending.values(), key=self._key), 0
        return self._sorted[self._sorted_from :]

    def waiting_types(self) -> list[str]:
        """The types with jobs pending, each once, in the order their first job would run.

        What events say of the queue: bounded by the types, where a list of every job
        would grow with the agents (a thousand names in each of a slot's thousand events).
        Each type's first job is the top of its own heap, so this costs the types, not the jobs.
        """
        firsts: list[tuple[_SortKey, int, str]] = []
        for sync_type, heap in list(self._by_type.items()):
            while heap and not self._live(heap[0]):
                heapq.heappop(heap)
            if heap:
                firsts.append((*heap[0][:2], sync_type))
            else:
                del self._by_type[sync_type]
        return [sync_type for *_, sync_type in sorted(firsts)]

    def __iter__(self) -> Iterator[PendingRequest]:
        return iter(self.ordered())

    def pending(self) -> list[PendingRequest]:
        """Pending jobs in no particular order (cheaper than :meth:`ordered`)."""
        return list(self._pending.values())

    def get(self, key: JobKey) -> PendingRequest | None:
        """The job pending under ``key``, if any."""
        return self._pending.get(key)

    def _forget_fresh(self, request: PendingRequest) -> None:
        self._fresh.get(request.sync_type, set()).discard(request.key)

    def started(self, sync_type: str) -> None:
        """A job of ``sync_type`` started: every pending job of that type is a follow-up now.

        Its requests have seen their type run since they arrived, as if they had arrived
        while it ran: so each type with work waiting gets its turn before any gets another.
        """
        for key in self._fresh.pop(sync_type, set()):
            self._put(replace(self._pending[key], follow_up=True))

    def clear(self) -> None:
        """Drop every pending job."""
        self._sorted = None
        self._pending.clear()
        self._fresh.clear()
        self._heap.clear()
        self._by_type.clear()

    def drop(self, keep: Callable[[PendingRequest], bool]) -> list[PendingRequest]:
        """Drop the pending jobs ``keep`` refuses; return them."""
        dropped = [r for r in self._pending.values() if not keep(r)]
        if dropped:
            self._sorted = None
        for request in dropped:
            del self._pending[request.key]
            self._forget_fresh(request)
        return dropped

    def restore(self, request: PendingRequest) -> None:
        """Put back a job taken by :meth:`pop_next` (merging with any newer one).

        It is no breaker's trial any more: the next pick asks the breaker again.
        """
        request = replace(request, ticket=None)
        if request.key not in self._pending:
            self._put(request)
        else:
            self.add(
                request.sync_type,
                request.trigger,
                request.scheduled_at,
                request.requested_at,
                agent_id=request.agent_id,
                attempt=request.attempt,
            )

    def _unsort(self, taken: PendingRequest) -> None:
        """Keep the sorted order if ``taken`` was its first job; forget it otherwise."""
        order, first = self._sorted, self._sorted_from
        if order is not None and first < len(order) and order[first] is taken:
            self._sorted_from = first + 1
        else:
            self._sorted = None

    def pop_next(self, startable: Callable[[PendingRequest], bool] | None = None) -> PendingRequest | None:
        """Remove and return the first job in run order that ``startable`` accepts (any, if None)."""
        skipped: list[_Entry] = []
        found: PendingRequest | None = None
        heap = self._heap
        while heap:
            item = heapq.heappop(heap)
            request = item[2]
            if not self._live(item):
                continue  # stale: merged, started or dropped since
            if startable is None or startable(request):
                found = request
                del self._pending[request.key]
                self._forget_fresh(request)
                self._unsort(request)
                break
            skipped.append(item)
        for item in skipped:
            heapq.heappush(heap, item)
        return found
