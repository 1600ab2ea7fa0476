"""Run records and the bounded in-memory history of the last runs per type."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archibald_actors.messages import Outcome, Trigger

__all__ = ["HISTORY_PER_TYPE", "History", "RunRecord", "iso"]

HISTORY_PER_TYPE = 100


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with millisecond precision and a ``Z``, or None."""
    if moment is None:
        return None
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
        """The history entry of DESIGN section 6."""
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


class History:
    """The last ``limit`` runs of each type, oldest first within a type."""

    def __init__(self, sync_types: Iterable[str], limit: int = HISTORY_PER_TYPE) -> None:
        self._runs: dict[str, deque[RunRecord]] = {t: deque(maxlen=limit) for t in sync_types}

    def add(self, record: RunRecord) -> None:
        """Append a finished run (the oldest of its type drops out past the limit)."""
        self._runs[record.sync_type].append(record)

    def last(self, sync_type: str) -> RunRecord | None:
        """The latest run of ``sync_type``, or None if it never ran."""
        runs = self._runs[sync_type]
        return runs[-1] if runs else None

    def newest_first(self, sync_type: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Runs newest first, of one type or all."""
        if sync_type is not None:
            runs = list(self._runs[sync_type])
        else:
            runs = [r for per_type in self._runs.values() for r in per_type]
        runs.sort(key=lambda r: (r.finished_at, r.started_at), reverse=True)
        return runs if limit is None else runs[:limit]
