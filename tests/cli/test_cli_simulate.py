"""``archibald-sync simulate``: the real actors on a ManualClock, and the collisions it reveals."""

from __future__ import annotations

import itertools
import re
import threading

import pytest

from archibald_actors.__main__ import main
from archibald_actors.handlers.demo import DEMO_DURATIONS, LOGIN_SECONDS, SESSION_REUSE_SECONDS
from archibald_actors.simulate import format_report, simulate


def test_cli_prints_the_collision_at_t_plus_10(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--hours", "3"]) == 0
    out = capsys.readouterr().out
    # Timeline: orders starts on its T+10 slot; prices, due at the same instant, waits behind it.
    assert re.search(r"^  T\+10:00 +orders +auto +T\+10:00 +0:00 ", out, re.M)
    prices = re.search(r"^  T\+10:(\d\d) +prices +auto +T\+10:00 +0:(\d\d) .* orders$", out, re.M)
    assert prices is not None, out
    assert int(prices[1]) == int(prices[2]) > 0
    assert re.search(r"^  T\+10:00: prices waited 0:\d\d behind orders$", out, re.M)
    # The summary counts the waits per type.
    assert re.search(r"^  prices +6 +6 +\d+:\d\d +\d+:\d\d$", out, re.M)
    assert re.search(r"^  orders +19 +0 +0:00 +0:00$", out, re.M)
    assert not [t for t in threading.enumerate() if t.name.startswith("archibald-")]


def test_runs_follow_the_slots_priorities_and_durations() -> None:
    sim = simulate(2.0)
    runs = sim.runs
    assert all(a.finished is not None and a.finished <= b.started for a, b in itertools.pairwise(runs))
    first = runs[0]
    assert (first.sync_type, first.slot, first.started) == ("orders", 0.0, 0.0)
    assert first.duration is not None
    low, high = DEMO_DURATIONS["orders"]
    assert LOGIN_SECONDS + low <= first.duration <= LOGIN_SECONDS + high  # the first run logs in
    later = [r for r in runs[1:] if r.duration is not None]
    for run in later:
        low, high = DEMO_DURATIONS[run.sync_type]
        assert SESSION_REUSE_SECONDS + low - 1e-6 <= run.duration <= SESSION_REUSE_SECONDS + high + 1e-6
    customers = [r for r in runs if r.sync_type == "customers"]
    assert [r.slot for r in customers] == [300.0, 2100.0, 3900.0, 5700.0]
    assert all(r.waited == 0 for r in customers)  # T+5, T+35...: never meets another slot
    prices = next(r for r in runs if r.sync_type == "prices")
    assert prices.slot == 600.0 and prices.waited > 0 and prices.behind == ("orders",)


def test_same_seed_same_report_other_seed_other_durations() -> None:
    assert format_report(simulate(1.0, seed=7)) == format_report(simulate(1.0, seed=7))
    assert format_report(simulate(1.0, seed=7)) != format_report(simulate(1.0, seed=8))


@pytest.mark.parametrize("hours", ["0", "-1", "169", "x"])
def test_hours_out_of_range_is_a_usage_error(hours: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--hours", hours])
    assert caught.value.code == 2
