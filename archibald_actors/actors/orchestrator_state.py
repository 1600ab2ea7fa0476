"""``OrchestratorState``: everything the orchestrator knows, kept across its restarts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from archibald_actors.actors.request_rows import RequestRows
from archibald_actors.clock import Wakeup
from archibald_actors.ledger import History, RunRecord
from archibald_actors.messages import Reply, Trigger
from archibald_actors.request_queue import RequestQueue
from archibald_actors.schedule import ScheduleEntry

__all__ = ["OrchestratorState", "Running", "TypeCounters"]


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


@dataclass
class TypeCounters:
    """Per-type totals shown in the status."""

    runs: int = 0
    failures: int = 0
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
        """Take ``runs`` (newest first, from the ledger) as the history; keep last successes in step."""
        if runs:
            history = History(self.counters)
            for record in reversed(runs):
                history.add(record)
            self.history = history
        for sync_type, counter in self.counters.items():
            success = next((r for r in self.history.newest_first(sync_type) if r.outcome == "success"), None)
            if success is not None:
                counter.last_success = success.finished_at

    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits."""
        return self.running is None and len(self.queue) == 0
