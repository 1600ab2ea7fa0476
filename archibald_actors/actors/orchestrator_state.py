"""``OrchestratorState``: everything the orchestrator knows, kept across its restarts.

It also keeps its own books (queueing with coalesce counts, the start and end of a run),
so the actor reads as decisions. Only the actor calls the mutating methods, from its messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from archibald_actors.actors.request_rows import RequestRows
from archibald_actors.actors.store_worker import Chain
from archibald_actors.agent import Agent
from archibald_actors.clock import Clock, Wakeup
from archibald_actors.domain import Outcome, RunRecord, Trigger
from archibald_actors.ledger import History
from archibald_actors.messages import Reply
from archibald_actors.request_queue import PendingRequest, RequestQueue
from archibald_actors.schedule import ScheduleEntry

__all__ = ["FAILING_OUTCOMES", "OrchestratorState", "Running", "TypeCounters"]

#: Outcomes that count as failures; cancelled and skipped runs say nothing of the type's health.
FAILING_OUTCOMES: tuple[Outcome, ...] = ("failed", "timeout")


@dataclass
class Running:
    """The run in progress."""

    run_id: int
    sync_type: str
    trigger: Trigger
    scheduled_at: float | None
    requested_at: float
    started_at: float
    stop: Callable[[], None]
    deadline: Wakeup | None = None
    timed_out: bool = False
    stopped_for_hold: bool = False

    @classmethod
    def of(cls, run_id: int, request: PendingRequest, started_at: float, stop: Callable[[], None]) -> Running:
        """The run ``run_id`` of ``request``, started at ``started_at``; ``stop`` asks it to stop."""
        return cls(
            run_id,
            request.sync_type,
            request.trigger,
            request.scheduled_at,
            request.requested_at,
            started_at,
            stop,
        )

    def record(self, outcome: Outcome, error: str | None, clock: Clock, finished_at: float) -> RunRecord:
        """The run's ledger record: its clock times become wall times, which outlive the clock."""
        return RunRecord(
            sync_type=self.sync_type,
            trigger=self.trigger,
            scheduled_at=None if self.scheduled_at is None else clock.wall(self.scheduled_at),
            requested_at=clock.wall(self.requested_at),
            started_at=clock.wall(self.started_at),
            finished_at=clock.wall(finished_at),
            outcome=outcome,
            error=error,
        )


@dataclass
class TypeCounters:
    """Per-type totals shown in the status.

    ``consecutive_failures`` counts the failed and timed-out runs since the last success;
    cancelled and skipped runs neither add to it nor reset it.
    """

    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    coalesced: int = 0
    duplicates: int = 0
    last_success: datetime | None = None


@dataclass
class OrchestratorState:
    """All the orchestrator knows; survives restarts of the actor."""

    queue: RequestQueue
    history: History
    counters: dict[str, TypeCounters]
    running: Running | None = None
    holds: int = 0
    hold_waiters: list[Reply] = field(default_factory=list)
    idle_waiters: list[Reply] = field(default_factory=list)
    pick_armed: bool = False
    next_run_id: int = 1
    since: datetime | None = None
    draining: bool = False
    drain_stops: bool = False  # a drain asked to stop the running sync
    drain_waiters: list[Reply] = field(default_factory=list)
    leading: bool = True
    rows: RequestRows = field(default_factory=RequestRows)
    #: Clock time slots count from; None until the store was read.
    epoch: float | None = None
    #: Per type, the latest slot claimed (recorded in the store as served).
    served: dict[str, float] = field(default_factory=dict)
    #: The request whose slot is being claimed: nothing else starts until the store answers.
    claiming: PendingRequest | None = None
    #: Finished runs not in the ledger yet, oldest first; ``recording`` appends are out,
    #: in ``record_chain`` (once one fails, the ones after it wait for the next round).
    unrecorded: deque[RunRecord] = field(default_factory=deque)
    recording: int = 0
    record_chain: Chain = field(default_factory=Chain)
    #: A follower's status queries waiting for its read of the ledger.
    status_waiters: list[Callable[[], None]] = field(default_factory=list)
    #: The stored agents, as the supervisor last announced them (``AgentsChanged``).
    agents: tuple[Agent, ...] = ()

    @classmethod
    def fresh(
        cls,
        entries: Mapping[str, ScheduleEntry],
        history: History,
        since: datetime,
        *,
        leading: bool,
    ) -> OrchestratorState:
        """A state for the types of ``entries``; ``since`` is when staleness starts counting."""
        counters = {t: TypeCounters() for t in entries}
        state = cls(RequestQueue(entries), history, counters, since=since, leading=leading)
        state.adopt_runs([])
        return state

    def adopt_runs(self, runs: list[RunRecord]) -> None:
        """Take ``runs`` (newest first, from the ledger) as the history; keep its counters in step.

        The last success and the failures since come from the history, so they survive a
        restart of the process and read the same on every replica of a cluster.
        """
        if runs:
            history = History(self.counters)
            for record in reversed(runs):
                history.add(record)
            self.history = history
        for sync_type, counter in self.counters.items():
            counter.consecutive_failures = 0
            for record in self.history.newest_first(sync_type):
                if record.outcome == "success":
                    counter.last_success = record.finished_at
                    break
                if record.outcome in FAILING_OUTCOMES:
                    counter.consecutive_failures += 1

    def boot(self, epoch: float, served: Mapping[str, float], runs: Iterable[RunRecord]) -> None:
        """The store was read: slots count from ``epoch``; its runs are the history."""
        self.epoch = epoch
        for sync_type, slot in served.items():
            self.served[sync_type] = max(slot, self.served.get(sync_type, slot))
        self.adopt_runs(list(runs))

    def enqueue(
        self, sync_type: str, trigger: Trigger, scheduled_at: float | None, requested_at: float
    ) -> bool:
        """Queue a request, counting it if it merged into one already waiting; True if it did."""
        running = self.running.sync_type if self.running else None
        coalesced = self.queue.add(sync_type, trigger, scheduled_at, requested_at, running=running)
        if coalesced:
            self.counters[sync_type].coalesced += 1
        return coalesced

    def begin_run(self) -> int:
        """A run starts; returns its run id."""
        run_id = self.next_run_id
        self.next_run_id += 1
        return run_id

    def end_run(self, record: RunRecord) -> None:
        """The run in progress ended with ``record``: count it and keep it in the history."""
        self.running = None
        counters = self.counters[record.sync_type]
        counters.runs += 1
        if record.outcome in FAILING_OUTCOMES:
            counters.failures += 1
            counters.consecutive_failures += 1
        elif record.outcome == "success":
            counters.last_success = record.finished_at
            counters.consecutive_failures = 0
        self.history.add(record)

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits."""
        return self.running is None and self.claiming is None and len(self.queue) == 0

    @property
    def blocked(self) -> bool:
        """Nothing may start now: a run or a claim is under way, a hold, a drain, or not leading."""
        busy = self.running is not None or self.claiming is not None
        return busy or self.holds > 0 or self.draining or not self.leading

    def waiting(self) -> list[PendingRequest]:
        """Requests in the order they would run (the one being claimed first)."""
        claiming = [] if self.claiming is None else [self.claiming]
        return [*claiming, *self.queue.ordered()]
