"""Timer lateness on the real clock: archibald_actors vs APScheduler 3.11, in interleaved rounds.

What it measures
----------------
The six sync types of ``DEFAULT_SCHEDULE`` run time-compressed on the real clock (by
default 1 schedule minute = 20 ms, i.e. ``ScaledClock(3000)``) with handlers that only
record the time and return, so lateness measures the scheduler and not the work. For
every run it records how late it was against its ideal slot ``E + d + k*i``, in real
milliseconds:

* ``fire``  - archibald_actors: the orchestrator accepted the timer's request (the
  ``queue.changed`` event); APScheduler: the job was submitted to its executor
  (``EVENT_JOB_SUBMITTED``).
* ``start`` - archibald_actors: the sync handler was entered (a plain handler, on a
  thread of its own; ``--coroutine-handlers`` for the service's asyncio loop);
  APScheduler: the job body holds the serialization lock. The like-for-like figure.

APScheduler runs an ``AsyncIOScheduler`` configured the same way: six ``IntervalTrigger``
jobs with the same (scaled) intervals and staggered start dates, coroutine job bodies
serialized by one ``asyncio.Lock``; ``coalesce=False`` and ``misfire_grace_time=None`` so
no run is dropped silently. With ``--peer threads`` it runs as a ``BackgroundScheduler``
instead: plain job bodies on its thread pool, serialized by one ``threading.Lock``, the
setup APScheduler's users pick for blocking work like an ERP sync. Run counts of both
sides are checked against the slots of the window. Both start ``--lead`` schedule minutes
after setup, so every measured run, the first included, goes through the steady-state
timer path.

The two systems alternate, ``--rounds`` times each (who goes first alternates too), so a
noisy stretch of the machine hits both; the summary is the median over rounds of each
figure and of the ratio ours/theirs (below 1: ours is less late). It then splits ``start`` by
a run's place in its instant: the first run of an instant, and the runs behind another run of
the same instant (types whose slots meet share an instant, and only one runs at a time). The
first is how soon the scheduler reaches a handler; the second adds the turnaround from one
run's end to the next one's start.

Run (from the repo root)::

    .venv/bin/python bench/timer_lateness.py                         # 3 rounds of 20 s per system
    .venv/bin/python bench/timer_lateness.py --rounds 1 --seconds 5  # quick look
    .venv/bin/python bench/timer_lateness.py --peer threads          # APScheduler on threads
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import apscheduler
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from archibald_actors import DEFAULT_SCHEDULE, ScaledClock, ScheduleEntry, SyncContext, SyncService
from archibald_actors.schedule import latest_slot_at_or_before

#: Real seconds after the measured window before stopping, so its last slots complete.
GRACE_REAL = 1.0
MEASURES = ("fire", "start")
#: Width of the system column in the printed tables.
NAME = 28


@dataclass(frozen=True)
class Plan:
    """The compressed schedule both systems follow."""

    minute: float  # real seconds per schedule minute
    lead_minutes: float
    seconds: float  # real seconds of the measured window
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

    @property
    def total(self) -> int:
        return sum(self.expected(t) for t in self.entries)


@dataclass
class Series:
    """Lateness samples (real seconds) keyed by (type, slot index); one per slot."""

    plan: Plan
    samples: dict[tuple[str, int], float] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, sync_type: str, k: int, lateness: float) -> None:
        if not 0 <= k < self.plan.expected(sync_type):
            return  # a slot outside the window
        if (sync_type, k) in self.samples:
            self.duplicates += 1
        else:
            self.samples[(sync_type, k)] = lateness

    def percentile_ms(self, q: float) -> float:
        """Linear-interpolated percentile ``q`` (0..100) in milliseconds; NaN if empty."""
        return percentile_ms(self.samples.values(), q)

    def by_place(self) -> dict[str, list[float]]:
        """The samples split by place in their instant: "first", or "behind" another run of it.

        Two types whose slots meet share an instant; only one of their runs can go first.
        """
        instants: dict[float, list[float]] = {}
        for (sync_type, k), lateness in self.samples.items():
            entry = self.plan.entries[sync_type]
            minute = round(entry.start_delay_minutes + k * entry.interval_minutes, 6)
            instants.setdefault(minute, []).append(lateness)
        places: dict[str, list[float]] = {"first": [], "behind": []}
        for values in instants.values():
            first, *behind = sorted(values)
            places["first"].append(first)
            places["behind"].extend(behind)
        return places

    def problem(self, name: str) -> str | None:
        if len(self.samples) == self.plan.total and not self.duplicates:
            return None
        return f"{name}: {len(self.samples)}/{self.plan.total} runs, {self.duplicates} duplicates"


@dataclass
class Result:
    """What one system produced in one round."""

    name: str
    fire: Series
    start: Series

    def series(self, measure: str) -> Series:
        return self.fire if measure == "fire" else self.start


# --- archibald_actors -------------------------------------------------------------


def run_archibald(plan: Plan, coroutine_handlers: bool) -> Result:
    """Run the service for the window; lateness from the event bus and the handlers."""
    clock = ScaledClock(plan.speed)
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
    service = SyncService(handlers=dict.fromkeys(plan.entries, handler), clock=clock, schedule=plan.entries)

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "queue.changed" and event["trigger"] == "auto":
            fired.append((event["syncType"], clock.now()))

    service.events.subscribe(on_event)
    service.start()
    try:
        time.sleep(plan.lead_minutes * plan.minute + plan.seconds + GRACE_REAL)
    finally:
        service.stop()
    assert service.epoch is not None
    epoch = service.epoch

    def index(sync_type: str, slot: float) -> int:
        entry = plan.entries[sync_type]
        return round((slot - epoch - entry.start_delay) / entry.interval)

    result = Result("archibald_actors", Series(plan), Series(plan))
    for sync_type, slot, now in started:
        result.start.add(sync_type, index(sync_type, slot), (now - slot) / plan.speed)
    for sync_type, now in fired:
        slot = latest_slot_at_or_before(epoch, plan.entries[sync_type], now)
        if slot is not None:
            result.fire.add(sync_type, index(sync_type, slot), (now - slot) / plan.speed)
    return result


# --- APScheduler ------------------------------------------------------------------


class _Peer:
    """APScheduler's side of a round: its jobs, the lateness they record, and the window."""

    def __init__(self, plan: Plan, name: str) -> None:
        self.plan = plan
        self.result = Result(name, Series(plan), Series(plan))
        self.epoch = time.time()  # start delays already include the lead
        self._firsts: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    def _index(self, sync_type: str, at: float) -> int:
        return round((at - self._firsts[sync_type]) / self._intervals[sync_type])

    def started(self, sync_type: str) -> None:
        """Record the start of a job body (called holding the serialization lock)."""
        now = time.time()
        k = self._index(sync_type, now)
        self.result.start.add(sync_type, k, now - (self._firsts[sync_type] + k * self._intervals[sync_type]))

    def _submitted(self, event: JobSubmissionEvent) -> None:
        now = time.time()
        for run_time in event.scheduled_run_times:
            ideal = run_time.timestamp()
            self.result.fire.add(event.job_id, self._index(event.job_id, ideal), now - ideal)

    def scheduler(self, kind: type[BaseScheduler], job: Callable[[str], Any]) -> BaseScheduler:
        """A ``kind`` scheduler running ``job`` for each type on the plan's scaled slots."""
        # No run dropped or merged silently; every job may be waiting for the lock at once.
        defaults = {"coalesce": False, "misfire_grace_time": None, "max_instances": len(self.plan.entries)}
        scheduler = kind(timezone=UTC, job_defaults=defaults)
        for sync_type, entry in self.plan.entries.items():
            interval_us = round(entry.interval_minutes * self.plan.minute * 1e6)
            start = datetime.fromtimestamp(self.epoch, UTC) + timedelta(
                microseconds=round(entry.start_delay_minutes * self.plan.minute * 1e6)
            )
            self._firsts[sync_type] = start.timestamp()
            self._intervals[sync_type] = interval_us / 1e6
            trigger = IntervalTrigger(seconds=interval_us / 1e6, start_date=start, timezone=UTC)
            scheduler.add_job(job, trigger, args=(sync_type,), id=sync_type, name=sync_type)
        scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        # shutdown(wait=False) cancels a job due after the window: not an error worth a traceback.
        logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
        return scheduler

    def seconds_left(self) -> float:
        """Real seconds until the end of the window and its grace."""
        plan = self.plan
        return self.epoch - time.time() + plan.lead_minutes * plan.minute + plan.seconds + GRACE_REAL


async def _run_apscheduler(plan: Plan) -> Result:
    peer = _Peer(plan, f"apscheduler {apscheduler.__version__}")
    lock = asyncio.Lock()

    async def job(sync_type: str) -> None:
        async with lock:
            peer.started(sync_type)

    scheduler = peer.scheduler(AsyncIOScheduler, job)
    scheduler.start()
    try:
        await asyncio.sleep(peer.seconds_left())
    finally:
        scheduler.shutdown(wait=False)
    return peer.result


def run_apscheduler(plan: Plan) -> Result:
    """The peer, on a fresh asyncio loop in this thread."""
    return asyncio.run(_run_apscheduler(plan))


def run_apscheduler_threads(plan: Plan) -> Result:
    """The peer for blocking jobs: a ``BackgroundScheduler`` and its thread pool."""
    peer = _Peer(plan, f"apscheduler {apscheduler.__version__} threads")
    lock = threading.Lock()

    def job(sync_type: str) -> None:
        with lock:
            peer.started(sync_type)

    scheduler = peer.scheduler(BackgroundScheduler, job)
    scheduler.start()
    try:
        time.sleep(peer.seconds_left())
    finally:
        scheduler.shutdown(wait=False)
    return peer.result


# --- report -----------------------------------------------------------------------


def percentile_ms(samples: Iterable[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0..100) of ``samples`` (seconds), in ms; NaN if empty."""
    values = sorted(v * 1000.0 for v in samples)
    if not values:
        return math.nan
    pos = (len(values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def figures(result: Result) -> dict[tuple[str, str], float]:
    """(measure, "p50" | "p99") -> milliseconds."""
    return {
        (measure, q): result.series(measure).percentile_ms(50 if q == "p50" else 99)
        for measure in MEASURES
        for q in ("p50", "p99")
    }


def print_round(n: int, ours: Result, theirs: Result) -> dict[tuple[str, str], float]:
    """One round's table; returns its ratios ours/theirs."""
    mine, peer = figures(ours), figures(theirs)
    ratios = {key: mine[key] / peer[key] for key in mine}
    for result, values in ((ours, mine), (theirs, peer)):
        cells = "   ".join(f"{m} {values[(m, 'p50')]:6.3f} / {values[(m, 'p99')]:6.3f}" for m in MEASURES)
        print(f"{n:<6} {result.name:<{NAME}} {cells}")
    cells = "   ".join(f"{m} {ratios[(m, 'p50')]:6.2f} / {ratios[(m, 'p99')]:6.2f}" for m in MEASURES)
    print(f"{'':<6} {'ratio ours/theirs':<{NAME}} {cells}")
    for result in (ours, theirs):
        for measure in MEASURES:
            problem = result.series(measure).problem(f"{result.name} {measure}")
            if problem:
                print(f"{'':<6} run counts: {problem}")
    return ratios


def print_summary(rounds: list[tuple[Result, Result]], ratios: list[dict[tuple[str, str], float]]) -> bool:
    """Medians over rounds; True if ours is at least as good at p50 and p99 of both measures."""
    print("\nmedian over rounds (ms; the spread over rounds in brackets)")
    for side, name in ((0, rounds[0][0].name), (1, rounds[0][1].name)):
        per_round = [figures(r[side]) for r in rounds]
        cells = []
        for key in [(m, q) for m in MEASURES for q in ("p50", "p99")]:
            values = [f[key] for f in per_round]
            spread = f"[{min(values):.3f}-{max(values):.3f}]"
            cells.append(f"{key[0]} {key[1]} {statistics.median(values):6.3f} {spread}")
        print(f"  {name:<{NAME}} " + "   ".join(cells))
    cells = []
    met = True
    for key in [(m, q) for m in MEASURES for q in ("p50", "p99")]:
        values = [r[key] for r in ratios]
        median = statistics.median(values)
        met = met and median <= 1.0
        cells.append(f"{key[0]} {key[1]} {median:6.2f} [{min(values):.2f}-{max(values):.2f}]")
    print(f"  {'ratio ours/theirs':<{NAME}} " + "   ".join(cells))
    print_start_by_place(rounds)
    counts_ok = all(r.series(m).problem("") is None for pair in rounds for r in pair for m in MEASURES)
    print("run counts: " + ("every slot ran once, no duplicates" if counts_ok else "MISMATCH (see rounds)"))
    print(f"at least as good as APScheduler at p50 and p99 (median ratios <= 1): {'yes' if met else 'NO'}")
    return met and counts_ok


def print_start_by_place(rounds: list[tuple[Result, Result]]) -> None:
    """Start p50 / p99 of each instant's first run and of the runs behind another; medians over rounds."""
    print("start by place in its instant (medians over rounds, ms):")
    split = [[pair[side].start.by_place() for pair in rounds] for side in (0, 1)]  # [side][round]
    for place in ("first", "behind"):
        (ours50, ours99), (theirs50, theirs99) = (
            [statistics.median(percentile_ms(places[place], q) for places in side) for q in (50, 99)]
            for side in split
        )
        count = len(split[0][0][place])
        print(
            f"  {place:<7} ({count:>4} runs a round)   ours {ours50:6.3f} / {ours99:6.3f}   "
            f"theirs {theirs50:6.3f} / {theirs99:6.3f}   "
            f"ratio {ours50 / theirs50:5.2f} / {ours99 / theirs99:5.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="real seconds per system and round (20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running both systems (3)")
    parser.add_argument("--minute-ms", type=float, default=20.0, help="real ms per schedule minute (20)")
    parser.add_argument("--lead", type=float, default=5.0, help="schedule minutes before the first slot (5)")
    parser.add_argument(
        "--coroutine-handlers",
        action="store_true",
        help="give the service coroutine handlers (run on its asyncio loop) instead of plain ones",
    )
    parser.add_argument(
        "--peer",
        choices=("asyncio", "threads"),
        default="asyncio",
        help="APScheduler as an AsyncIOScheduler with coroutine jobs (default) or a "
        "BackgroundScheduler with plain jobs on its thread pool",
    )
    args = parser.parse_args(argv)
    run_peer = run_apscheduler if args.peer == "asyncio" else run_apscheduler_threads
    entries = {
        t: replace(e, start_delay_minutes=e.start_delay_minutes + args.lead)
        for t, e in DEFAULT_SCHEDULE.items()
    }
    plan = Plan(minute=args.minute_ms / 1000.0, lead_minutes=args.lead, seconds=args.seconds, entries=entries)
    print(
        f"{args.rounds} rounds of {args.seconds:g} s per system, 1 schedule minute = {args.minute_ms:g} ms "
        f"(speed {plan.speed:g}), {plan.total} slots per round; lateness vs the ideal slot, real ms\n"
    )
    print(f"{'round':<6} {'system':<{NAME}} {'fire p50 / p99':<22}   {'start p50 / p99'}")
    rounds: list[tuple[Result, Result]] = []
    ratios = []
    for n in range(1, args.rounds + 1):
        if n % 2:
            ours = run_archibald(plan, args.coroutine_handlers)
            theirs = run_peer(plan)
        else:
            theirs = run_peer(plan)
            ours = run_archibald(plan, args.coroutine_handlers)
        rounds.append((ours, theirs))
        ratios.append(print_round(n, ours, theirs))
    return 0 if print_summary(rounds, ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
