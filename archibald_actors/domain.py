"""The words of the domain: why a run happened, how it ended, and the record it leaves.

Plain values shared by the actors, the stores and the web layer; no behaviour beyond
turning a record into its JSON shape.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["FAILURES", "OUTCOMES", "TRIGGERS", "Outcome", "RunRecord", "Trigger", "iso"]

#: Why a run happened: a timer's slot, a caller's request, or another try after a failure.
Trigger = Literal["auto", "manual", "retry"]
#: How a run ended (``skipped``: it did not run, ``reason`` says why).
Outcome = Literal["success", "failed", "timeout", "cancelled", "skipped"]

TRIGGERS: tuple[Trigger, ...] = ("auto", "manual", "retry")
OUTCOMES: tuple[Outcome, ...] = ("success", "failed", "timeout", "cancelled", "skipped")
#: The outcomes that are failures (the ERP or the handler failed, or ran out of time): they
#: are retried, count towards a breaker and towards health's failures in a row. A skip (no
#: login, an open breaker) or a cancel (a hold, a shutdown) is neither.
FAILURES: frozenset[Outcome] = frozenset({"failed", "timeout"})


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with millisecond precision and a ``Z``, or None."""
    if moment is None:
        return None
    return _iso(moment)


# Events name the same instants over and over (a slot's time in each of its jobs' events,
# a run's start as the end of the run before): most of them are formatted already.
@functools.lru_cache(maxsize=256)
def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished run; times are UTC wall times (they outlive the clock that measured them).

    ``agent_id`` is None for a shared type; ``attempt`` counts tries of one job (1 first);
    ``result`` is what the handler returned (a JSON-able dict) and ``reason`` why a run was
    ``skipped``.
    """

    sync_type: str
    trigger: Trigger
    scheduled_at: datetime | None
    requested_at: datetime
    started_at: datetime
    finished_at: datetime
    outcome: Outcome
    error: str | None = None
    agent_id: str | None = None
    attempt: int = 1
    # A dict cannot be hashed: the record still can, by its other fields.
    result: dict[str, Any] | None = field(default=None, hash=False)
    reason: str | None = None

    @property
    def duration_ms(self) -> int:
        """Run time in whole milliseconds."""
        return round((self.finished_at - self.started_at).total_seconds() * 1000)

    def to_json(self) -> dict[str, object]:
        """The run's history entry (camelCase keys, ISO 8601 times)."""
        return {
            "syncType": self.sync_type,
            "trigger": self.trigger,
            "scheduledAt": iso(self.scheduled_at),
            "requestedAt": iso(self.requested_at),
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "durationMs": self.duration_ms,
            "outcome": self.outcome,
            "error": self.error,
            "agentId": self.agent_id,
            "attempt": self.attempt,
            "result": self.result,
            "reason": self.reason,
        }
