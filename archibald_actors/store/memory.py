"""``MemoryStore``: the ``Store`` kept in this process only (tests, simulations)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from archibald_actors.domain import RunRecord
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import ClusterStore, StoredState

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps everything in dicts; survives service restarts within one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = StoredState()
        self._runs: list[RunRecord] = []
        self._claims: dict[tuple[str, int], datetime] = {}
        self._requests: dict[int, tuple[str, str, datetime]] = {}
        self._next_request = 1

    def load(self) -> StoredState:
        """A copy of what is stored."""
        with self._lock:
            return StoredState(self._state.epoch, dict(self._state.entries), dict(self._state.served))

    def ensure_epoch(self, epoch: datetime) -> datetime:
        """Record ``epoch`` unless one is stored; return the stored one."""
        with self._lock:
            if self._state.epoch is None:
                self._state.epoch = epoch.astimezone(UTC)
            return self._state.epoch

    def save_entry(self, entry: ScheduleEntry) -> None:
        """Record a retune."""
        with self._lock:
            self._state.entries[entry.sync_type] = entry

    def save_served(self, sync_type: str, slot_offset: float) -> None:
        """Record the latest slot fired."""
        with self._lock:
            self._state.served[sync_type] = slot_offset

    def append_run(self, record: RunRecord) -> None:
        """Add a run."""
        with self._lock:
            self._runs.append(record)

    def claim_slot(self, sync_type: str, slot_offset: float) -> bool:
        """Claim a slot (keyed to the millisecond); False if it was claimed before."""
        key = (sync_type, round(slot_offset * 1000))
        with self._lock:
            if key in self._claims:
                return False
            self._claims[key] = datetime.now(UTC)
            return True

    def add_request(self, sync_type: str, trigger: str, requested_at: datetime) -> int:
        """Keep an accepted manual request; return its id."""
        with self._lock:
            row = self._next_request
            self._next_request += 1
            self._requests[row] = (sync_type, trigger, requested_at)
            return row

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """Requests not started yet, oldest first."""
        with self._lock:
            rows = [(row, *request) for row, request in self._requests.items()]
        return sorted(rows, key=lambda r: (r[3], r[0]))

    def delete_requests(self, ids: list[int]) -> None:
        """Forget requests whose runs have started."""
        with self._lock:
            for row in ids:
                self._requests.pop(row, None)

    def prune_claims(self, older_than: datetime) -> int:
        """Forget claims made before ``older_than``."""
        with self._lock:
            old = [key for key, at in self._claims.items() if at < older_than]
            for key in old:
                del self._claims[key]
            return len(old)

    def runs(self, sync_type: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Runs newest first."""
        with self._lock:
            runs = [r for r in self._runs if sync_type is None or r.sync_type == sync_type]
        runs.sort(key=lambda r: (r.finished_at, r.started_at), reverse=True)
        return runs[:limit]

    def prune(self, older_than: datetime) -> int:
        """Drop runs finished before ``older_than``."""
        with self._lock:
            kept = [r for r in self._runs if r.finished_at >= older_than]
            dropped = len(self._runs) - len(kept)
            self._runs = kept
            return dropped

    def close(self) -> None:
        """Nothing to release."""

    def cluster(self) -> ClusterStore | None:
        """None: a memory store belongs to one process."""
        return None
