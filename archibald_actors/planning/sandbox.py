"""Running a schedule in a sandbox: a real ``SyncService`` on a ``ManualClock`` over a ``MemoryStore``.

A ``Scenario`` says what to run: the table, how long runs take (a ``Workload``), the
agents, and optionally the state of a live service to start from (its epoch, the slots it
served, its stored requests and recent runs), written into the sandbox's store before it
starts, so the sandbox boots from it as a restarted service would. The clock is then
advanced; every run is read off the service's event bus. No second model of the
scheduling exists: timers, the orchestrator's queue, priorities, coalescing, timeouts and
retries are the service's own.

One thing is arranged: a wake-up armed at the start instant before the service starts.
The orchestrator picks among the requests of one instant only once that instant's due
wake-ups have run, so the timers' first fires (and stored requests) are all queued before
the first pick, and the first run is chosen by priority, as at any later slot, rather
than by which timer thread happened to be first.

The whole sandbox runs on one CPU (see :mod:`.cpu`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from archibald_actors.agent import Agent
from archibald_actors.breaker import DEFAULT_BREAKERS, BreakerPolicy
from archibald_actors.clock import ManualClock
from archibald_actors.domain import RunRecord
from archibald_actors.planning.cpu import on_one_cpu
from archibald_actors.planning.runs import RunCollector, SimulatedRun
from archibald_actors.planning.workload import Workload
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.service import SyncService
from archibald_actors.store.base import PendingRequest
from archibald_actors.store.memory import MemoryStore

__all__ = [
    "MAX_HOURS",
    "PLANNING_THREAD_PREFIX",
    "SandboxResult",
    "Scenario",
    "SimulationCancelledError",
    "run_scenario",
]

#: Longest simulation accepted (a week).
MAX_HOURS = 24 * 7.0
#: Clock seconds advanced between two looks at the cancel flag and the time budget.
_CHUNK_SECONDS = 900.0


class SimulationCancelledError(RuntimeError):
    """The simulation was cancelled (its caller gave up waiting)."""


@dataclass(frozen=True)
class Scenario:
    """What to simulate.

    Attributes:
        schedule: the table (any types).
        hours: simulated time after ``origin``, more than 0 and at most ``MAX_HOURS``.
        workload: how long runs take.
        agents: the agents in the store (a per-agent type runs one job per enabled agent).
        max_concurrent: jobs that may run at once, never two on one lane.
        breakers: when the circuit breakers open, as the service is given them.
        origin: the wall time the simulation starts at (``from`` in its report).
        epoch: the stored epoch slots count from; None: ``origin`` (a first start).
        served: per type, the latest slot served, in seconds after the epoch.
        requests: stored manual requests not started yet.
        runs: the ledger's recent runs (newest first), as a restarted service reads them.
        busy_seconds: the service starts this long after ``origin``: a live run still has
            that long to go, and nothing else can start before it ends.
    """

    schedule: Mapping[str, ScheduleEntry]
    hours: float
    workload: Workload = field(default_factory=Workload)
    agents: tuple[Agent, ...] = ()
    max_concurrent: int = 1
    breakers: BreakerPolicy = DEFAULT_BREAKERS
    origin: datetime = ManualClock.DEFAULT_WALL_ORIGIN
    epoch: datetime | None = None
    served: Mapping[str, float] = field(default_factory=dict)
    requests: tuple[PendingRequest, ...] = ()
    runs: tuple[RunRecord, ...] = ()
    busy_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.hours <= MAX_HOURS:
            raise ValueError(f"hours must be more than 0 and at most {MAX_HOURS:g}, got {self.hours!r}")
        if not self.busy_seconds >= 0:
            raise ValueError(f"busy_seconds must be at least 0, got {self.busy_seconds!r}")

    @property
    def until(self) -> datetime:
        """The wall time the simulation ends at."""
        return self.origin + timedelta(hours=self.hours)


@dataclass(frozen=True)
class SandboxResult:
    """What one sandbox run saw: its runs, and the queue and counters it ended with."""

    runs: tuple[SimulatedRun, ...]
    epoch: datetime
    queued_at_end: int
    coalesced: Mapping[str, int]
    #: Seconds after the origin the simulation reached (less than asked if its budget ran out).
    reached: float = 0.0


def _store(scenario: Scenario) -> MemoryStore:
    store = MemoryStore()
    store.ensure_epoch(scenario.origin if scenario.epoch is None else scenario.epoch)
    for sync_type, offset in scenario.served.items():
        if sync_type in scenario.schedule:
            store.save_served(sync_type, offset)
    for request in scenario.requests:
        if request.sync_type in scenario.schedule:
            store.add_request(request.sync_type, request.trigger, request.requested_at, request.agent_id)
    for record in reversed(scenario.runs):  # the store keeps them oldest first
        if record.sync_type in scenario.schedule:
            store.append_run(record)
    for agent in scenario.agents:
        store.put_agent(agent.agent_id, agent.name, agent.enabled)
    return store


def run_scenario(
    scenario: Scenario, cancel: threading.Event | None = None, budget_seconds: float | None = None
) -> SandboxResult:
    """Run ``scenario`` on the real actors and return every run, in start order.

    Args:
        scenario: what to simulate.
        cancel: set it to stop early (from another thread).
        budget_seconds: real seconds the simulation may take; past them it ends where it got
            to (every 15 simulated minutes it looks), and ``reached`` says where.

    Raises:
        SimulationCancelledError: ``cancel`` was set.
        ClockNotQuietError: a handler blocked on something other than the clock.
    """
    return on_one_cpu(lambda: _run(scenario, cancel, budget_seconds))


def _run(scenario: Scenario, cancel: threading.Event | None, budget_seconds: float | None) -> SandboxResult:
    table = dict(scenario.schedule)
    clock = ManualClock(scenario.busy_seconds, wall_origin=scenario.origin)
    store = _store(scenario)
    service = SyncService(
        scenario.workload.handlers(table, clock),
        clock=clock,
        schedule=table,
        store=store,
        breakers=scenario.breakers,
        max_concurrent=scenario.max_concurrent,
    )
    collector = RunCollector(scenario.origin)
    unsubscribe = service.events.subscribe(collector)
    # Nothing is picked until this instant's wake-ups have run: see the module docstring.
    clock.call_at(clock.now(), lambda: None)
    service.start()
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    try:
        end = scenario.hours * 3600.0
        while clock.now() < end:
            if cancel is not None and cancel.is_set():
                raise SimulationCancelledError("the simulation was cancelled")
            if deadline is not None and time.monotonic() > deadline:
                break
            clock.advance(min(_CHUNK_SECONDS, end - clock.now()))
        reached = clock.now()
        status = service.status()
        runs = collector.runs()
    finally:
        unsubscribe()
        service.stop()
    epoch = store.load().epoch
    assert epoch is not None  # the service recorded one when it started
    coalesced = {t: int(s.get("coalesced", 0)) for t, s in status["types"].items()}
    return SandboxResult(tuple(runs), epoch, len(status["queue"]), coalesced, reached)


class _QuietSandboxStart(logging.Filter):
    """Drops the service's start-up lines logged by a sandbox started on a planning thread.

    A preview starts a whole service; its "Starting staggered auto-sync" lines would read
    as if the live service had restarted.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith(PLANNING_THREAD_PREFIX)


#: Threads whose sandboxes start quietly are named with this prefix.
PLANNING_THREAD_PREFIX = "planning-"
logging.getLogger("archibald_actors").addFilter(_QuietSandboxStart())
