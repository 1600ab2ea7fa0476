"""The one source of time: ``Clock`` protocol, ``SystemClock``, ``ScaledClock``, ``ManualClock``.

Every timing decision of the service (timer slots, sync timeouts, restart backoff and
``ctx.sleep``) goes through a clock's :meth:`Clock.call_at`, so the whole system can be
driven deterministically by a :class:`ManualClock` in tests and simulations.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

__all__ = [
    "Activity",
    "Clock",
    "ClockNotQuietError",
    "Deadline",
    "ManualClock",
    "ScaledClock",
    "SystemClock",
    "Wakeup",
]

#: Real seconds a dispatcher waits at most before re-reading the clock: a host suspend is
#: noticed within this long of waking.
_SUSPEND_CHECK = 1.0
#: What guards a clock's wake-ups: a lock, or the real clock's condition (also a lock).
_Lock = AbstractContextManager[Any]


class ClockNotQuietError(RuntimeError):
    """A ``ManualClock`` advance found the system still busy after its real-time guard."""


class Activity:
    """Counts work that can make progress without the clock moving.

    A message in flight to an actor, an actor handling one, or a sync handler that is
    computing rather than sleeping on the clock each hold one unit. ``ManualClock``
    waits for the count to reach zero ("the system is quiet") between wake-ups.
    """

    def __init__(self) -> None:
        self._count = 0
        # Every message counts here twice: the plain lock's ``with`` costs less than the
        # condition's, which is only needed to wait and to notify.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def begin(self) -> None:
        """Record one more unit of runnable work."""
        with self._lock:
            self._count += 1

    def end(self) -> None:
        """Record that one unit of work finished or now waits on the clock."""
        with self._lock:
            self._count -= 1
            if self._count <= 0:
                self._cond.notify_all()

    @property
    def count(self) -> int:
        """Units of runnable work right now."""
        return self._count

    def wait_quiet(self, timeout: float) -> bool:
        """Block up to ``timeout`` real seconds for the count to reach zero."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count <= 0, timeout)


class Deadline:
    """A budget of real seconds shared by the steps of one wait, such as a shutdown.

    Real time, not a clock's: how long ``stop(timeout)`` may take does not depend on
    how fast schedule time runs.
    """

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self, floor: float = 0.0) -> float:
        """Real seconds left of the budget, but at least ``floor``."""
        return max(floor, self._end - time.monotonic())


class Wakeup:
    """A callback armed on a clock; :meth:`cancel` disarms it if it has not fired.

    Fired or cancelled, it lets go of its callback: a callback that holds its own wake-up
    (to cancel it) then leaves no reference cycle behind for the garbage collector.
    """

    __slots__ = ("_callback", "_lock", "deadline", "fired_or_cancelled")

    def __init__(self, deadline: float, callback: Callable[[], None], lock: _Lock) -> None:
        self.deadline = deadline
        self._callback: Callable[[], None] | None = callback
        self._lock = lock  # its clock's
        self.fired_or_cancelled = False

    def cancel(self) -> bool:
        """Disarm; return True if the callback will now never run."""
        with self._lock:
            if self.fired_or_cancelled:
                return False
            # No need to wake a dispatcher: it drops the wake-up when it comes to it.
            self.fired_or_cancelled = True
            self._callback = None
            return True

    def _claim(self) -> Callable[[], None] | None:
        """Mark as fired (under the clock's lock); None if it was cancelled."""
        if self.fired_or_cancelled:
            return None
        self.fired_or_cancelled = True
        callback, self._callback = self._callback, None
        return callback


class Clock(Protocol):
    """What the service needs from time."""

    activity: Activity

    def now(self) -> float:
        """Schedule time in seconds (monotonic, counts host suspend)."""
        ...

    def wall(self, at: float | None = None) -> datetime:
        """UTC wall time corresponding to schedule time ``at`` (default: now), for display."""
        ...

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        """Run ``callback`` (quick and non-blocking) once the clock reaches ``deadline``."""
        ...

    def has_due(self) -> bool:
        """True while some wake-up due now has not run yet (or is running right now)."""
        ...

    def real_wall(self) -> datetime:
        """The real UTC time now (a ManualClock's own wall time): what a new epoch records."""
        ...

    def anchor(self, wall: datetime) -> None:
        """Let schedule wall time and real wall time agree at the real instant ``wall`` (the epoch).

        On a clock faster than real time this is what makes several processes (replicas,
        or one process across restarts) agree on the schedule's wall time.
        """
        ...


class _WakeupHeap:
    """Wake-ups ordered by (deadline, arming order); cancelled ones are skipped lazily."""

    def __init__(self, lock: _Lock) -> None:
        self._lock = lock
        self._heap: list[tuple[float, int, Wakeup]] = []
        self._seq = itertools.count()

    def push(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        wakeup = Wakeup(deadline, callback, self._lock)
        heapq.heappush(self._heap, (deadline, next(self._seq), wakeup))
        return wakeup

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].fired_or_cancelled:
            heapq.heappop(self._heap)

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def has_due(self, now: float) -> bool:
        deadline = self.next_deadline()
        return deadline is not None and deadline <= now

    def pop_due(self, now: float) -> Callable[[], None] | None:
        """Claim the earliest wake-up due at ``now``; caller holds the lock."""
        self._drop_cancelled()
        if self._heap and self._heap[0][0] <= now:
            _, _, wakeup = heapq.heappop(self._heap)
            return wakeup._claim()
        return None


class SystemClock:
    """The real clock: ``CLOCK_BOOTTIME`` for scheduling, so time asleep counts.

    Wake-ups are dispatched by one thread that exists only while some wake-up is armed.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self._speed = float(speed)
        self.activity = Activity()
        self._lock = threading.Condition()
        self._wakeups = _WakeupHeap(self._lock)
        self._thread: threading.Thread | None = None
        self._origin_real = self._real()
        self._started_wall = datetime.now(UTC)  # real wall time when schedule time was 0.0
        # Schedule wall time runs `speed` times faster than real wall time and agrees
        # with it at one real instant: the start until anchor() names the epoch.
        self._origin_wall = self._started_wall  # schedule wall time of schedule time 0.0

    @staticmethod
    def _real() -> float:
        clock_id = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
        return time.clock_gettime(clock_id)

    def now(self) -> float:
        """Schedule seconds since this clock was made (scaled by ``speed``)."""
        return (self._real() - self._origin_real) * self._speed

    def wall(self, at: float | None = None) -> datetime:
        """UTC wall time of schedule time ``at``: the start's wall time plus elapsed schedule time."""
        t = self.now() if at is None else at
        return self._origin_wall + timedelta(seconds=t)

    def real_wall(self) -> datetime:
        """The real UTC time now."""
        return datetime.now(UTC)

    def anchor(self, wall: datetime) -> None:
        """Make schedule wall time agree with real wall time at the real instant ``wall``.

        Without it a scaled clock's wall time starts at the real time the process started,
        and replicas started a few seconds apart would be minutes apart in schedule time.
        At speed 1 this changes nothing.
        """
        try:
            self._origin_wall = wall + (self._started_wall - wall) * self._speed
        except OverflowError:  # an epoch so old that scaled time leaves the calendar
            self._origin_wall = self._started_wall

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        """Arm ``callback`` for ``deadline``; it runs on the dispatcher thread."""
        with self._lock:
            earliest = self._wakeups.next_deadline()
            wakeup = self._wakeups.push(deadline, callback)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._dispatch, name="archibald-clock", daemon=True
                )
                self._thread.start()
            elif earliest is None or deadline < earliest:
                # Only a new earliest deadline changes the dispatcher's wait: waking it
                # for every later one would compete with the work a slot just started.
                self._lock.notify_all()
        return wakeup

    def has_due(self) -> bool:
        """True while a due wake-up waits for the dispatcher."""
        with self._lock:
            return self._wakeups.has_due(self.now())

    def join(self, timeout: float) -> bool:
        """Wait for the dispatcher thread to end if nothing is armed; False if it goes on."""
        with self._lock:
            if self._wakeups.next_deadline() is not None:
                return False
            thread = self._thread
            self._lock.notify_all()
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _dispatch(self) -> None:
        # Callbacks run under the (reentrant) lock: whoever asks has_due() sees a wake-up
        # either still pending or already delivered, never half-way in between.
        with self._lock:
            while True:
                deadline = self._wakeups.next_deadline()
                if deadline is None:
                    self._thread = None
                    return
                remaining = (deadline - self.now()) / self._speed
                if remaining > 0:
                    # A plain timed wait, woken early by a new wake-up; capped so that time
                    # that passed while the host was suspended is noticed.
                    self._lock.wait(min(remaining, _SUSPEND_CHECK))
                    continue
                callback = self._wakeups.pop_due(self.now())
                if callback is not None:
                    callback()


class ScaledClock(SystemClock):
    """A real clock on which schedule time runs ``speed`` times faster (demos, black-box tests)."""

    def __init__(self, speed: float) -> None:
        super().__init__(speed=speed)


class ManualClock:
    """A clock that moves only when told: deterministic discrete-event simulation.

    ``advance(seconds)`` runs every wake-up due up to the new time in deadline order and
    returns once the system is quiet: every actor mailbox empty and every handler finished
    or waiting on the clock.
    """

    #: The wall time that schedule time 0.0 stands for.
    DEFAULT_WALL_ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(
        self,
        start: float = 0.0,
        *,
        wall_origin: datetime | None = None,
        quiet_timeout: float = 10.0,
    ) -> None:
        self.activity = Activity()
        self._now = float(start)
        self._lock = threading.RLock()
        self._wakeups = _WakeupHeap(self._lock)
        self._wall_origin = wall_origin or self.DEFAULT_WALL_ORIGIN
        self._quiet_timeout = quiet_timeout
        self._advancing = threading.Lock()

    def now(self) -> float:
        """Schedule seconds; starts at 0.0 unless told otherwise."""
        return self._now  # one attribute read: no lock needed to see a whole float

    def wall(self, at: float | None = None) -> datetime:
        """``wall_origin`` plus schedule time."""
        return self._wall_origin + timedelta(seconds=self.now() if at is None else at)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Wakeup:
        """Arm ``callback``; it runs inside a later :meth:`advance` (or :meth:`run_due`)."""
        with self._lock:
            return self._wakeups.push(deadline, callback)

    def next_deadline(self) -> float | None:
        """The earliest armed deadline, or None."""
        with self._lock:
            return self._wakeups.next_deadline()

    def real_wall(self) -> datetime:
        """Manual time has no real time: its own wall time now."""
        return self.wall()

    def anchor(self, wall: datetime) -> None:
        """Nothing to do: manual time has no real time to agree with."""

    def has_due(self) -> bool:
        """True while a wake-up due at the current time has not run yet."""
        with self._lock:
            return self._wakeups.has_due(self._now)

    def wait_quiet(self) -> None:
        """Block until the system is quiet; raise ``ClockNotQuietError`` after the guard."""
        if not self.activity.wait_quiet(self._quiet_timeout):
            raise ClockNotQuietError(
                f"the system was still busy after {self._quiet_timeout} real seconds "
                f"({self.activity.count} units of work): a handler blocks on something "
                "other than the clock, or actors keep messaging each other"
            )

    def run_due(self) -> None:
        """Run the wake-ups due at the current time, then wait for quiet."""
        self.advance(0.0)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every wake-up due on the way."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._advancing:
            target = self.now() + seconds
            self.wait_quiet()
            while True:
                with self._lock:
                    deadline = self._wakeups.next_deadline()
                    if deadline is None or deadline > target:
                        self._now = max(self._now, target)
                        break
                    self._now = max(self._now, deadline)
                    callback = self._wakeups.pop_due(self._now)
                if callback is not None:
                    callback()
                self.wait_quiet()
            self.wait_quiet()

    def advance_to(self, when: float) -> None:
        """Advance to absolute schedule time ``when`` (no-op if already past it)."""
        self.advance(max(0.0, when - self.now()))
