"""The runs a sandboxed service made, read off its event bus: ``SimulatedRun`` and ``RunCollector``."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from archibald_actors.events import RUN_END_EVENTS, Event

__all__ = ["RunCollector", "SimulatedRun", "with_blockers"]


@dataclass(frozen=True)
class SimulatedRun:
    """One run, its times in seconds after the simulation's start (its ``origin``).

    Attributes:
        sync_type: the type that ran.
        trigger: "auto", "manual" or "retry".
        slot: the slot it served (None for a manual run).
        started: when it started.
        finished: when it ended (None if still running when the simulation ended).
        outcome: "success", "failed", "timeout", "cancelled", "skipped", or "running".
        behind: the types that ran between its slot and its start (what it waited for).
        agent_id: the agent of a per-agent job (None for a shared type).
    """

    sync_type: str
    trigger: str
    slot: float | None
    started: float
    finished: float | None
    outcome: str
    behind: tuple[str, ...] = ()
    agent_id: str | None = None

    @property
    def waited(self) -> float:
        """Seconds between the slot and the start (0 for a manual run)."""
        return 0.0 if self.slot is None else max(0.0, self.started - self.slot)

    @property
    def duration(self) -> float | None:
        """Seconds the run took (None while running)."""
        return None if self.finished is None else self.finished - self.started


class RunCollector:
    """Subscribes to the event bus and keeps the runs' start and end events (thread-safe)."""

    def __init__(self, origin: datetime) -> None:
        self._origin = origin
        self._lock = threading.Lock()
        self._started: dict[tuple[str, str | None, str], Event] = {}
        self._ended: dict[tuple[str, str | None, str], Event] = {}

    def __call__(self, event: Event) -> None:
        kind = event["type"]
        if kind != "sync.started" and kind not in RUN_END_EVENTS:
            return
        key = (event["syncType"], event.get("agentId"), event["startedAt"])
        with self._lock:
            if kind == "sync.started":
                self._started[key] = event
            else:
                self._ended[key] = event

    def _seconds(self, stamp: str | None) -> float | None:
        if stamp is None:
            return None
        return (datetime.fromisoformat(stamp) - self._origin).total_seconds()

    def runs(self) -> list[SimulatedRun]:
        """The runs seen so far, in start order, each with the types it waited behind."""
        with self._lock:
            started, ended = dict(self._started), dict(self._ended)
        plain = []
        for key in started.keys() | ended.keys():
            end = ended.get(key)
            event = started.get(key) or end
            assert event is not None
            start = self._seconds(event["startedAt"])
            assert start is not None  # a run always has a start
            plain.append(
                SimulatedRun(
                    event["syncType"],
                    event["trigger"],
                    self._seconds(event["scheduledAt"]),
                    start,
                    None if end is None else self._seconds(end["finishedAt"]),
                    "running" if end is None else str(end["outcome"]),
                    agent_id=event.get("agentId"),
                )
            )
        plain.sort(key=lambda r: (r.started, r.sync_type, r.agent_id or ""))
        return with_blockers(plain)


def with_blockers(runs: list[SimulatedRun]) -> list[SimulatedRun]:
    """``runs`` (in start order) with ``behind`` filled in for each run that waited for its slot.

    A run waited behind the runs that started before it and were still running at its slot.
    """
    starts = [r.started for r in runs]
    longest = max((r.duration or 0.0 for r in runs), default=0.0)
    last = starts[-1] if starts else 0.0
    unfinished = [r.started for r in runs if r.finished is None]
    # A run still going at the end may have started long before: look back that far too.
    reach = max([longest, *(last - s for s in unfinished)])
    result = []
    for index, run in enumerate(runs):
        if run.slot is None or run.waited <= 0:
            result.append(run)
            continue
        slot = run.slot
        first = bisect.bisect_left(starts, slot - reach)
        behind: list[str] = []
        for other in runs[first:index]:
            running_at_slot = other.finished is None or other.finished > slot
            if other.started < run.started and running_at_slot and other.sync_type not in behind:
                behind.append(other.sync_type)
        result.append(replace(run, behind=tuple(behind)))
    return result
