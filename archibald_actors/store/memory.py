"""``MemoryStore``: the ``Store`` kept in this process only (tests, simulations)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime

from archibald_actors.agent import Agent, check_agent_id
from archibald_actors.domain import RunRecord
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store.base import ClusterStore, PendingRequest, StoredState
from archibald_actors.store.codec import check_aware, check_limit, page_of_runs, result_text

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps everything in dicts; survives service restarts within one process.

    Its calls only take a lock, so the actors make them on their own thread
    (``answers_at_once``). A subclass whose calls may block must set it to False.
    """

    answers_at_once = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = StoredState()
        self._runs: list[RunRecord] = []
        #: Keyed by (type, agent or None for a shared type, slot in ms).
        self._claims: dict[tuple[str, str | None, int], datetime] = {}
        # The oldest run's end and claim's time (None: none kept): a prune with nothing
        # older to drop returns without a walk through every run and claim.
        self._oldest_run: datetime | None = None
        self._oldest_claim: datetime | None = None
        self._requests: dict[int, PendingRequest] = {}
        self._next_request = 1
        self._agents: dict[str, Agent] = {}

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
        """Add a run; its ``result`` is kept as the SQL stores keep it (through JSON).

        Raises:
            InvalidValueError: a bad ``agent_id`` or a ``result`` that is not a JSON-able dict.
        """
        if record.agent_id is not None:
            check_agent_id(record.agent_id)
        text = result_text(record.result)
        if text is not None:  # a copy: the handler may change its dict after returning it
            record = replace(record, result=json.loads(text))
        with self._lock:
            self._runs.append(record)
            self._oldest_run = _earlier(self._oldest_run, record.finished_at)

    def claim_slot(self, sync_type: str, slot_offset: float, agent_id: str | None = None) -> bool:
        """Claim a slot of a type or of one agent's job (keyed to the millisecond); False if
        it was claimed before.
        """
        agent = None if agent_id is None else check_agent_id(agent_id)
        key = (sync_type, agent, round(slot_offset * 1000))
        with self._lock:
            if key in self._claims:
                return False
            self._claims[key] = now = datetime.now(UTC)
            self._oldest_claim = _earlier(self._oldest_claim, now)
            return True

    def add_request(
        self, sync_type: str, trigger: str, requested_at: datetime, agent_id: str | None = None
    ) -> int:
        """Keep an accepted manual request (for one agent, or None); return its id."""
        agent = None if agent_id is None else check_agent_id(agent_id)
        with self._lock:
            row = self._next_request
            self._next_request += 1
            self._requests[row] = PendingRequest(row, sync_type, trigger, requested_at, agent)
            return row

    def requests(self) -> list[PendingRequest]:
        """Requests not started yet, oldest first."""
        with self._lock:
            rows = list(self._requests.values())
        return sorted(rows, key=lambda r: (r.requested_at, r.request_id))

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """``requests()`` as ``(id, sync_type, trigger, requested_at)``, without the agent."""
        return [(r.request_id, r.sync_type, r.trigger, r.requested_at) for r in self.requests()]

    def delete_requests(self, ids: list[int]) -> None:
        """Forget requests whose runs have started."""
        with self._lock:
            for row in ids:
                self._requests.pop(row, None)

    def prune_claims(self, older_than: datetime) -> int:
        """Forget claims made before ``older_than``."""
        with self._lock:
            if self._oldest_claim is None or self._oldest_claim >= older_than:
                return 0
            old = [key for key, at in self._claims.items() if at < older_than]
            for key in old:
                del self._claims[key]
            self._oldest_claim = min(self._claims.values(), default=None)
            return len(old)

    def runs(
        self,
        sync_type: str | None = None,
        limit: int = 100,
        *,
        agent_id: str | None = None,
        before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs newest first (by start), of one type or all, of one agent or all, started before ``before``.

        Raises:
            InvalidValueError: ``limit`` is negative, ``agent_id`` is not an agent id, or
                ``before`` is naive.
        """
        check_limit(limit)
        if agent_id is not None:
            check_agent_id(agent_id)
        if before is not None:
            check_aware(before, "before")
        with self._lock:
            runs = [
                r
                for r in self._runs
                if (sync_type is None or r.sync_type == sync_type)
                and (agent_id is None or r.agent_id == agent_id)
                and (before is None or r.started_at < before)
            ]
        # Stable sort of insertion order, reversed: ties go newest-inserted first, as in SQL.
        runs.reverse()
        runs.sort(key=lambda r: r.started_at, reverse=True)
        return page_of_runs(lambda n: runs[:n], limit)

    def prune(self, older_than: datetime) -> int:
        """Drop runs finished before ``older_than``."""
        with self._lock:
            if self._oldest_run is None or self._oldest_run >= older_than:
                return 0
            kept = [r for r in self._runs if r.finished_at >= older_than]
            dropped = len(self._runs) - len(kept)
            self._runs = kept
            self._oldest_run = min((r.finished_at for r in kept), default=None)
            return dropped

    def put_agent(self, agent_id: str, name: str | None = None, enabled: bool = True) -> Agent:
        """Add the agent or replace its name and flag; return it."""
        agent = Agent(agent_id, name, enabled)
        with self._lock:
            self._agents[agent.agent_id] = agent
        return agent

    def remove_agent(self, agent_id: str) -> bool:
        """Forget the agent and its pending requests (never its runs); return whether it existed."""
        check_agent_id(agent_id)
        with self._lock:
            for row in [row for row, request in self._requests.items() if request.agent_id == agent_id]:
                del self._requests[row]
            return self._agents.pop(agent_id, None) is not None

    def agents(self) -> list[Agent]:
        """Every agent, by id."""
        with self._lock:
            return sorted(self._agents.values(), key=lambda agent: agent.agent_id)

    def close(self) -> None:
        """Nothing to release."""

    def cluster(self) -> ClusterStore | None:
        """None: a memory store belongs to one process."""
        return None


def _earlier(oldest: datetime | None, moment: datetime) -> datetime:
    return moment if oldest is None or moment < oldest else oldest
