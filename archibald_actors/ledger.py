"""The bounded in-memory history of the last runs per type."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from archibald_actors.domain import RunRecord

__all__ = ["HISTORY_PER_TYPE", "History"]

HISTORY_PER_TYPE = 100


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
