"""Property tests: the slot arithmetic, and the real timers against a brute-force slot rule.

The reference below is written from the slot rule alone (docs/design.md), in exact rational arithmetic:
slots are ``E + d + k*i``; whenever a timer is armed (start, retune, resume) it fires once
for the latest slot <= now if that is newer than the slot it served (the slots in between
are ``missed``), then it fires at every later slot of its grid until the next arming.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, SyncService
from archibald_actors.domain import iso
from archibald_actors.schedule import (
    ScheduleEntry,
    first_slot_after,
    latest_slot_at_or_before,
    slot_index,
    slot_time,
)

MIN = 60.0
HOUR = 3600.0
HORIZON = 72 * HOUR

PURE = settings(max_examples=400, deadline=None, database=None)
SERVICE = settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- the slot arithmetic -----------------------------------------------------------

epochs = st.one_of(
    st.just(0.0),
    st.floats(min_value=-1e6, max_value=1e10, allow_nan=False, allow_infinity=False),
)
# Any float in the accepted range, awkward ones (7.1 min is not a whole number of binary
# seconds) included.
minutes_interval = st.floats(min_value=5.0, max_value=180.0, allow_nan=False)
minutes_delay = st.floats(min_value=0.0, max_value=180.0, allow_nan=False)


@st.composite
def entries(draw: st.DrawFn) -> ScheduleEntry:
    return ScheduleEntry("orders", draw(minutes_interval), draw(minutes_delay), 6)


@st.composite
def times(draw: st.DrawFn, epoch: float, entry: ScheduleEntry) -> float:
    """A time near the grid: anywhere, exactly on a slot, or one ulp either side of one."""
    choice = draw(st.sampled_from(["anywhere", "on", "below", "above"]))
    if choice == "anywhere":
        return epoch + draw(st.floats(min_value=-1e5, max_value=1e8, allow_nan=False))
    k = draw(st.integers(min_value=0, max_value=300_000))
    slot = slot_time(epoch, entry, k)
    if choice == "below":
        return math.nextafter(slot, -math.inf)
    if choice == "above":
        return math.nextafter(slot, math.inf)
    return slot


@PURE
@given(data=st.data(), epoch=epochs, entry=entries())
def test_slot_index_brackets_the_time_between_two_slots(
    data: st.DataObject, epoch: float, entry: ScheduleEntry
) -> None:
    at = data.draw(times(epoch, entry))
    k = slot_index(epoch, entry, at)
    assert k >= -1
    if k == -1:
        assert slot_time(epoch, entry, 0) > at
        assert latest_slot_at_or_before(epoch, entry, at) is None
    else:
        assert slot_time(epoch, entry, k) <= at < slot_time(epoch, entry, k + 1)
        assert latest_slot_at_or_before(epoch, entry, at) == slot_time(epoch, entry, k)
    after = first_slot_after(epoch, entry, at)
    assert after > at
    assert after == slot_time(epoch, entry, k + 1)
    # The next slot is itself the latest slot at or before it.
    assert latest_slot_at_or_before(epoch, entry, after) == after
    assert slot_index(epoch, entry, after) == k + 1


@PURE
@given(epoch=epochs, entry=entries(), k=st.integers(min_value=0, max_value=1_000_000))
def test_every_slot_maps_back_to_its_own_index(epoch: float, entry: ScheduleEntry, k: int) -> None:
    slot = slot_time(epoch, entry, k)
    assert slot_time(epoch, entry, k + 1) > slot  # slots strictly increase, even far out
    assert slot_index(epoch, entry, slot) == k
    assert slot_index(epoch, entry, math.nextafter(slot, -math.inf)) == k - 1
    assert first_slot_after(epoch, entry, math.nextafter(slot, -math.inf)) == slot
    assert first_slot_after(epoch, entry, slot) == slot_time(epoch, entry, k + 1)


@PURE
@given(data=st.data(), epoch=epochs, entry=entries())
def test_slot_index_is_monotonic(data: st.DataObject, epoch: float, entry: ScheduleEntry) -> None:
    a, b = sorted([data.draw(times(epoch, entry)), data.draw(times(epoch, entry))])
    assert slot_index(epoch, entry, a) <= slot_index(epoch, entry, b)
    assert first_slot_after(epoch, entry, a) <= first_slot_after(epoch, entry, b)


@PURE
@given(
    epoch=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    entry=entries(),
    offset=st.floats(min_value=-HOUR, max_value=30 * 24 * HOUR, allow_nan=False),
)
def test_slot_index_matches_a_scan_of_the_grid(epoch: float, entry: ScheduleEntry, offset: float) -> None:
    at = epoch + offset
    k = -1
    while epoch + entry.start_delay + (k + 1) * entry.interval <= at:  # the contract's formula
        k += 1
    assert slot_index(epoch, entry, at) == k


# --- the catch-up rule on the real service -----------------------------------------


@dataclass(frozen=True)
class Config:
    """One type's timing, in minutes (multiples of 0.5: exact in binary seconds)."""

    interval: Fraction
    delay: Fraction
    enabled: bool


def _reference(
    epoch: Fraction, changes: list[tuple[Fraction, Config]], end: Fraction
) -> tuple[list[tuple[Fraction, Fraction]], int]:
    """(slot, fire time) of every request the slot rule makes, and the slots missed."""
    fires: list[tuple[Fraction, Fraction]] = []
    missed = 0
    served: Fraction | None = None
    for j, (armed_at, cfg) in enumerate(changes):
        until = changes[j + 1][0] if j + 1 < len(changes) else end
        if not cfg.enabled:
            continue
        grid: list[Fraction] = []
        k = 0
        while (slot := epoch + cfg.delay * 60 + k * cfg.interval * 60) <= until:
            grid.append(slot)
            k += 1
        due = [s for s in grid if s <= armed_at]
        if due and (served is None or served < due[-1]):
            missed += sum(1 for s in due[:-1] if served is None or s > served)
            fires.append((due[-1], armed_at))
            served = due[-1]
        for slot in grid:
            if slot > armed_at:
                fires.append((slot, slot))
                served = slot
    return fires, missed


def _next_slot(epoch: Fraction, cfg: Config, now: Fraction) -> Fraction | None:
    if not cfg.enabled:
        return None
    k = 0
    while (slot := epoch + cfg.delay * 60 + k * cfg.interval * 60) <= now:
        k += 1
    return slot


def _minutes(low: int, high: int) -> st.SearchStrategy[Fraction]:
    return st.integers(min_value=low * 2, max_value=high * 2).map(lambda n: Fraction(n, 2))


def _awkward_minutes(low: float, high: float) -> st.SearchStrategy[Fraction]:
    """Any float in range (7.1 min is no whole number of binary seconds), as its exact value."""
    return st.floats(min_value=low, max_value=high, allow_nan=False).map(Fraction)


def _retunes(minutes: Callable[[int, int], st.SearchStrategy[Fraction]]) -> st.SearchStrategy[dict[str, Any]]:
    """A retune changes any non-empty subset of interval, start delay and enabled."""
    return st.fixed_dictionaries(
        {},
        optional={
            "interval_minutes": minutes(5, 180),
            "start_delay_minutes": minutes(0, 180),
            "enabled": st.booleans(),
        },
    ).filter(bool)


# Clock jumps: on the 30 s lattice every exact slot lies on (so arming lands exactly on
# slots), awkward floats, and a few long jumps of hours to a day.
lattice_jumps = st.integers(min_value=1, max_value=240).map(lambda n: n * 30.0)
float_jumps = st.floats(min_value=0.001, max_value=2 * HOUR, allow_nan=False)
long_jumps = st.integers(min_value=3, max_value=24).map(lambda h: h * HOUR)


@st.composite
def scenarios(draw: st.DrawFn, *, awkward: bool = False) -> dict[str, Any]:
    """A table of 1-3 types, then steps of (clock jump, optional retune of one type).

    Exact scenarios use half-minute timings and dyadic epochs: every sum stays exact, so
    float and rational slots agree bit for bit and boundary cases (a retune at the very
    instant of a slot) are hit on purpose. Awkward ones use any float timing and epoch.
    """
    minutes = _awkward_minutes if awkward else _minutes
    configs = st.builds(Config, interval=minutes(5, 180), delay=minutes(0, 180), enabled=st.booleans())
    types = draw(st.lists(st.sampled_from(SYNC_TYPES), min_size=1, max_size=3, unique=True))
    table = {t: draw(configs) for t in types}
    jumps = (
        st.one_of(float_jumps, long_jumps) if awkward else st.one_of(lattice_jumps, float_jumps, long_jumps)
    )
    steps = draw(
        st.lists(
            st.tuples(jumps, st.none() | st.tuples(st.sampled_from(types), _retunes(minutes))),
            min_size=1,
            max_size=12,
        )
    )
    # At most three virtual days per example keeps the run time modest.
    total, kept = 0.0, []
    for jump, retune in steps:
        if total + jump > HORIZON:
            break
        total += jump
        kept.append((jump, retune))
    if awkward:
        epoch = draw(st.floats(min_value=0, max_value=1e7, allow_nan=False))
    else:
        epoch = draw(st.integers(min_value=0, max_value=10**7)) + draw(st.sampled_from([0, 0.25, 0.5, 0.125]))
    return {"epoch": float(epoch), "table": table, "steps": kept}


@dataclass
class Fired:
    scheduled_at: float | None
    at: float
    trigger: str


def _recording_handlers(clock: ManualClock, fired: dict[str, list[Fired]]) -> dict[str, Callable[[Any], Any]]:
    def make(sync_type: str) -> Callable[[Any], Any]:
        async def handle(ctx: Any) -> None:  # instant: it starts at the moment it was requested
            fired[sync_type].append(Fired(ctx.scheduled_at, clock.now(), ctx.trigger))

        return handle

    return {t: make(t) for t in SYNC_TYPES}


def _assume_clear_of_slot_edges(
    epoch: float, changes: dict[str, list[tuple[Fraction, Config]]], now: float
) -> None:
    """Discard an example whose clock stops within float rounding of a slot.

    There the service (float slots) and the reference (exact fractions) may both be right
    and still disagree about whether the slot is due yet; the exact variant covers ties.
    """
    for history in changes.values():
        config = history[-1][1]
        offset = (Fraction(now) - Fraction(epoch)) / 60 - config.delay
        nearest = round(offset / config.interval) * config.interval
        edge = abs(offset - nearest) * 60
        assume(edge == 0 or edge > Fraction(1, 10**6))


def _latest_slot(epoch: float, config: Config, now: float) -> Fraction | None:
    offset = (Fraction(now) - Fraction(epoch)) / 60 - config.delay
    if offset < 0:
        return None
    return Fraction(epoch) + (config.delay + (offset // config.interval) * config.interval) * 60


def _assume_distinct_slots(epoch: float, before: Config, after: Config, now: float) -> None:
    """Discard a retune that moves the latest slot by less than a millisecond.

    Slots are claimed to the millisecond (``Store.claim_slot``): two slots of a type that
    close are one slot to the service, two to the exact reference.
    """
    old, new = _latest_slot(epoch, before, now), _latest_slot(epoch, after, now)
    if old is not None and new is not None:
        assume(old == new or abs(old - new) >= Fraction(1, 1000))


def run_scenario(scenario: dict[str, Any], *, exact: bool) -> None:
    """Drive the real service through ``scenario`` and compare with the reference."""
    epoch = scenario["epoch"]
    table: dict[str, Config] = scenario["table"]
    clock = ManualClock(start=epoch)
    fired: dict[str, list[Fired]] = {t: [] for t in table}
    schedule = {
        t: ScheduleEntry(
            t, float(c.interval), float(c.delay), DEFAULT_SCHEDULE[t].priority, enabled=c.enabled
        )
        for t, c in table.items()
    }
    service = SyncService(_recording_handlers(clock, fired), clock=clock, schedule=schedule)
    changes = {t: [(Fraction(epoch), c)] for t, c in table.items()}
    service.start()
    try:
        assert service.epoch == epoch
        clock.run_due()
        for jump, retune in scenario["steps"]:
            clock.advance(jump)
            if not exact:
                _assume_clear_of_slot_edges(epoch, changes, clock.now())
            if retune is None:
                continue
            sync_type, change = retune
            before = changes[sync_type][-1][1]
            after = Config(
                change.get("interval_minutes", before.interval),
                change.get("start_delay_minutes", before.delay),
                change.get("enabled", before.enabled),
            )
            now = clock.now()
            service.retune(
                sync_type, **{k: (v if isinstance(v, bool) else float(v)) for k, v in change.items()}
            )
            changes[sync_type].append((Fraction(now), after))
            if not exact:
                _assume_clear_of_slot_edges(epoch, changes, now)
                _assume_distinct_slots(epoch, before, after, now)
        clock.run_due()
        end = Fraction(clock.now())
        status = service.status()
        plan = service.schedule()
    finally:
        service.stop(timeout=5)
    for sync_type in table:
        expected, missed = _reference(Fraction(epoch), changes[sync_type], end)
        actual = [(f.scheduled_at, f.at) for f in fired[sync_type]]
        wanted = [(float(s), float(at)) for s, at in expected]
        if exact:
            assert actual == wanted, (sync_type, changes[sync_type])
        else:
            assert len(actual) == len(wanted), (sync_type, actual, wanted, changes[sync_type])
            for (slot, at), (want_slot, want_at) in zip(actual, wanted, strict=True):
                assert slot is not None
                assert math.isclose(slot, want_slot, abs_tol=1e-6), (sync_type, actual, wanted)
                assert math.isclose(at, want_at, abs_tol=1e-6), (sync_type, actual, wanted)
        assert {f.trigger for f in fired[sync_type]} <= {"auto"}
        assert status["types"][sync_type]["missed"] == missed, sync_type
        nxt = _next_slot(Fraction(epoch), changes[sync_type][-1][1], end)
        if exact:
            expected_next = None if nxt is None else iso(clock.wall(float(nxt)))
            assert plan[sync_type]["nextRunAt"] == expected_next, sync_type
        else:
            assert (plan[sync_type]["nextRunAt"] is None) == (nxt is None), sync_type


@SERVICE
@given(scenario=scenarios())
def test_timers_fire_exactly_what_the_slot_rule_says(scenario: dict[str, Any]) -> None:
    run_scenario(scenario, exact=True)


@SERVICE
@given(scenario=scenarios(awkward=True))
def test_timers_follow_the_slot_rule_with_awkward_float_timing(scenario: dict[str, Any]) -> None:
    run_scenario(scenario, exact=False)
