"""Timer lateness on the real clock: archibald_actors vs APScheduler 3.11, side by side.

What it measures
----------------
The six sync types of ``DEFAULT_SCHEDULE`` run time-compressed on the real clock (by
default 1 schedule minute = 20 ms, i.e. ``ScaledClock(3000)``) with handlers that only
record the time and return, so lateness measures the scheduler and not the work. For
every run it records how late it was against its ideal slot ``E + d + k*i``, in real
milliseconds:

* ``fire``  - archibald_actors: the orchestrator accepted the timer's request (the
  ``queue.changed`` event, published on the orchestrator thread in ``_accept``);
  APScheduler: the job was submitted to its executor (``EVENT_JOB_SUBMITTED``).
* ``start`` - archibald_actors: the sync handler was entered
  (``clock.now() - ctx.scheduled_at``); APScheduler: the job body holds the
  serialization lock. This is the like-for-like figure ("the job started"). On our
  side the first run of a slot shared by several types waits until all of the instant's
  requests have arrived, so that they run in priority order.

APScheduler runs an ``AsyncIOScheduler`` configured the same way: six ``IntervalTrigger``
jobs with the same (scaled) intervals and staggered start dates, coroutine job bodies
serialized by one ``asyncio.Lock``; ``coalesce=False`` and ``misfire_grace_time=None`` so
no run is dropped silently. Run counts of both sides are checked against the slot count
expected for the window.

Both start ``--lead`` schedule minutes after setup (the same shift for every type, so
the staggering is unchanged): every measured run, including the first one, then goes
through the steady-state timer path instead of the start-up catch-up of one side and the
"first run is the next slot after now" rule of the other. Slots whose ideal time falls
in ``[0, seconds)`` after that origin are measured; the run goes on a short grace period
so the last of them completes.

Run (from the repo root)::

    .venv/bin/python bench/timer_lateness.py              # 20 s + 20 s
    .venv/bin/python bench/timer_lateness.py --seconds 5  # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import apscheduler
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from archibald_actors import DEFAULT_SCHEDULE, ScaledClock, ScheduleEntry, SyncContext, SyncService
from archibald_actors.clock import Wakeup
from archibald_actors.schedule import latest_slot_at_or_before

#: Real seconds after the measured window before stopping, so its last slots complete.
GRACE_REAL = 0.25
GOAL_P99_MS = 1.0
GOAL_RATIO = 0.5


# --- slots and statistics -------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The compressed schedule both systems follow (all in real seconds)."""

    minute: float  # real seconds per schedule minute
    lead_minutes: float
    seconds: float
    entries: Mapping[str, ScheduleEntry]

    @property
    def speed(self) -> float:
        return 60.0 / self.minute

    def expected(self, sync_type: str) -> int:
        """Number of slots of ``sync_type`` whose ideal time is inside the window."""
        entry = self.entries[sync_type]
        window = self.seconds / self.minute + self.lead_minutes  # in schedule minutes
        if entry.start_delay_minutes >= window:
            return 0
        return math.ceil((window - entry.start_delay_minutes) / entry.interval_minutes - 1e-9)

    def slot_minutes(self, sync_type: str, k: int) -> float:
        entry = self.entries[sync_type]
        return entry.start_delay_minutes + k * entry.interval_minutes

    def collisions(self) -> set[tuple[str, int]]:
        """Slots of the window that share their instant with a slot of another type."""
        by_instant: dict[float, list[tuple[str, int]]] = {}
        for sync_type in self.entries:
            for k in range(self.expected(sync_type)):
                by_instant.setdefault(round(self.slot_minutes(sync_type, k), 6), []).append((sync_type, k))
        return {slot for group in by_instant.values() if len(group) > 1 for slot in group}


@dataclass
class Series:
    """Lateness samples (real seconds) keyed by (type, slot index)."""

    samples: dict[tuple[str, int], float] = field(default_factory=dict)
    duplicates: int = 0
    outside: int = 0

    def add(self, plan: Plan, sync_type: str, k: int, lateness: float) -> None:
        if not 0 <= k < plan.expected(sync_type):
            self.outside += 1
        elif (sync_type, k) in self.samples:
            self.duplicates += 1
        else:
            self.samples[(sync_type, k)] = lateness

    def values(self, keep: Callable[[tuple[str, int]], bool] = lambda _: True) -> list[float]:
        return sorted(v for key, v in self.samples.items() if keep(key))


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0..100) of sorted values; NaN if empty."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


@dataclass(frozen=True)
class Stats:
    runs: int
    p50: float  # milliseconds
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        ms = sorted(v * 1000.0 for v in values)
        return cls(len(ms), percentile(ms, 50), percentile(ms, 99), ms[-1] if ms else math.nan)


@dataclass
class Result:
    """What one system produced."""

    name: str
    fire: Series
    start: Series
    extra: dict[str, list[float]] = field(default_factory=dict)


# --- archibald_actors -------------------------------------------------------------


class ProbedClock(ScaledClock):
    """``ScaledClock`` that also records how late each wake-up callback ran (bench only)."""

    def __init__(self, speed: float) -> None:
        super().__init__(speed)
        self.wakeups: list[tuple[float, float]] = []  # (deadline, lateness) in schedule seconds

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        record = self.wakeups.append
        now = self.now

        def probed() -> None:
            record((deadline, now() - deadline))
            callback()

        return super().call_at(deadline, probed)


def run_archibald(plan: Plan, coroutine_handlers: bool) -> Result:
    """Run the service for the window; lateness from the event bus and the handlers."""
    speed = plan.speed
    clock = ProbedClock(speed)
    fired: list[tuple[str, float]] = []
    started: list[tuple[str, float, float]] = []

    def record_start(ctx: SyncContext) -> None:
        assert ctx.scheduled_at is not None, "only timer-triggered runs are expected"
        started.append((ctx.sync_type, ctx.scheduled_at, clock.now()))

    def thread_handler(ctx: SyncContext) -> None:
        record_start(ctx)

    async def coroutine_handler(ctx: SyncContext) -> None:
        record_start(ctx)

    handler = coroutine_handler if coroutine_handlers else thread_handler
    service = SyncService(
        handlers=dict.fromkeys(plan.entries, handler),
        clock=clock,
        schedule=plan.entries,
    )

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "queue.changed" and event["trigger"] == "auto":
            fired.append((event["syncType"], clock.now()))

    service.events.subscribe(on_event)
    service.start()
    try:
        time.sleep(plan.lead_minutes * plan.minute + plan.seconds + GRACE_REAL)
    finally:
        service.stop()
        clock.join(2.0)
    assert service.epoch is not None
    epoch = service.epoch
    origin = epoch + plan.lead_minutes * 60.0  # our slot times are relative to the epoch

    def index(sync_type: str, slot: float) -> int:
        entry = plan.entries[sync_type]
        return round((slot - epoch - entry.start_delay) / entry.interval)

    result = Result("archibald_actors", Series(), Series())
    for sync_type, slot, now in started:
        result.start.add(plan, sync_type, index(sync_type, slot), (now - slot) / speed)
    for sync_type, now in fired:
        slot = latest_slot_at_or_before(epoch, plan.entries[sync_type], now)
        if slot is not None:
            result.fire.add(plan, sync_type, index(sync_type, slot), (now - slot) / speed)

    slot_times = {
        round(epoch + plan.slot_minutes(t, k) * 60.0, 3)
        for t in plan.entries
        for k in range(plan.expected(t) + 1)
    }
    timer_wakeups = [late / speed for deadline, late in clock.wakeups if round(deadline, 3) in slot_times]
    other_wakeups = [
        late / speed
        for deadline, late in clock.wakeups
        if round(deadline, 3) not in slot_times and deadline >= origin
    ]
    result.extra["clock wake-up, timer slots"] = timer_wakeups
    result.extra["clock wake-up, others (settle)"] = other_wakeups
    return result


# --- APScheduler ------------------------------------------------------------------


async def _run_apscheduler(plan: Plan) -> Result:
    lock = asyncio.Lock()
    result = Result(f"apscheduler {apscheduler.__version__}", Series(), Series())
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": len(plan.entries)},
    )
    epoch = time.time()  # start delays already include the lead
    firsts: dict[str, float] = {}
    intervals: dict[str, float] = {}

    def index(sync_type: str, at: float) -> int:
        return round((at - firsts[sync_type]) / intervals[sync_type])

    async def job(sync_type: str) -> None:
        async with lock:
            now = time.time()
            k = index(sync_type, now)
            result.start.add(plan, sync_type, k, now - (firsts[sync_type] + k * intervals[sync_type]))

    def on_submitted(event: JobSubmissionEvent) -> None:
        now = time.time()
        for run_time in event.scheduled_run_times:
            ideal = run_time.timestamp()
            result.fire.add(plan, event.job_id, index(event.job_id, ideal), now - ideal)

    for sync_type, entry in plan.entries.items():
        interval_us = round(entry.interval_minutes * plan.minute * 1e6)
        start = datetime.fromtimestamp(epoch, UTC) + timedelta(
            microseconds=round(entry.start_delay_minutes * plan.minute * 1e6)
        )
        firsts[sync_type] = start.timestamp()
        intervals[sync_type] = interval_us / 1e6
        trigger = IntervalTrigger(seconds=interval_us / 1e6, start_date=start, timezone=UTC)
        scheduler.add_job(job, trigger, args=(sync_type,), id=sync_type, name=sync_type)
    scheduler.add_listener(on_submitted, EVENT_JOB_SUBMITTED)
    scheduler.start()
    try:
        await asyncio.sleep(epoch - time.time() + plan.lead_minutes * plan.minute + plan.seconds + GRACE_REAL)
    finally:
        scheduler.shutdown(wait=False)
    return result


def run_apscheduler(plan: Plan) -> Result:
    """The peer, on a fresh asyncio loop in this thread."""
    return asyncio.run(_run_apscheduler(plan))


# --- report -----------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:8.3f}"


def _row(system: str, measure: str, stats: Stats, expected: int | None) -> str:
    runs = f"{stats.runs}/{expected}" if expected is not None else f"{stats.runs}"
    return f"{system:<20} {measure:<32} {runs:>9} {_fmt(stats.p50)} {_fmt(stats.p99)} {_fmt(stats.max)}"


def _counts_ok(plan: Plan, results: Iterable[Result]) -> list[str]:
    problems = []
    total = sum(plan.expected(t) for t in plan.entries)
    for result in results:
        for measure, series in (("fire", result.fire), ("start", result.start)):
            if len(series.samples) != total or series.duplicates:
                missing = sorted(
                    (t, k)
                    for t in plan.entries
                    for k in range(plan.expected(t))
                    if (t, k) not in series.samples
                )
                problems.append(
                    f"{result.name} {measure}: {len(series.samples)}/{total} runs, "
                    f"{series.duplicates} duplicates, missing {missing[:8]}"
                )
    return problems


def report(plan: Plan, ours: Result, theirs: Result) -> bool:
    """Print the table; return True if the goal is met on the like-for-like figure."""
    total = sum(plan.expected(t) for t in plan.entries)
    collided = plan.collisions()
    print(
        f"\nwindow {plan.seconds:g} s real per system, 1 schedule minute = {plan.minute * 1000:g} ms "
        f"(speed {plan.speed:g}), lead {plan.lead_minutes:g} min; expected slots: "
        + ", ".join(f"{t} {plan.expected(t)}" for t in plan.entries)
        + f" = {total}"
    )
    print(
        f"\n{'system':<20} {'measure (lateness vs ideal slot)':<32} {'runs':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    print("-" * 90)
    stats: dict[tuple[str, str], Stats] = {}
    for result, fire_name, start_name in (
        (ours, "fire (timer -> request accepted)", "start (handler entered)"),
        (theirs, "fire (job submitted)", "start (job body, lock held)"),
    ):
        stats[(result.name, "fire")] = fire = Stats.of(result.fire.values())
        stats[(result.name, "start")] = start = Stats.of(result.start.values())
        print(_row(result.name, fire_name, fire, total))
        print(_row(result.name, start_name, start, total))
    print("-" * 90)
    ratio_start = stats[(ours.name, "start")].p99 / stats[(theirs.name, "start")].p99
    ratio_fire = stats[(ours.name, "fire")].p99 / stats[(theirs.name, "fire")].p99
    print(f"p99 ratio ours/theirs: start {ratio_start:.2f}   fire {ratio_fire:.2f}")

    print("\ndiagnostics")
    for result in (ours, theirs):
        alone = Stats.of(result.start.values(lambda key: key not in collided))
        shared = Stats.of(result.start.values(lambda key: key in collided))
        print(_row(result.name, "start, slot shared by no other", alone, None))
        print(_row(result.name, "start, slot shared with another", shared, None))
    for name, values in ours.extra.items():
        print(_row(ours.name, name, Stats.of(values), None))

    problems = _counts_ok(plan, (ours, theirs))
    print("\nrun counts: " + ("all match the expected slots" if not problems else "; ".join(problems)))
    ours_start = stats[(ours.name, "start")].p99
    ours_fire = stats[(ours.name, "fire")].p99
    goal_start = ours_start < GOAL_P99_MS and ratio_start <= GOAL_RATIO
    goal_fire = ours_fire < GOAL_P99_MS and ratio_fire <= GOAL_RATIO
    print(
        f"goal (p99 < {GOAL_P99_MS:g} ms and <= {GOAL_RATIO:g} x APScheduler): "
        f"start {'MET' if goal_start else 'NOT MET'} ({ours_start:.3f} ms, ratio {ratio_start:.2f}); "
        f"fire {'MET' if goal_fire else 'NOT MET'} ({ours_fire:.3f} ms, ratio {ratio_fire:.2f})"
    )
    return goal_start and not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="real seconds per system (20)")
    parser.add_argument(
        "--minute-ms", type=float, default=20.0, help="real milliseconds per schedule minute (20)"
    )
    parser.add_argument(
        "--lead", type=float, default=5.0, help="schedule minutes between setup and the first slot (5)"
    )
    parser.add_argument(
        "--coroutine-handlers",
        action="store_true",
        help="give the service coroutine handlers (run on its asyncio loop) instead of plain ones",
    )
    args = parser.parse_args(argv)
    entries = {
        t: replace(e, start_delay_minutes=e.start_delay_minutes + args.lead)
        for t, e in DEFAULT_SCHEDULE.items()
    }
    plan = Plan(minute=args.minute_ms / 1000.0, lead_minutes=args.lead, seconds=args.seconds, entries=entries)
    print(f"archibald_actors for {args.seconds:g} s ...", flush=True)
    ours = run_archibald(plan, args.coroutine_handlers)
    print(f"APScheduler {apscheduler.__version__} for {args.seconds:g} s ...", flush=True)
    theirs = run_apscheduler(plan)
    return 0 if report(plan, ours, theirs) else 1


if __name__ == "__main__":
    sys.exit(main())
