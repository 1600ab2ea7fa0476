"""``archibald-sync simulate``: the real actors on a ``ManualClock``, with realistic sync durations.

A ``SyncService`` with the demo handlers (``handlers/demo.py``, durations from DOMAIN.md)
runs for a number of simulated hours while the clock is advanced a minute at a time.
Every run is read off the service's event bus, so the timeline is what the actors did,
not a model of it. The report shows where the staggered start delays still let two slots
meet (orders and prices both have a slot at T+10: prices waits behind orders).
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from archibald_actors.clock import ManualClock
from archibald_actors.events import RUN_END_EVENTS, Event
from archibald_actors.handlers.demo import DEFAULT_DEMO_DURATION, DEMO_DURATIONS, demo_handlers
from archibald_actors.schedule import DEFAULT_SCHEDULE, ScheduleEntry
from archibald_actors.service import SyncService

__all__ = ["SimulatedRun", "Simulation", "TypeWaits", "format_report", "simulate"]

#: Clock seconds advanced per step.
STEP_SECONDS = 60.0
#: Longest simulation accepted (a week).
MAX_HOURS = 24 * 7.0


@dataclass(frozen=True)
class SimulatedRun:
    """One run, in clock seconds after the service's start.

    Attributes:
        sync_type: the type that ran.
        trigger: "auto", "manual" or "retry".
        slot: the slot it served (None for a manual run).
        started: when it started.
        finished: when it ended (None if still running when the simulation ended).
        outcome: "success", "failed", "timeout", "cancelled", or "running".
        behind: the types that ran between its slot and its start (the collision).
    """

    sync_type: str
    trigger: str
    slot: float | None
    started: float
    finished: float | None
    outcome: str
    behind: tuple[str, ...] = ()

    @property
    def waited(self) -> float:
        """Seconds between the slot and the start (0 for a manual run)."""
        return 0.0 if self.slot is None else max(0.0, self.started - self.slot)

    @property
    def duration(self) -> float | None:
        """Seconds the run took (None while running)."""
        return None if self.finished is None else self.finished - self.started


@dataclass(frozen=True)
class TypeWaits:
    """Per-type totals: runs, and the wait between slot and start."""

    sync_type: str
    runs: int
    collided: int
    mean_wait: float
    max_wait: float


@dataclass(frozen=True)
class Simulation:
    """What a simulation did: its span, the schedule used, and every run in start order."""

    hours: float
    seed: int
    schedule: Mapping[str, ScheduleEntry]
    runs: tuple[SimulatedRun, ...]

    def waits(self) -> list[TypeWaits]:
        """Per type (in schedule order): runs, collided runs, mean and max wait."""
        result = []
        for sync_type in self.schedule:
            runs = [r for r in self.runs if r.sync_type == sync_type]
            waits = [r.waited for r in runs] or [0.0]
            result.append(
                TypeWaits(
                    sync_type,
                    len(runs),
                    sum(1 for r in runs if r.waited > 0),
                    statistics.fmean(waits),
                    max(waits),
                )
            )
        return result

    def collisions(self) -> list[SimulatedRun]:
        """Runs that started later than their slot because another sync was running."""
        return [r for r in self.runs if r.waited > 0]


class _RunCollector:
    """Subscribes to the event bus and keeps the runs' start and end events (thread-safe)."""

    def __init__(self, origin: datetime) -> None:
        self._origin = origin
        self._lock = threading.Lock()
        self._started: list[Event] = []
        self._ended: dict[tuple[str, str], Event] = {}

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event["type"] == "sync.started":
                self._started.append(event)
            elif event["type"] in RUN_END_EVENTS:
                self._ended[(event["syncType"], event["startedAt"])] = event

    def _seconds(self, stamp: str | None) -> float | None:
        if stamp is None:
            return None
        return (datetime.fromisoformat(stamp) - self._origin).total_seconds()

    def runs(self) -> list[SimulatedRun]:
        """The runs seen so far, in start order, each with the types it waited behind."""
        with self._lock:
            started, ended = list(self._started), dict(self._ended)
        plain = []
        for event in started:
            end = ended.get((event["syncType"], event["startedAt"]))
            start = self._seconds(event["startedAt"])
            assert start is not None  # a started run always has a start
            plain.append(
                SimulatedRun(
                    event["syncType"],
                    event["trigger"],
                    self._seconds(event["scheduledAt"]),
                    start,
                    None if end is None else self._seconds(end["finishedAt"]),
                    "running" if end is None else str(end["outcome"]),
                )
            )
        return [_with_blockers(run, plain) for run in plain]


def _with_blockers(run: SimulatedRun, runs: list[SimulatedRun]) -> SimulatedRun:
    if run.slot is None or run.waited <= 0:
        return run
    slot = run.slot
    behind = tuple(
        other.sync_type
        for other in runs
        if other is not run
        and other.started < run.started
        and (other.finished is None or other.finished > slot)
    )
    return SimulatedRun(run.sync_type, run.trigger, run.slot, run.started, run.finished, run.outcome, behind)


def simulate(
    hours: float,
    *,
    seed: int = 0,
    schedule: Mapping[str, ScheduleEntry] | None = None,
    step_seconds: float = STEP_SECONDS,
) -> Simulation:
    """Run the real service on a ``ManualClock`` for ``hours`` simulated hours.

    Args:
        hours: simulated time, more than 0 and at most ``MAX_HOURS``.
        seed: seed of the demo durations.
        schedule: the table to simulate, any types; ``DEFAULT_SCHEDULE`` by default.
        step_seconds: clock seconds per ``advance`` step.

    Raises:
        ValueError: ``hours`` or ``step_seconds`` out of range.
    """
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"hours must be more than 0 and at most {MAX_HOURS:g}, got {hours!r}")
    if not step_seconds > 0:
        raise ValueError(f"step_seconds must be positive, got {step_seconds!r}")
    table = dict(schedule or DEFAULT_SCHEDULE)
    clock = ManualClock()
    handlers = demo_handlers(seed=seed, clock=clock, sync_types=table)
    service = SyncService(handlers, clock=clock, schedule=table)
    collector = _RunCollector(clock.wall(0.0))
    unsubscribe = service.events.subscribe(collector)
    service.start()
    try:
        end = hours * 3600.0
        while clock.now() < end:
            clock.advance(min(step_seconds, end - clock.now()))
        runs = collector.runs()
    finally:
        unsubscribe()
        service.stop()
    return Simulation(hours, seed, table, tuple(runs))


def _clock_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"T+{whole // 60:02d}:{whole % 60:02d}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def format_report(simulation: Simulation) -> str:
    """The timeline, the per-type waits and the collisions, as text."""
    lines = [
        f"Simulated {simulation.hours:g} h of the real actors on a ManualClock "
        f"(demo durations, seed {simulation.seed}).",
        "",
        "Schedule:",
    ]
    for entry in simulation.schedule.values():
        low, high = DEMO_DURATIONS.get(entry.sync_type, DEFAULT_DEMO_DURATION)
        state = "" if entry.enabled else ", paused"
        lines.append(
            f"  {entry.sync_type:<10} every {entry.interval_minutes:g} min "
            f"from T+{entry.start_delay_minutes:g}, priority {entry.priority}, "
            f"takes {low:g}-{high:g} s{state}"
        )
    lines += [
        "",
        "Timeline (times as T+minutes:seconds after start):",
        f"  {'start':<9} {'type':<10} {'trigger':<8} {'slot':<9} {'waited':>6} {'took':>6}  "
        f"{'outcome':<9} waited behind",
    ]
    for run in simulation.runs:
        behind = ", ".join(run.behind)
        lines.append(
            f"  {_clock_time(run.started):<9} {run.sync_type:<10} {run.trigger:<8} "
            f"{_clock_time(run.slot):<9} {_span(run.waited):>6} {_span(run.duration):>6}  "
            f"{run.outcome:<9} {behind}".rstrip()
        )
    lines += [
        "",
        "Waits between slot and start, per type:",
        f"  {'type':<10} {'runs':>5} {'collided':>9} {'mean wait':>10} {'max wait':>9}",
    ]
    for waits in simulation.waits():
        lines.append(
            f"  {waits.sync_type:<10} {waits.runs:>5} {waits.collided:>9} "
            f"{_span(waits.mean_wait):>10} {_span(waits.max_wait):>9}"
        )
    collisions = simulation.collisions()
    lines += ["", "Collisions the staggering did not prevent:"]
    if not collisions:
        lines.append("  none")
    for run in collisions:
        lines.append(
            f"  {_clock_time(run.slot)}: {run.sync_type} waited {_span(run.waited)} "
            f"behind {', '.join(run.behind) or 'another sync'}"
        )
    return "\n".join(lines) + "\n"
