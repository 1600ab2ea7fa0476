"""The runs a sandboxed service made, read off its event bus: ``SimulatedRun`` and ``RunCollector``."""

from __future__ import annotations

import bisect
import math
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


#: ``(syncType, agentId, startedAt)``: one run, as its events name it.
_RunKey = tuple[str, "str | None", str]
#: ``(trigger, scheduledAt, finishedAt, outcome)`` of a run; the last two None until it ended.
_RunFacts = tuple[str, "str | None", "str | None", "str | None"]


class RunCollector:
    """Subscribes to the event bus and keeps each run's start and end (thread-safe).

    It keeps tuples of strings, not the events: a week of 60 agents is some 150,000 events,
    and tuples of strings are left alone by the garbage collector, where dicts would make
    every full collection of the simulating process walk them (a fifth of a week's time).
    """

    def __init__(self, origin: datetime) -> None:
        self._origin = origin
        self._lock = threading.Lock()
        self._runs: dict[_RunKey, _RunFacts] = {}

    def __call__(self, event: Event) -> None:
        kind = event["type"]
        if kind != "sync.started" and kind not in RUN_END_EVENTS:
            return
        key = (event["syncType"], event.get("agentId"), event["startedAt"])
        trigger, scheduled = event["trigger"], event["scheduledAt"]
        with self._lock:
            if kind != "sync.started":
                self._runs[key] = (trigger, scheduled, event["finishedAt"], str(event["outcome"]))
            elif key not in self._runs:  # an end seen first (another publishing thread) wins
                self._runs[key] = (trigger, scheduled, None, None)

    def _seconds(self, stamp: str | None) -> float | None:
        if stamp is None:
            return None
        return (datetime.fromisoformat(stamp) - self._origin).total_seconds()

    def runs(self) -> list[SimulatedRun]:
        """The runs seen so far, in start order, each with the types it waited behind."""
        with self._lock:
            runs = dict(self._runs)
        plain = []
        for (sync_type, agent_id, started), (trigger, scheduled, finished, outcome) in runs.items():
            start = self._seconds(started)
            assert start is not None  # a run always has a start
            plain.append(
                SimulatedRun(
                    sync_type,
                    trigger,
                    self._seconds(scheduled),
                    start,
                    self._seconds(finished),
                    "running" if outcome is None else outcome,
                    agent_id=agent_id,
                )
            )
        plain.sort(key=lambda r: (r.started, r.sync_type, r.agent_id or ""))
        return with_blockers(plain)


def with_blockers(runs: list[SimulatedRun]) -> list[SimulatedRun]:
    """``runs`` (in start order) with ``behind`` filled in for each run that waited for its slot.

    A run waited behind the runs that started before it and were still running at its
    slot; ``behind`` names their types, each once, in the order of each type's first such
    run. That first run depends on the slot only, and a slot is shared by every job of its
    fan-out: it is looked up once per (slot, type), among the runs that started at most the
    type's longest run before the slot (a week's 75,000 runs take a tenth of a second where
    a look at every run in between took a second).
    """
    by_type: dict[str, _TypeRuns] = {}
    last = runs[-1].started if runs else 0.0
    for place, run in enumerate(runs):
        by_type.setdefault(run.sync_type, _TypeRuns()).add(place, run, last)
    running_at: dict[float, list[tuple[int, float, str]]] = {}
    result = []
    for run in runs:
        slot = run.slot
        if slot is None or run.waited <= 0:
            result.append(run)
            continue
        if slot not in running_at:
            firsts = ((of_type.first_running_at(slot), t) for t, of_type in by_type.items())
            running_at[slot] = sorted((*first, t) for first, t in firsts if first is not None)
        behind = tuple(t for _, started, t in running_at[slot] if started < run.started)
        result.append(replace(run, behind=behind))
    return result


class _TypeRuns:
    """One type's runs in start order: their starts, ends (inf: still running) and places in all runs."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.places: list[int] = []
        # The longest a run of the type took (a run still going: until the last start),
        # so a run still going at a slot started at most this long before it.
        self.reach = 0.0

    def add(self, place: int, run: SimulatedRun, last: float) -> None:
        self.starts.append(run.started)
        self.ends.append(math.inf if run.finished is None else run.finished)
        self.places.append(place)
        self.reach = max(self.reach, (last if run.finished is None else run.finished) - run.started)

    def first_running_at(self, slot: float) -> tuple[int, float] | None:
        """(place, start) of this type's first run still running at ``slot`` (or started after it)."""
        for i in range(bisect.bisect_left(self.starts, slot - self.reach), len(self.starts)):
            if self.ends[i] > slot:
                return self.places[i], self.starts[i]
        return None
