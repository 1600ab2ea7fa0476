"""Slot arithmetic and entry validation (pure functions)."""

from __future__ import annotations

import math

import pytest

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, InvalidValueError, UnknownSyncTypeError
from archibald_actors.schedule import (
    check_sync_type,
    first_slot_after,
    latest_slot_at_or_before,
    slot_index,
    slot_time,
)


def test_default_table_is_the_contract() -> None:
    table = {t: (e.interval_minutes, e.start_delay_minutes, e.priority) for t, e in DEFAULT_SCHEDULE.items()}
    assert table == {
        "orders": (10, 0, 6),
        "customers": (30, 5, 5),
        "prices": (30, 10, 1),
        "invoices": (30, 15, 3),
        "ddt": (45, 20, 4),
        "products": (90, 30, 2),
    }
    assert tuple(DEFAULT_SCHEDULE) == SYNC_TYPES


def test_slots_count_from_the_epoch() -> None:
    prices = DEFAULT_SCHEDULE["prices"]
    assert [slot_time(1000.0, prices, k) for k in range(3)] == [1600.0, 3400.0, 5200.0]
    assert slot_index(1000.0, prices, 1599.999) == -1
    assert slot_index(1000.0, prices, 1600.0) == 0
    assert latest_slot_at_or_before(1000.0, prices, 5199.0) == 3400.0
    assert first_slot_after(1000.0, prices, 3400.0) == 5200.0
    assert first_slot_after(1000.0, prices, 0.0) == 1600.0


def test_slot_index_is_exact_at_awkward_floats() -> None:
    entry = DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=7.3)
    epoch = 123456.789
    for k in range(0, 5000, 37):
        at = slot_time(epoch, entry, k)
        assert slot_index(epoch, entry, at) == k
        assert first_slot_after(epoch, entry, at) > at


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval_minutes": 4.99}, "intervalMinutes"),
        ({"interval_minutes": 180.5}, "intervalMinutes"),
        ({"interval_minutes": math.nan}, "intervalMinutes"),
        ({"interval_minutes": math.inf}, "intervalMinutes"),
        ({"interval_minutes": True}, "intervalMinutes"),
        ({"interval_minutes": "15"}, "intervalMinutes"),
        ({"start_delay_minutes": -1}, "startDelayMinutes"),
        ({"start_delay_minutes": 181}, "startDelayMinutes"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_bad_retune_values_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        DEFAULT_SCHEDULE["orders"].retuned(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert field in str(caught.value)


def test_retune_bounds_are_inclusive() -> None:
    entry = DEFAULT_SCHEDULE["orders"].retuned(interval_minutes=5, start_delay_minutes=180)
    assert (entry.interval, entry.start_delay) == (300.0, 10800.0)
    assert entry.retuned(interval_minutes=180).to_json()["interval"] == 180


def test_unknown_type_is_a_lookup_error_naming_the_field() -> None:
    with pytest.raises(LookupError, match="syncType"):
        check_sync_type("stock")
    with pytest.raises(UnknownSyncTypeError):
        check_sync_type(None)
