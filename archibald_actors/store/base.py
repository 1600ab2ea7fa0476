"""The ``Store`` protocol: what the service keeps across restarts, one backend per module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from archibald_actors.agent import Agent
from archibald_actors.domain import RunRecord
from archibald_actors.schedule import ScheduleEntry

__all__ = ["ClusterStore", "PendingRequest", "Store", "StoredState"]


@dataclass
class StoredState:
    """What a store held at start.

    Attributes:
        epoch: the UTC wall time the slot grid counts from (None on first start).
        entries: schedule entries as last retuned, by type (types never retuned are absent).
        served: per type, the latest slot fired, as seconds after the epoch.
    """

    epoch: datetime | None = None
    entries: dict[str, ScheduleEntry] = field(default_factory=dict)
    served: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A stored manual request whose run has not started; ``agent_id`` None: shared or every agent."""

    request_id: int
    sync_type: str
    trigger: str
    requested_at: datetime
    agent_id: str | None = None


class Store(Protocol):
    """Durable state of one service (or of a cluster sharing it).

    Attributes:
        answers_at_once: True only for a store whose calls neither do I/O nor wait on
            anything but a short lock (the memory store). The actors then make its calls
            on their own thread; any other store's calls run on the store worker's thread,
            so that a store that hangs never holds up an actor.
    """

    answers_at_once: bool

    def load(self) -> StoredState:
        """Open the store and read everything needed to start.

        Raises:
            StoreError: the store is unreadable or corrupt (never silently reset).
        """
        ...

    def ensure_epoch(self, epoch: datetime) -> datetime:
        """Record ``epoch`` unless one is stored; return the stored one (first writer wins)."""
        ...

    def save_entry(self, entry: ScheduleEntry) -> None:
        """Record a retune or pause; durable when this returns."""
        ...

    def save_served(self, sync_type: str, slot_offset: float) -> None:
        """Record the latest slot fired for ``sync_type`` (seconds after the epoch)."""
        ...

    def append_run(self, record: RunRecord) -> None:
        """Add a finished run to the ledger."""
        ...

    def claim_slot(self, sync_type: str, slot_offset: float, agent_id: str | None = None) -> bool:
        """Claim slot ``slot_offset`` of ``sync_type`` (of one agent's job, if ``agent_id``)
        for one run; False if already claimed. Each (type, agent, slot) is a key of its own.
        """
        ...

    def prune_claims(self, older_than: datetime) -> int:
        """Forget slot claims made before ``older_than``; return how many."""
        ...

    def add_request(
        self, sync_type: str, trigger: str, requested_at: datetime, agent_id: str | None = None
    ) -> int:
        """Store an accepted manual request (durable before it is acknowledged); return its id.

        ``agent_id`` names the one agent it is for (None: a shared type, or every agent).
        """
        ...

    def requests(self) -> list[PendingRequest]:
        """Requests not yet started, oldest first."""
        ...

    def pending_requests(self) -> list[tuple[int, str, str, datetime]]:
        """``(id, syncType, trigger, requestedAt)`` of requests not yet started, oldest first."""
        ...

    def delete_requests(self, ids: list[int]) -> None:
        """Forget requests whose run has started."""
        ...

    def runs(
        self,
        sync_type: str | None = None,
        limit: int = 100,
        *,
        agent_id: str | None = None,
        before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs newest first by start, of one type or all, of one agent or all; with ``before``,
        only runs that started strictly before it (paging back through the ledger: pass the
        start of the last run seen). A page never ends inside a millisecond, so a reader
        shown starts to the millisecond misses none: it ends before the millisecond that
        would be split, or, if more than ``limit`` runs started in that one, holds them all.
        """
        ...

    def prune(self, older_than: datetime) -> int:
        """Delete runs that finished before ``older_than``; return how many."""
        ...

    def put_agent(self, agent_id: str, name: str | None = None, enabled: bool = True) -> Agent:
        """Add an agent or replace its name and flag; return it as stored."""
        ...

    def remove_agent(self, agent_id: str) -> bool:
        """Forget an agent and its pending requests (never its runs); return whether it existed."""
        ...

    def agents(self) -> list[Agent]:
        """Every agent, ordered by id."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...

    def cluster(self) -> ClusterStore | None:
        """This store as the shared store of a cluster of replicas, or None if nobody shares it."""
        ...


class ClusterStore(Store, Protocol):
    """A store several replicas share: they compete for its lock and hear its announcements.

    A store says whether it is one through :meth:`Store.cluster`, never by its type.
    """

    dsn: str
    schema: str

    def load_entries(self) -> dict[str, ScheduleEntry]:
        """The stored schedule entries (cheap: read on every change announced)."""
        ...

    def notify(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Announce a change to every replica."""
        ...
