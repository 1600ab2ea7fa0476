"""When a failed run is tried again: the retry policy, as a pure function of plain values.

A ``failed`` or ``timeout`` run is tried again (trigger ``"retry"``) up to ``retries``
times, the i-th retry after ``retry_backoff[i]`` seconds (the last figure repeats), but
never at or past the type's next slot: that slot's own run takes over, so a retry never
doubles a run the timer is about to make. ``skipped`` (a missing login, an open breaker)
and ``cancelled`` (a hold, a shutdown) are not failures of the ERP and are not retried.

No clock inside: times are the service clock's float seconds, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from archibald_actors.domain import FAILURES, Outcome
from archibald_actors.errors import InvalidValueError
from archibald_actors.validation import BackoffSeconds, Retries, first_error, show

__all__ = ["DEFAULT_RETRY", "RETRIED_OUTCOMES", "RetryPlan", "RetryPolicy", "plan_retry"]

#: The outcomes worth another try: the failures.
RETRIED_OUTCOMES: frozenset[Outcome] = FAILURES


class _RetryRules(BaseModel):
    """The rules of a retry policy, by their JSON names (one source for Python, config, HTTP)."""

    model_config = ConfigDict(extra="forbid")

    retries: Retries
    retryBackoff: Annotated[list[BackoffSeconds], Field(min_length=1)]  # noqa: N815  (JSON name)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how late a type's failed runs are tried again.

    Attributes:
        retries: more tries after the first (0: never retry).
        retry_backoff: seconds to wait before the 1st, 2nd... retry; the last figure
            repeats for retries beyond it. A list is accepted and kept as a tuple.

    Raises:
        InvalidValueError: ``retries`` is not a whole number >= 0, or ``retry_backoff`` is
            not a non-empty list of finite numbers > 0; ``field`` names it (camelCase).
    """

    retries: int = 2
    retry_backoff: tuple[float, ...] = (60.0, 300.0)

    def __post_init__(self) -> None:
        backoff = self.retry_backoff
        try:
            _RetryRules.model_validate({"retries": self.retries, "retryBackoff": backoff})
        except ValidationError as exc:
            errors = exc.errors()
            field, problem, _ = first_error(errors, _RetryRules)
            if field == "retryBackoff":
                problem = _backoff_problem(backoff, errors)
            raise InvalidValueError(field, problem) from None
        # Frozen: set through object.__setattr__, once, so a caller's list cannot change it later.
        object.__setattr__(self, "retry_backoff", tuple(float(s) for s in backoff))

    def delay(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry (1 for the first)."""
        return self.retry_backoff[min(retry, len(self.retry_backoff)) - 1]


def _backoff_problem(backoff: object, errors: list[ErrorDetails]) -> str:
    """A message for retryBackoff that names the item at fault (pydantic's names only the list)."""
    expected = "must be a non-empty list of seconds, each a finite number more than 0"
    for error in errors:
        loc = error["loc"]
        if len(loc) == 2 and loc[0] == "retryBackoff" and isinstance(loc[1], int):
            return f"{expected}; item {loc[1] + 1} is {show(error['input'])}"
    empty = isinstance(backoff, list | tuple) and not backoff
    return f"{expected}, got {'an empty list' if empty else show(backoff)}"


#: The defaults of the design: two retries, after 60 s then 300 s.
DEFAULT_RETRY = RetryPolicy()


class RetryPlan(NamedTuple):
    """Another try of a job: when (clock seconds) and which attempt it is (2 for the first retry)."""

    at: float
    attempt: int


def plan_retry(
    outcome: Outcome,
    attempt: int,
    finished_at: float,
    next_slot_at: float | None,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> RetryPlan | None:
    """Whether and when the run that just ended is tried again.

    Args:
        outcome: how the run ended.
        attempt: which try it was (1 for the slot's or the request's own run).
        finished_at: when it ended, on the service clock.
        next_slot_at: the type's next slot after ``finished_at`` (None: no next slot, say
            a paused type; retries are then bounded by count alone).
        policy: the type's retries and backoff.

    Returns:
        the retry to queue, or None: the outcome is not retried, the retries are used up,
        or the retry would fall at or past the next slot.
    """
    if outcome not in RETRIED_OUTCOMES or attempt < 1 or attempt > policy.retries:
        return None
    at = finished_at + policy.delay(attempt)
    if next_slot_at is not None and at >= next_slot_at:
        return None
    return RetryPlan(at, attempt + 1)
