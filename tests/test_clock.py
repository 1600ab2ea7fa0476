"""The clocks: ManualClock's discrete events, the real clocks' dispatcher."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta

import pytest

from archibald_actors import ClockNotQuietError, ManualClock, ScaledClock, SystemClock


def test_manual_clock_runs_wakeups_in_deadline_then_arming_order() -> None:
    clock = ManualClock()
    fired: list[tuple[str, float]] = []
    for name, deadline in [("c", 5.0), ("a", 2.0), ("b", 5.0), ("late", 11.0)]:
        clock.call_at(deadline, lambda name=name: fired.append((name, clock.now())))
    cancelled = clock.call_at(3.0, lambda: fired.append(("cancelled", clock.now())))
    assert cancelled.cancel() is True
    clock.advance(10)
    assert fired == [("a", 2.0), ("c", 5.0), ("b", 5.0)]
    assert clock.now() == 10.0
    assert cancelled.cancel() is False


def test_a_fired_or_cancelled_wakeup_lets_go_of_its_callback() -> None:
    """A callback that holds its own wake-up (to cancel it) must not leave a cycle behind."""

    class Callback:
        wakeup: object = None

        def __call__(self) -> None:
            pass

    clock = ManualClock()
    freed: list[str] = []
    gc_was_on = gc.isenabled()
    gc.disable()  # only reference counting may free them
    try:
        for name, cancel in [("fired", False), ("cancelled", True)]:
            callback = Callback()
            callback.wakeup = wakeup = clock.call_at(clock.now() + 1.0, callback)
            weakref.finalize(callback, freed.append, name)
            if cancel:
                wakeup.cancel()
            del callback, wakeup
            clock.advance(1.0)
        assert freed == ["fired", "cancelled"]
    finally:
        if gc_was_on:
            gc.enable()


def test_manual_clock_wall_time_and_negative_advance() -> None:
    clock = ManualClock()
    clock.advance(90)
    assert clock.wall().isoformat() == "2026-01-01T00:01:30+00:00"
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(-1)


def test_manual_clock_raises_when_the_system_never_goes_quiet() -> None:
    clock = ManualClock(quiet_timeout=0.2)
    clock.activity.begin()  # something runnable that never finishes
    with pytest.raises(ClockNotQuietError, match="still busy"):
        clock.advance(1)
    clock.activity.end()
    clock.advance(1)
    assert clock.now() == 1.0


def test_system_clock_fires_and_its_dispatcher_ends_when_nothing_is_armed() -> None:
    clock = SystemClock()
    fired = threading.Event()
    t0 = clock.now()
    clock.call_at(t0 + 0.02, fired.set)
    assert fired.wait(5)
    assert clock.now() >= t0 + 0.02
    assert clock.join(5)
    assert not [t for t in threading.enumerate() if t.name == "archibald-clock"]


def test_system_clock_counts_time_asleep() -> None:
    # Scheduling reads CLOCK_BOOTTIME (Linux), which keeps counting while suspended.
    clock = SystemClock()
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    now = clock.now()
    after = time.clock_gettime(time.CLOCK_BOOTTIME)
    assert 0 <= now <= after - before + 1.0


def test_scaled_clock_runs_faster() -> None:
    clock = ScaledClock(600)
    fired = threading.Event()
    real_start = time.monotonic()
    clock.call_at(clock.now() + 60, fired.set)  # one schedule minute = 0.1 real seconds
    assert fired.wait(5)
    assert time.monotonic() - real_start >= 0.09
    clock.join(5)


def test_cancelled_wakeups_never_fire_on_the_real_clock() -> None:
    clock = SystemClock()
    fired = threading.Event()
    marker = threading.Event()
    handle = clock.call_at(clock.now() + 0.01, fired.set)
    handle.cancel()
    clock.call_at(clock.now() + 0.03, marker.set)
    assert marker.wait(5)
    assert not fired.is_set()
    clock.join(5)


@pytest.mark.parametrize("speed", [0, -1])
def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SystemClock(speed)


def test_scaled_clocks_anchored_at_one_epoch_agree_on_wall_time() -> None:
    epoch = datetime.now(UTC) - timedelta(seconds=2)
    first, second = ScaledClock(600), ScaledClock(600)
    first.anchor(epoch)
    second.anchor(epoch)
    second.anchor(epoch)  # idempotent
    # Two seconds of real time since the epoch are twenty schedule minutes on both.
    for clock in (first, second):
        ahead = (clock.wall() - epoch).total_seconds()
        assert 1190 <= ahead <= 1300
    assert abs((first.wall() - second.wall()).total_seconds()) < 30  # a few real ms apart, times 600
    plain = SystemClock()
    before = plain.wall()
    plain.anchor(epoch)
    assert abs((plain.wall() - before).total_seconds()) < 1  # speed 1: nothing changes


def test_has_due_is_true_from_a_wakeups_instant_until_it_has_run() -> None:
    clock = ManualClock()
    seen: list[bool] = []
    clock.call_at(5.0, lambda: seen.append(clock.has_due()))
    clock.call_at(5.0, lambda: seen.append(clock.has_due()))
    assert not clock.has_due()  # armed, not due yet
    clock.advance(4.0)
    assert not clock.has_due()
    clock.advance(1.0)
    # The first callback of the instant sees the second still due; the second sees none.
    assert seen == [True, False]
    assert not clock.has_due()


def test_on_a_real_clock_has_due_covers_a_wakeup_until_its_callback_returned() -> None:
    clock = SystemClock()
    in_callback, release, seen = threading.Event(), threading.Event(), threading.Event()

    def callback() -> None:
        in_callback.set()
        release.wait(5.0)

    clock.call_at(clock.now(), callback)
    assert in_callback.wait(5.0)
    # has_due() waits for the running callback: asked on another thread, it cannot answer
    # "nothing due" while the callback has not finished what it had to do.
    asker = threading.Thread(target=lambda: clock.has_due() or seen.set(), name="t-asker")
    asker.start()
    assert not seen.wait(0.05)
    release.set()
    asker.join(5.0)
    assert seen.is_set()
    assert clock.join(5.0)
