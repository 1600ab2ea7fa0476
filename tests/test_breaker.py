"""Circuit breakers per (type, lane) and ERP-wide: opening, skips, the half-open trial, resets, views."""

from __future__ import annotations

import json
import math
import sys

import pytest

from archibald_actors.breaker import (
    BREAKER_OPEN_REASON,
    DEFAULT_BREAKERS,
    Admission,
    BreakerChanged,
    BreakerPolicy,
    Breakers,
)
from archibald_actors.domain import Outcome
from archibald_actors.errors import InvalidValueError

COOLDOWN = 7200.0


def fail(
    breakers: Breakers, times: int, sync_type: str = "orders", agent: str | None = "a1", t: float = 0.0
) -> list[BreakerChanged]:
    """Record ``times`` failed runs of one pair from ``t``, a second apart; returns every change."""
    changes: list[BreakerChanged] = []
    for i in range(times):
        changes += breakers.record(sync_type, agent, "failed", t + i)
    return changes


def open_pair(breakers: Breakers, sync_type: str = "orders", agent: str | None = "a1") -> float:
    """Open one pair at t=0..2 (three failures); returns when its cooldown ends."""
    fail(breakers, 3, sync_type, agent)
    return 2.0 + COOLDOWN


def test_defaults() -> None:
    assert BreakerPolicy(3, 7200.0, 5, 600.0, 900.0) == DEFAULT_BREAKERS


def test_a_closed_pair_runs() -> None:
    assert Breakers().admit("orders", "a1", 0.0) == Admission("run")


def test_three_consecutive_failures_open_the_pair_and_it_skips_with_the_reason() -> None:
    breakers = Breakers()
    assert fail(breakers, 2) == []
    assert breakers.admit("orders", "a1", 2.0).verdict == "run"
    changes = breakers.record("orders", "a1", "timeout", 2.0)  # a timeout counts as a failure
    assert changes == (BreakerChanged("orders", "a1", "open", 2.0 + COOLDOWN),)
    assert changes[0].event_type == "breaker.opened"
    assert breakers.admit("orders", "a1", 3.0) == Admission("skip", BREAKER_OPEN_REASON, 2.0 + COOLDOWN)
    assert breakers.admit("orders", "a1", 1.0 + COOLDOWN).verdict == "skip"  # the cooldown's last second
    assert breakers.state("orders", "a1", 3.0) == "open"


def test_a_success_in_between_resets_the_count() -> None:
    breakers = Breakers()
    fail(breakers, 2)
    assert breakers.record("orders", "a1", "success", 3.0) == ()  # closed stays closed: no event
    assert fail(breakers, 2, t=4.0) == []
    assert breakers.admit("orders", "a1", 6.0).verdict == "run"
    assert fail(breakers, 1, t=7.0)[0].state == "open"


@pytest.mark.parametrize("outcome", ["skipped", "cancelled"])
def test_skipped_and_cancelled_runs_neither_count_nor_reset(outcome: Outcome) -> None:
    breakers = Breakers()
    fail(breakers, 2)
    for i in range(10):  # a needs-login agent: skipped every time, never a failure
        assert breakers.record("orders", "a1", outcome, 2.0 + i) == ()
    assert breakers.admit("orders", "a1", 20.0).verdict == "run"
    assert breakers.pair_json("orders", "a1", 20.0)["failures"] == 2
    assert fail(breakers, 1, t=21.0)[0].state == "open"


def test_pairs_are_independent_by_type_and_by_lane() -> None:
    breakers = Breakers()
    open_pair(breakers, "orders", "a1")
    assert breakers.admit("orders", "a1", 10.0).verdict == "skip"
    assert breakers.admit("orders", "a2", 10.0).verdict == "run"
    assert breakers.admit("customers", "a1", 10.0).verdict == "run"
    assert breakers.admit("orders", None, 10.0).verdict == "run"  # the service lane is a lane of its own


def test_after_the_cooldown_one_trial_runs_while_the_others_still_skip() -> None:
    breakers = Breakers()
    until = open_pair(breakers)
    trial = breakers.admit("orders", "a1", until)
    assert trial == Admission(
        "trial", ticket=1, changes=(BreakerChanged("orders", "a1", "half_open", until),)
    )
    assert trial.changes[0].event_type == "breaker.half_open"
    assert breakers.state("orders", "a1", until) == "half_open"
    second = breakers.admit("orders", "a1", until + 1.0)
    assert second == Admission("skip", BREAKER_OPEN_REASON, until)  # no second half_open event


def test_the_trials_success_closes_the_pair() -> None:
    breakers = Breakers()
    until = open_pair(breakers)
    ticket = breakers.admit("orders", "a1", until).ticket
    changes = breakers.record("orders", "a1", "success", until + 5.0, ticket=ticket)
    assert changes == (BreakerChanged("orders", "a1", "closed"),)
    assert changes[0].event_type == "breaker.closed"
    assert breakers.admit("orders", "a1", until + 6.0).verdict == "run"
    assert breakers.snapshot(until + 6.0)["pairs"] == []  # a healthy pair is not stored
    # Closed means closed: it takes three new failures to open again.
    assert fail(breakers, 2, t=until + 10.0) == []


@pytest.mark.parametrize("outcome", ["failed", "timeout"])
def test_the_trials_failure_reopens_for_another_cooldown(outcome: Outcome) -> None:
    breakers = Breakers()
    until = open_pair(breakers)
    ticket = breakers.admit("orders", "a1", until).ticket
    ended = until + 30.0
    assert breakers.record("orders", "a1", outcome, ended, ticket=ticket) == (
        BreakerChanged("orders", "a1", "open", ended + COOLDOWN),
    )
    assert breakers.admit("orders", "a1", ended + 1.0) == Admission(
        "skip", BREAKER_OPEN_REASON, ended + COOLDOWN
    )
    assert breakers.admit("orders", "a1", ended + COOLDOWN).verdict == "trial"


@pytest.mark.parametrize("outcome", ["skipped", "cancelled"])
def test_a_trial_that_decides_nothing_lets_the_next_job_try(outcome: Outcome) -> None:
    breakers = Breakers()
    until = open_pair(breakers)
    ticket = breakers.admit("orders", "a1", until).ticket
    assert breakers.record("orders", "a1", outcome, until + 1.0, ticket=ticket) == ()
    assert breakers.state("orders", "a1", until + 2.0) == "half_open"
    assert breakers.admit("orders", "a1", until + 2.0).verdict == "trial"


@pytest.mark.parametrize("outcome", ["failed", "cancelled", "success"])
def test_only_the_trials_own_end_decides(outcome: Outcome) -> None:
    """A run admitted before the pair opened ends during the trial: it counts, it does not decide
    (found by the property test below: a cancelled old run freed the trial slot)."""
    breakers = Breakers()
    until = open_pair(breakers)
    ticket = breakers.admit("orders", "a1", until).ticket
    changes = breakers.record("orders", "a1", outcome, until + 1.0)  # not the trial
    if outcome == "success":  # any success shows the pair works again
        assert changes == (BreakerChanged("orders", "a1", "closed"),)
        return
    assert changes == ()
    assert breakers.admit("orders", "a1", until + 2.0).verdict == "skip"  # the trial is still running
    assert breakers.record("orders", "a1", "failed", until + 3.0, ticket=ticket)[0].state == "open"


def test_a_trial_forgotten_by_a_reset_does_not_decide_the_next_one() -> None:
    breakers = Breakers()
    until = open_pair(breakers)
    old = breakers.admit("orders", "a1", until).ticket
    breakers.reset("orders", "a1")
    fail(breakers, 3, t=until + 10.0)  # opens again at until + 12
    new = breakers.admit("orders", "a1", until + 12.0 + COOLDOWN).ticket
    assert new is not None and new != old
    assert breakers.record("orders", "a1", "failed", until + 13.0 + COOLDOWN, ticket=old) == ()
    assert breakers.admit("orders", "a1", until + 14.0 + COOLDOWN).verdict == "skip"  # the new trial runs
    assert (
        breakers.record("orders", "a1", "success", until + 15.0 + COOLDOWN, ticket=new)[0].state == "closed"
    )


def test_advance_publishes_half_open_on_time_once() -> None:
    breakers = Breakers()
    until = open_pair(breakers)
    assert breakers.next_change_at() == until
    assert breakers.advance(until - 1.0) == ()
    assert breakers.advance(until) == (BreakerChanged("orders", "a1", "half_open", until),)
    assert breakers.advance(until + 1.0) == ()
    assert breakers.next_change_at() is None
    assert breakers.admit("orders", "a1", until + 1.0) == Admission("trial", ticket=1)  # already announced


class TestReset:
    """Admin reset closes early: one type, one agent, one pair, or everything."""

    @pytest.fixture
    def breakers(self) -> Breakers:
        breakers = Breakers()
        for sync_type in ("orders", "customers"):
            for agent in ("a1", "a2"):
                open_pair(breakers, sync_type, agent)
        open_pair(breakers, "prices", None)
        fail(breakers, 1, "ddt", "a1")  # failing but closed: cleared silently
        return breakers

    def open_pairs(self, breakers: Breakers) -> set[tuple[str, str | None]]:
        return {(s, a) for s, a in [("orders", "a1"), ("orders", "a2"), ("customers", "a1"),
                                     ("customers", "a2"), ("prices", None)]
                if breakers.admit(s, a, 10.0).verdict == "skip"}  # fmt: skip

    def test_by_type(self, breakers: Breakers) -> None:
        changes = breakers.reset(sync_type="orders")
        assert set(changes) == {BreakerChanged("orders", a, "closed") for a in ("a1", "a2")}
        assert self.open_pairs(breakers) == {("customers", "a1"), ("customers", "a2"), ("prices", None)}

    def test_a_shared_type_by_type(self, breakers: Breakers) -> None:
        assert breakers.reset(sync_type="prices") == (BreakerChanged("prices", None, "closed"),)
        assert breakers.admit("prices", None, 10.0).verdict == "run"

    def test_by_agent(self, breakers: Breakers) -> None:
        changes = breakers.reset(agent_id="a1")
        assert set(changes) == {BreakerChanged(s, "a1", "closed") for s in ("orders", "customers")}
        assert self.open_pairs(breakers) == {("orders", "a2"), ("customers", "a2"), ("prices", None)}
        assert breakers.pair_json("ddt", "a1", 10.0)["failures"] == 0

    def test_one_pair(self, breakers: Breakers) -> None:
        assert breakers.reset("customers", "a2") == (BreakerChanged("customers", "a2", "closed"),)
        assert ("customers", "a2") not in self.open_pairs(breakers)
        assert len(self.open_pairs(breakers)) == 4

    def test_everything_also_the_erp_wide_breaker(self, breakers: Breakers) -> None:
        erp = Breakers()
        open_erp(erp)
        open_pair(erp, "orders", "a9")
        assert set(erp.reset()) == {
            BreakerChanged("orders", "a9", "closed"),
            BreakerChanged(None, None, "closed"),
        }
        assert erp.admit("orders", "a9", 10.0).verdict == "run"
        assert len(breakers.reset()) == 5
        assert self.open_pairs(breakers) == set()
        assert breakers.snapshot(10.0)["pairs"] == []

    def test_a_reset_pair_needs_three_new_failures(self, breakers: Breakers) -> None:
        breakers.reset("orders", "a1")
        assert fail(breakers, 2, t=20.0) == []
        assert fail(breakers, 1, t=30.0)[0].state == "open"

    def test_nothing_to_reset_changes_nothing(self) -> None:
        assert Breakers().reset() == ()
        assert Breakers().reset_erp() == ()


# -- the ERP-wide breaker -------------------------------------------------------------


def open_erp(breakers: Breakers, t: float = 0.0) -> float:
    """Five lanes fail a minute apart from ``t``; returns when the ERP-wide wait ends."""
    for i, agent in enumerate(["a1", "a2", "a3", "a4", None]):
        breakers.record("orders" if agent else "prices", agent, "failed", t + 60.0 * i)
    return t + 240.0 + 900.0


def test_five_distinct_lanes_within_ten_minutes_open_the_erp_wide_breaker() -> None:
    breakers = Breakers()
    for i, agent in enumerate(["a1", "a2", "a3", "a4"]):
        assert breakers.record("orders", agent, "failed", 150.0 * i) == ()
    changes = breakers.record("customers", "a5", "timeout", 600.0)  # the first failure is 600 s old: within
    assert changes == (BreakerChanged(None, None, "open", 1500.0),)
    assert changes[0].event_type == "breaker.opened"
    assert changes[0].to_json() == {
        "scope": "erp", "syncType": None, "agentId": None, "state": "open", "until": 1500.0,
    }  # fmt: skip
    assert breakers.blocked_until(600.0) == breakers.erp_open_until(600.0) == 1500.0
    assert breakers.snapshot(700.0)["erp"] == {"state": "open", "until": 1500.0, "lanes": 5}


def test_every_job_waits_fifteen_minutes_from_the_opening_none_is_skipped() -> None:
    breakers = Breakers()
    until = open_erp(breakers)
    for agent in ("a1", "a2", "zz"):  # failing lanes and a healthy one alike
        assert breakers.admit("orders", agent, until - 1.0) == Admission("wait", until=until)
    assert breakers.admit("prices", None, 300.0) == Admission("wait", until=until)
    assert breakers.next_change_at() == until
    closed = breakers.admit("orders", "zz", until)
    assert closed == Admission("run", changes=(BreakerChanged(None, None, "closed"),))
    assert breakers.blocked_until(until) is None
    assert breakers.snapshot(until)["erp"] == {"state": "closed", "until": None, "lanes": 0}


def test_the_erp_wait_ends_by_advance_too_and_only_once() -> None:
    breakers = Breakers()
    until = open_erp(breakers)
    assert breakers.advance(until - 1.0) == ()
    assert breakers.advance(until) == (BreakerChanged(None, None, "closed"),)
    assert breakers.advance(until + 1.0) == ()
    assert breakers.admit("orders", "a1", until + 1.0) == Admission("run")


def test_five_failures_of_one_lane_do_not_open_it() -> None:
    breakers = Breakers(BreakerPolicy(breaker_failures=100))
    changes = [c for i in range(5) for c in breakers.record("orders", "a1", "failed", float(i))]
    changes += breakers.record("customers", "a1", "failed", 5.0)  # another type on the same lane
    assert changes == []
    assert breakers.blocked_until(6.0) is None
    assert breakers.snapshot(6.0)["erp"]["lanes"] == 1  # type: ignore[index]


def test_five_lanes_spread_over_eleven_minutes_do_not_open_it() -> None:
    breakers = Breakers()
    for i, agent in enumerate(["a1", "a2", "a3", "a4", "a5"]):
        assert breakers.record("orders", agent, "failed", 165.0 * i) == ()  # 0 .. 660 s
    assert breakers.blocked_until(660.0) is None
    assert breakers.snapshot(660.0)["erp"]["lanes"] == 4  # type: ignore[index]
    # One more lane within ten minutes of a2..a5 does it.
    assert breakers.record("orders", "a6", "failed", 700.0)[0].state == "open"


def test_a_lanes_repeated_failure_keeps_it_in_the_window() -> None:
    breakers = Breakers()
    breakers.record("orders", "a1", "failed", 0.0)
    for i, agent in enumerate(["a2", "a3", "a4"]):
        breakers.record("orders", agent, "failed", 300.0 + i)
    breakers.record("orders", "a1", "failed", 500.0)  # a1 again: its latest failure counts
    assert breakers.record("orders", "a5", "failed", 800.0)[0].state == "open"


def test_needs_login_skips_never_open_it() -> None:
    breakers = Breakers()
    for i in range(20):
        breakers.record("orders", f"a{i}", "skipped", float(i))
    assert breakers.blocked_until(20.0) is None


def test_failures_during_the_wait_do_not_prolong_it_and_a_new_burst_must_build_up() -> None:
    breakers = Breakers()
    until = open_erp(breakers)
    for i in range(6):  # runs that were already going when it opened
        assert breakers.record("orders", f"b{i}", "failed", 300.0 + i) == ()
    assert breakers.blocked_until(until - 1.0) == until
    assert breakers.admit("orders", "a1", until).verdict == "run"
    # The failures that opened it (and those during the wait) are spent.
    assert breakers.record("orders", "c1", "failed", until + 1.0) == ()
    assert breakers.snapshot(until + 1.0)["erp"]["lanes"] == 1  # type: ignore[index]


def test_the_erp_reset_closes_it_and_keeps_the_pairs() -> None:
    breakers = Breakers()
    until = open_erp(breakers)
    open_pair(breakers, "orders", "a9")
    assert breakers.reset_erp() == (BreakerChanged(None, None, "closed"),)
    assert breakers.blocked_until(300.0) is None
    assert breakers.admit("orders", "a1", 300.0).verdict == "run"
    assert breakers.admit("orders", "a9", 300.0).verdict == "skip"
    assert until > 300.0


def test_the_erp_wait_comes_before_the_pairs_answer() -> None:
    breakers = Breakers()
    until = open_pair(breakers, "orders", "a1")
    open_erp(breakers, t=until - 100.0)
    # Past the pair's cooldown but the ERP is blocked: the job waits; the trial is not spent.
    assert breakers.admit("orders", "a1", until + 10.0).verdict == "wait"
    erp_until = breakers.blocked_until(until + 10.0)
    assert erp_until is not None
    assert breakers.admit("orders", "a1", erp_until).verdict == "trial"


# -- views ------------------------------------------------------------------------------


def test_snapshot_shape_is_json_able_camel_case_with_converted_times() -> None:
    breakers = Breakers()
    fail(breakers, 1, "customers", "a2", t=5.0)
    until = open_pair(breakers, "orders", "a1")
    open_pair(breakers, "prices", None)
    snapshot = breakers.snapshot(10.0, time=lambda x: f"t{x:g}")
    json.dumps(snapshot)
    assert snapshot == {
        "pairs": [
            {"syncType": "customers", "agentId": "a2", "state": "closed", "failures": 1},
            {"syncType": "orders", "agentId": "a1", "state": "open", "failures": 3,
             "openedAt": "t2", "until": f"t{until:g}"},
            {"syncType": "prices", "agentId": None, "state": "open", "failures": 3,
             "openedAt": "t2", "until": f"t{until:g}"},
        ],
        "erp": {"state": "closed", "until": None, "lanes": 3},
    }  # fmt: skip
    assert breakers.snapshot(until)["pairs"][1]["state"] == "half_open"  # type: ignore[index]
    assert breakers.pair_json("ddt", "a7", 10.0) == {
        "syncType": "ddt",
        "agentId": "a7",
        "state": "closed",
        "failures": 0,
    }


def test_counts_per_type_for_metrics_and_health() -> None:
    breakers = Breakers()
    until = open_pair(breakers, "orders", "a1")
    open_pair(breakers, "orders", "a2")
    open_pair(breakers, "prices", None)
    fail(breakers, 2, "ddt", "a1")  # failing, closed: not counted
    assert breakers.counts(10.0) == {
        "orders": {"open": 2, "half_open": 0},
        "prices": {"open": 1, "half_open": 0},
    }
    breakers.record("prices", None, "success", 11.0)
    assert breakers.counts(until) == {"orders": {"open": 0, "half_open": 2}}


def test_event_data_is_json_able() -> None:
    change = BreakerChanged("orders", "a1", "open", 7200.0)
    assert change.to_json(lambda x: f"t{x:g}") == {
        "scope": "pair", "syncType": "orders", "agentId": "a1", "state": "open", "until": "t7200",
    }  # fmt: skip
    assert BreakerChanged("orders", None, "closed").to_json()["until"] is None


def test_the_policy_is_honoured() -> None:
    breakers = Breakers(BreakerPolicy(breaker_failures=1, breaker_cooldown=60.0, erp_breaker_lanes=2))
    assert breakers.record("orders", "a1", "failed", 0.0) == (BreakerChanged("orders", "a1", "open", 60.0),)
    assert breakers.admit("orders", "a1", 60.0).verdict == "trial"
    assert set(breakers.record("orders", "a2", "failed", 61.0)) == {
        BreakerChanged(None, None, "open", 961.0),
        BreakerChanged("orders", "a2", "open", 121.0),
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"breaker_failures": 0}, "breakerFailures"),
        ({"breaker_failures": 2.5}, "breakerFailures"),
        ({"breaker_failures": True}, "breakerFailures"),
        ({"breaker_cooldown": 0.0}, "breakerCooldown"),
        ({"breaker_cooldown": math.inf}, "breakerCooldown"),
        ({"breaker_cooldown": "2h"}, "breakerCooldown"),
        ({"erp_breaker_lanes": 0}, "erpBreakerLanes"),
        ({"erp_window": -1.0}, "erpBreakerWindow"),
        ({"erp_wait": math.nan}, "erpBreakerWait"),
    ],
)
def test_invalid_policy_values_name_their_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field} must be")


def test_memory_stays_small_with_a_thousand_agents_and_four_types() -> None:
    breakers = Breakers()
    types = ("orders", "customers", "ddt", "invoices")
    for t, agent in enumerate(f"agent-{i}" for i in range(1000)):
        for sync_type in types:
            breakers.admit(sync_type, agent, float(t))
            breakers.record(sync_type, agent, "success", float(t))
    assert breakers.snapshot(2000.0)["pairs"] == []
    assert len(breakers._pairs) == 0  # healthy pairs are not stored
    # One failure each: stored, but small.
    for agent in (f"agent-{i}" for i in range(1000)):
        for sync_type in types:
            breakers.record(sync_type, agent, "skipped", 3000.0)
    breakers.reset_erp()
    for i in range(1000):
        breakers.record("orders", f"agent-{i}", "failed", 4000.0)
    one = next(iter(breakers._pairs.values()))
    assert sys.getsizeof(one) < 120  # slots: no per-pair dict
    assert not hasattr(one, "__dict__")
