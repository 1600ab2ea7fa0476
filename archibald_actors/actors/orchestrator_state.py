"""``OrchestratorState``: everything the orchestrator knows, kept across its restarts.

It also keeps its own books (queueing with coalesce counts, the start and end of a run),
so the actor reads as decisions. Only the actor calls the mutating methods, from its messages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from archibald_actors.actors.request_rows import RequestRows
from archibald_actors.actors.store_worker import Chain
from archibald_actors.agent import Agent
from archibald_actors.breaker import Breakers
from archibald_actors.clock import Clock, Wakeup
from archibald_actors.domain import FAILURES, Outcome, RunRecord, Trigger
from archibald_actors.ledger import History
from archibald_actors.messages import Reply
from archibald_actors.request_queue import JobKey, OnLane, PendingRequest, RequestQueue
from archibald_actors.schedule import ScheduleEntry

__all__ = ["OrchestratorState", "Running", "TypeCounters"]


@dataclass
class Running(OnLane):
    """One job in progress."""

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
    agent_id: str | None = None
    attempt: int = 1
    ticket: int | None = None  # its breaker's trial ticket, if it is the trial
    #: The handler's latest ``ctx.progress`` (set from its thread: one reference swap).
    progress: dict[str, Any] | None = None

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
            agent_id=request.agent_id,
            attempt=request.attempt,
            ticket=request.ticket,
        )

    def record(
        self,
        outcome: Outcome,
        error: str | None,
        clock: Clock,
        finished_at: float,
        *,
        result: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> RunRecord:
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
            agent_id=self.agent_id,
            attempt=self.attempt,
            result=result,
            reason=reason,
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
    #: The jobs in progress by run id (at most ``max_concurrent``, never two on one lane).
    jobs: dict[int, Running] = field(default_factory=dict)
    max_concurrent: int = 1
    #: Holds of every lane (``exclusive()``), and of single agents' lanes.
    holds: int = 0
    lane_holds: dict[str, int] = field(default_factory=dict)
    #: Callers of a hold waiting for the jobs on the held lane(s) to end: (reply, agent or None).
    hold_waiters: list[tuple[Reply, str | None]] = field(default_factory=list)
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
    #: Jobs whose slot is being claimed, by lane: each counts as running until the store answers.
    claiming: dict[str | None, PendingRequest] = field(default_factory=dict)
    #: Finished runs not in the ledger yet, oldest first; ``recording`` appends are out,
    #: in ``record_chain`` (once one fails, the ones after it wait for the next round).
    unrecorded: deque[RunRecord] = field(default_factory=deque)
    recording: int = 0
    record_chain: Chain = field(default_factory=Chain)
    #: A follower's status queries waiting for its read of the ledger.
    status_waiters: list[Callable[[], None]] = field(default_factory=list)
    #: The stored agents, as the supervisor last announced them (``AgentsChanged``).
    agents: tuple[Agent, ...] = ()
    #: Per per-agent type, how far its fan-outs' round-robin start has turned.
    rotation: dict[str, int] = field(default_factory=dict)
    #: The latest run of each (per-agent type, agent), for the status's agent counts.
    latest: dict[tuple[str, str], RunRecord] = field(default_factory=dict)
    #: Circuit breakers per (type, lane) and ERP-wide; the wake-up armed for their next change.
    breakers: Breakers = field(default_factory=Breakers)
    breaker_wakeup: Wakeup | None = None
    #: Retries armed on the clock, per job.
    retries: dict[JobKey, Wakeup] = field(default_factory=dict)

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
        """Take ``runs`` (from the ledger) as the history; keep its counters in step.

        The last success and the failures since come from the history, so they survive a
        restart of the process and read the same on every replica of a cluster. The history
        is in the order runs end, as they are added live (the ledger lists them by start).
        """
        if runs:
            history = History(self.counters)
            for record in sorted(reversed(runs), key=lambda r: (r.finished_at, r.started_at)):
                history.add(record)
            self.history = history
        self.latest = {}
        for record in reversed(self.history.newest_first()):
            self._note_latest(record)
        for sync_type, counter in self.counters.items():
            counter.consecutive_failures = 0
            for record in self.history.newest_first(sync_type):
                if record.outcome == "success":
                    counter.last_success = record.finished_at
                    break
                if record.outcome in FAILURES:
                    counter.consecutive_failures += 1

    def boot(self, epoch: float, served: Mapping[str, float], runs: Iterable[RunRecord]) -> None:
        """The store was read: slots count from ``epoch``; its runs are the history."""
        self.epoch = epoch
        for sync_type, slot in served.items():
            self.served[sync_type] = max(slot, self.served.get(sync_type, slot))
        self.adopt_runs(list(runs))

    def _note_latest(self, record: RunRecord) -> None:
        if record.agent_id is not None and record.outcome != "cancelled":
            self.latest[(record.sync_type, record.agent_id)] = record

    def enqueue(
        self,
        sync_type: str,
        trigger: Trigger,
        scheduled_at: float | None,
        requested_at: float,
        *,
        agent_id: str | None = None,
        attempt: int = 1,
    ) -> bool:
        """Queue a job, counting it if it merged into one already waiting; True if it did."""
        coalesced = self.queue.add(
            sync_type,
            trigger,
            scheduled_at,
            requested_at,
            running_types=self.running_types(),
            agent_id=agent_id,
            attempt=attempt,
        )
        if coalesced:
            self.counters[sync_type].coalesced += 1
        return coalesced

    @property
    def running(self) -> Running | None:
        """The longest-running job, or None."""
        return min(self.jobs.values(), key=lambda job: (job.started_at, job.run_id), default=None)

    def running_types(self) -> set[str]:
        """The types with a job running now (a request for one of them is a follow-up)."""
        return {job.sync_type for job in self.jobs.values()}

    def busy_lanes(self) -> set[str | None]:
        """Lanes a job runs or is being claimed on."""
        return {job.lane for job in self.jobs.values()} | set(self.claiming)

    def lane_held(self, lane: str | None) -> bool:
        """A hold keeps jobs of ``lane`` from starting."""
        return self.holds > 0 or (lane is not None and self.lane_holds.get(lane, 0) > 0)

    @property
    def budget_left(self) -> int:
        """How many more jobs may start now."""
        return self.max_concurrent - len(self.jobs) - len(self.claiming)

    def begin_run(self) -> int:
        """A run starts; returns its run id."""
        run_id = self.next_run_id
        self.next_run_id += 1
        return run_id

    def end_run(self, run_id: int, record: RunRecord) -> None:
        """Job ``run_id`` ended with ``record``: count it and keep it in the history."""
        self.jobs.pop(run_id, None)
        self._note_latest(record)
        counters = self.counters[record.sync_type]
        counters.runs += 1
        if record.outcome in FAILURES:
            counters.failures += 1
            counters.consecutive_failures += 1
        elif record.outcome == "success":
            counters.last_success = record.finished_at
            counters.consecutive_failures = 0
        self.history.add(record)

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits."""
        return not self.jobs and not self.claiming and len(self.queue) == 0

    @property
    def blocked(self) -> bool:
        """Nothing may start now: the budget is spent, a hold of every lane, a drain, or not leading."""
        return self.budget_left <= 0 or self.holds > 0 or self.draining or not self.leading

    def waiting(self) -> list[PendingRequest]:
        """Jobs in the order they would run (those being claimed first)."""
        return [*self.claiming.values(), *self.queue.ordered()]
