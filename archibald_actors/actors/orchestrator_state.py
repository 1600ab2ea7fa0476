"""``OrchestratorState``: everything the orchestrator knows, kept across its restarts.

It also keeps its own books (queueing with coalesce counts, the start and end of a run),
so the actor reads as decisions. Only the actor calls the mutating methods, from its messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from archibald_actors.actors.request_rows import RequestRows
from archibald_actors.clock import Clock, Wakeup
from archibald_actors.ledger import History, RunRecord
from archibald_actors.messages import Outcome, Reply, Trigger
from archibald_actors.request_queue import PendingRequest, RequestQueue
from archibald_actors.schedule import ScheduleEntry

__all__ = ["FAILING_OUTCOMES", "OrchestratorState", "Running", "TypeCounters"]

# The orchestrator's logger: what the state reports is the orchestrator's doing.
log = logging.getLogger("archibald_actors.orchestrator")

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
    drain_waiters: list[Reply] = field(default_factory=list)
    leading: bool = True
    rows: RequestRows | None = None  # None only in states built by hand

    @classmethod
    def fresh(
        cls,
        entries: Mapping[str, ScheduleEntry],
        history: History,
        since: datetime,
        *,
        rows: RequestRows,
        leading: bool,
    ) -> OrchestratorState:
        """A state for the types of ``entries``; ``since`` is when staleness starts counting."""
        counters = {t: TypeCounters() for t in entries}
        state = cls(RequestQueue(entries), history, counters, since=since, rows=rows, leading=leading)
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

    def enqueue(
        self, sync_type: str, trigger: Trigger, scheduled_at: float | None, requested_at: float
    ) -> bool:
        """Queue a request, counting it if it merged into one already waiting; True if it did."""
        running = self.running.sync_type if self.running else None
        coalesced = self.queue.add(sync_type, trigger, scheduled_at, requested_at, running=running)
        if coalesced:
            self.counters[sync_type].coalesced += 1
        return coalesced

    def load_stored_requests(self) -> bool:
        """Queue the stored requests not queued yet, if leading; True if there were any."""
        if not self.leading or self.rows is None:
            return False
        try:
            unseen = self.rows.unseen()
        except Exception as exc:  # the store is down: the next change or election retries
            log.error("cannot read the stored requests: %s", exc)
            return False
        for sync_type, trigger, requested_at in unseen:
            self.enqueue(sync_type, trigger, None, requested_at)
        return bool(unseen)

    def begin_run(self, sync_type: str) -> int:
        """A run of ``sync_type`` starts: its stored requests are done; returns its run id."""
        if self.rows is not None:
            self.rows.started(sync_type)
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

    def refresh_from_ledger(self, ledger: Callable[[str | None, int], list[RunRecord]], limit: int) -> None:
        """Adopt the ledger's last ``limit`` runs; if the store is down, keep what we had."""
        try:
            runs = ledger(None, limit)
        except Exception as exc:  # the status is still worth answering without them
            log.warning("cannot read the ledger for the status: %s", exc)
            return
        self.adopt_runs(runs)

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits."""
        return self.running is None and len(self.queue) == 0
