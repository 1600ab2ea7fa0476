"""Circuit breakers, property tests: random interleavings against the rules as written."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from archibald_actors.breaker import BREAKER_OPEN_REASON, Admission, BreakerChanged, BreakerPolicy, Breakers
from archibald_actors.domain import Outcome

PURE = settings(max_examples=300, deadline=None, database=None)
COOLDOWN = 7200.0

PAIRS = [("orders", "a1"), ("customers", "a1"), ("orders", "a2"), ("prices", None)]
# Weighted towards what makes breakers move: admits, ends, failures, short steps of time.
steps = st.lists(
    st.tuples(
        st.sampled_from(["admit"] * 4 + ["end"] * 4 + ["advance", "reset"]),
        st.sampled_from(PAIRS[:2] * 3 + PAIRS[2:]),
        st.sampled_from(["failed", "timeout", "failed", "success", "skipped", "cancelled"]),
        st.floats(0.0, 300.0),
    ),
    min_size=30,
    max_size=150,
)


@PURE
@given(steps=steps)
def test_never_more_than_one_trial_in_flight_per_pair_and_events_alternate(
    steps: list[tuple[str, tuple[str, str | None], Outcome, float]],
) -> None:
    """Random admits, ends, time and resets, several jobs of a pair at once (no lane rule):

    at most one live trial per pair (a trial dies when it ends or its pair closes); a live
    trial's failure re-opens the pair, its success closes it; a skip only while the pair is
    not closed; every published state differs from the pair's previous one."""
    breakers = Breakers(BreakerPolicy(breaker_failures=2, breaker_cooldown=500.0, erp_breaker_lanes=3))
    t = 0.0
    in_flight: dict[tuple[str, str | None], list[Admission]] = {p: [] for p in PAIRS}
    live: dict[tuple[str, str | None], int | None] = dict.fromkeys(PAIRS)  # the live trial's ticket
    published: dict[tuple[str | None, str | None], str] = {}

    def publish(changes: tuple[BreakerChanged, ...]) -> None:
        for change in changes:
            key = (change.sync_type, change.agent_id)
            assert published.get(key, "closed") != change.state
            published[key] = change.state
            if change.state == "closed" and change.sync_type is not None:
                live[(change.sync_type, change.agent_id)] = None  # closing forgets the trial

    for action, pair, outcome, dt in steps:
        t += dt
        if action == "advance":
            publish(breakers.advance(t))
        elif action == "admit":
            before = breakers.state(*pair, t)
            answer = breakers.admit(*pair, t)
            event(answer.verdict)  # --hypothesis-show-statistics: every verdict is reached
            publish(answer.changes)
            if answer.verdict == "wait":
                assert answer.until is not None and answer.until > t
            elif answer.verdict == "skip":
                assert before != "closed" and answer.reason == BREAKER_OPEN_REASON
                assert answer.until is not None
            else:
                in_flight[pair].append(answer)
            if answer.verdict == "trial":
                assert live[pair] is None and answer.ticket is not None
                live[pair] = answer.ticket
        elif action == "end" and in_flight[pair]:
            ended = in_flight[pair].pop(0)
            changes = breakers.record(*pair, outcome, t, ticket=ended.ticket)
            deciding = ended.ticket is not None and ended.ticket == live[pair]
            publish(changes)
            if deciding and outcome in ("failed", "timeout"):
                assert BreakerChanged(*pair, "open", t + 500.0) in changes
            elif deciding and outcome == "success":
                assert BreakerChanged(*pair, "closed") in changes
            if deciding:
                live[pair] = None
        elif action == "reset":
            publish(breakers.reset(sync_type=pair[0]))
        if breakers.blocked_until(t) is None:
            assert breakers.snapshot(t)["erp"]["state"] == "closed"  # type: ignore[index]


@PURE
@given(
    lanes=st.lists(st.sampled_from(["a1", "a2", "a3", "a4", "a5", "a6", None]), min_size=1, max_size=30),
    gaps=st.lists(st.floats(0.0, 400.0), min_size=30, max_size=30),
)
def test_the_erp_breaker_opens_exactly_when_five_lanes_failed_within_the_window(
    lanes: list[str | None], gaps: list[float]
) -> None:
    """Against a brute-force model: it opens on the first failure that makes five distinct lanes
    within the last 600 s (counting only failures since it last opened)."""
    breakers = Breakers(BreakerPolicy(breaker_failures=1000))
    history: list[tuple[float, str | None]] = []
    t = 0.0
    until: float | None = None
    for lane, gap in zip(lanes, gaps, strict=False):
        t += gap
        changes = breakers.record("orders", lane, "failed", t)
        if until is not None and t < until:
            assert changes == ()
            continue
        if until is not None:  # the wait is over: the record closed it first
            assert changes[0] == BreakerChanged(None, None, "closed")
            until = None
        history.append((t, lane))
        expected = len({ln for at, ln in history if at >= t - 600.0}) >= 5
        assert (changes[-1:] == (BreakerChanged(None, None, "open", t + 900.0),)) is expected
        if expected:
            event("opened")
            until, history = t + 900.0, []


@PURE
@given(
    ends=st.lists(
        st.tuples(
            st.sampled_from(["failed", "timeout", "success", "skipped", "cancelled"]), st.floats(0, 4000)
        ),
        max_size=60,
    )
)
def test_one_lane_played_job_after_job_matches_the_written_rule(ends: list[tuple[Outcome, float]]) -> None:
    """One pair's jobs, one at a time as the lane rule has them: every answer and transition
    follows the rule as the design states it (3 in a row open for 2 h, then one trial decides)."""
    breakers = Breakers()
    failures, until, t = 0, None, 0.0  # the model: consecutive failures, and the open pair's end
    for outcome, dt in ends:
        t += dt
        answer = breakers.admit("orders", "a1", t)
        if until is None:
            assert answer.verdict == "run"
        elif t < until:
            assert answer == Admission("skip", BREAKER_OPEN_REASON, until)
            continue
        else:
            assert answer.verdict == "trial"
        changes = breakers.record("orders", "a1", outcome, t, ticket=answer.ticket)
        if outcome == "success":
            assert changes == (() if until is None else (BreakerChanged("orders", "a1", "closed"),))
            failures, until = 0, None
        elif outcome in ("failed", "timeout"):
            failures += 1
            if answer.verdict == "trial" or failures == 3:
                until = t + COOLDOWN
                assert changes == (BreakerChanged("orders", "a1", "open", until),)
            else:
                assert changes == ()
        else:
            assert changes == ()
        # A trial that was skipped or cancelled leaves the pair half-open: the next job tries.
        expected = "closed" if until is None else "open" if t < until else "half_open"
        assert breakers.state("orders", "a1", t) == expected
