"""The retry policy: which outcomes are retried, how often, after which backoff, never past the next slot."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archibald_actors.domain import OUTCOMES, Outcome
from archibald_actors.errors import InvalidValueError
from archibald_actors.retry import DEFAULT_RETRY, RetryPlan, RetryPolicy, plan_retry

PURE = settings(max_examples=300, deadline=None, database=None)


def test_defaults_are_two_retries_after_60_then_300_seconds() -> None:
    assert RetryPolicy(retries=2, retry_backoff=(60.0, 300.0)) == DEFAULT_RETRY
    assert plan_retry("failed", 1, 1000.0, None) == RetryPlan(1060.0, 2)
    assert plan_retry("failed", 2, 1100.0, None) == RetryPlan(1400.0, 3)
    assert plan_retry("failed", 3, 1500.0, None) is None  # two retries used up


@pytest.mark.parametrize("outcome", ["failed", "timeout"])
def test_failed_and_timeout_are_retried(outcome: Outcome) -> None:
    assert plan_retry(outcome, 1, 0.0, 3600.0) == RetryPlan(60.0, 2)


@pytest.mark.parametrize("outcome", ["success", "skipped", "cancelled"])
def test_success_skipped_and_cancelled_are_never_retried(outcome: Outcome) -> None:
    policy = RetryPolicy(retries=5, retry_backoff=(1.0,))
    assert all(plan_retry(outcome, attempt, 0.0, None, policy) is None for attempt in range(1, 7))


def test_the_last_backoff_repeats_beyond_the_list() -> None:
    policy = RetryPolicy(retries=4, retry_backoff=(30.0, 60.0))
    waits = [plan_retry("failed", a, 100.0, None, policy) for a in range(1, 6)]
    assert waits == [RetryPlan(130.0, 2), RetryPlan(160.0, 3), RetryPlan(160.0, 4), RetryPlan(160.0, 5), None]


def test_the_real_backends_backoff_is_expressible() -> None:
    policy = RetryPolicy(retries=3, retry_backoff=[30, 60, 120])  # type: ignore[arg-type]  # a list, as TOML gives
    assert policy.retry_backoff == (30.0, 60.0, 120.0)
    assert [policy.delay(i) for i in (1, 2, 3)] == [30.0, 60.0, 120.0]


def test_zero_retries_never_retries() -> None:
    assert plan_retry("failed", 1, 0.0, None, RetryPolicy(retries=0)) is None


def test_a_retry_at_or_past_the_next_slot_is_left_to_the_slot() -> None:
    # The retry would fall exactly on the slot: the slot's own run takes over.
    assert plan_retry("failed", 1, 1000.0, 1060.0) is None
    assert plan_retry("timeout", 1, 1000.0, 1059.0) is None
    assert plan_retry("failed", 1, 1000.0, 1060.5) == RetryPlan(1060.0, 2)
    # The second retry waits 300 s: a slot 200 s away stops it though the first fitted.
    assert plan_retry("failed", 2, 1100.0, 1300.0) is None


def test_a_caller_list_cannot_change_the_policy_afterwards() -> None:
    backoff = [10.0, 20.0]
    policy = RetryPolicy(retry_backoff=backoff)  # type: ignore[arg-type]
    backoff[0] = 999.0
    assert policy.delay(1) == 10.0


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"retries": -1}, "retries", "retries must be at least 0, got -1"),
        ({"retries": True}, "retries", "retries must be a whole number, got true"),
        ({"retries": 1.5}, "retries", "retries must be a whole number, got 1.5"),
        ({"retries": "2"}, "retries", 'retries must be a whole number, got "2"'),
        ({"retry_backoff": ()}, "retryBackoff", "got an empty list"),
        ({"retry_backoff": (60.0, 0.0)}, "retryBackoff", "item 2 is 0"),
        ({"retry_backoff": (-5,)}, "retryBackoff", "item 1 is -5"),
        ({"retry_backoff": (math.nan,)}, "retryBackoff", "item 1 is NaN"),
        ({"retry_backoff": (math.inf,)}, "retryBackoff", "item 1 is Infinity"),
        ({"retry_backoff": (True,)}, "retryBackoff", "item 1 is true"),
        ({"retry_backoff": ("60",)}, "retryBackoff", 'item 1 is "60"'),
        ({"retry_backoff": 60.0}, "retryBackoff", "got 60"),
    ],
)
def test_invalid_values_name_their_field(kwargs: dict[str, object], field: str, text: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert text in str(caught.value)
    assert str(caught.value).startswith(field)


def test_an_attempt_below_one_is_not_a_run_and_is_not_retried() -> None:
    assert plan_retry("failed", 0, 0.0, None) is None


policies = st.builds(
    RetryPolicy,
    retries=st.integers(0, 6),
    retry_backoff=st.lists(st.floats(0.5, 5000.0), min_size=1, max_size=4).map(tuple),
)


@PURE
@given(
    policy=policies,
    outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=10),
    start=st.floats(0.0, 1e6),
    gap=st.one_of(st.none(), st.floats(1.0, 20000.0)),
)
def test_a_job_is_tried_at_most_retries_plus_one_times_and_never_at_its_next_slot(
    policy: RetryPolicy, outcomes: list[Outcome], start: float, gap: float | None
) -> None:
    """Play a job's tries, each ending as drawn: count them, check each retry's time and number."""
    next_slot = None if gap is None else start + gap
    finished, attempt, tries = start, 1, 1
    for outcome in outcomes:
        plan = plan_retry(outcome, attempt, finished, next_slot, policy)
        if plan is None:
            if outcome in ("failed", "timeout") and attempt <= policy.retries:
                # The only other reason: the retry would have fallen at or past the next slot.
                assert next_slot is not None and finished + policy.delay(attempt) >= next_slot
            break
        assert outcome in ("failed", "timeout")
        assert plan.attempt == attempt + 1
        assert plan.at == finished + policy.retry_backoff[min(attempt, len(policy.retry_backoff)) - 1]
        assert next_slot is None or plan.at < next_slot
        finished, attempt, tries = plan.at, plan.attempt, tries + 1
    assert tries <= policy.retries + 1
