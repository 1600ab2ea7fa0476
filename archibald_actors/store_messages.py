"""The store worker's answers: each store call's outcome, told back to the actor that made it.

An actor never waits on the store in a message handler (see ``actors/store_worker.py``);
these messages bring the result of a call, or its error, back into the actor's mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, TypeVar

from archibald_actors.agent import Agent
from archibald_actors.domain import RunRecord
from archibald_actors.schedule import ScheduleEntry

if TYPE_CHECKING:
    from archibald_actors.messages import (
        GetAgent,
        PutAgent,
        RemoveAgent,
        Reply,
        RequestSync,
        Retune,
        StoredRequest,
    )
    from archibald_actors.request_queue import PendingRequest
    from archibald_actors.store.base import StoredState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoreResult(Generic[T]):
    """What a store call made for an actor returned, or the error it raised."""

    value: T | None = None
    error: Exception | None = None

    def unwrap(self) -> T:
        """The value; raises the call's error."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Booted:
    """The store was read: slots count from ``epoch``; ``served`` and ``runs`` as stored."""

    epoch: float
    served: dict[str, float]
    runs: tuple[RunRecord, ...]


@dataclass(frozen=True, slots=True)
class RequestStored:
    """A caller's request was written (``result``: its row id) or could not be."""

    request: RequestSync
    result: StoreResult[int]


@dataclass(frozen=True, slots=True)
class StoredRequestsRead:
    """The store's pending manual requests (to queue those not seen yet)."""

    result: StoreResult[list[StoredRequest]]


@dataclass(frozen=True, slots=True)
class SlotClaimed:
    """The claim of ``request``'s slot: True if it is ours, False if claimed before."""

    request: PendingRequest
    result: StoreResult[bool]


@dataclass(frozen=True, slots=True)
class RunRecorded:
    """The oldest unrecorded run was appended to the ledger, or ``result`` says why not."""

    record: RunRecord
    first_try: bool
    publish: bool  # publish the run's end now (it was not published before the write)
    result: StoreResult[None]


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """The ledger's runs for a history query."""

    reply: Reply
    result: StoreResult[list[RunRecord]]


@dataclass(frozen=True, slots=True)
class LedgerRead:
    """The ledger's latest runs, for a follower's status."""

    result: StoreResult[list[RunRecord]]


@dataclass(frozen=True, slots=True)
class StateLoaded:
    """The store's state as read for load ``attempt`` (at start, or on winning an election)."""

    attempt: int
    result: StoreResult[tuple[StoredState, datetime, list[RunRecord], list[Agent]]]


@dataclass(frozen=True, slots=True)
class EntryStored:
    """A retune's new ``entry`` was stored, or ``result`` says why not."""

    retune: Retune
    entry: ScheduleEntry
    result: StoreResult[None]


@dataclass(frozen=True, slots=True)
class EntriesRead:
    """The stored schedule entries, read after another replica announced a change."""

    result: StoreResult[dict[str, ScheduleEntry]]


@dataclass(frozen=True, slots=True)
class AgentStored:
    """A ``PutAgent``'s ``agent`` was stored, or ``result`` says why not."""

    put: PutAgent
    agent: Agent
    result: StoreResult[Agent]


@dataclass(frozen=True, slots=True)
class AgentRemoved:
    """A ``RemoveAgent`` was done in the store (``result``: whether the agent existed), or not."""

    remove: RemoveAgent
    result: StoreResult[bool]


@dataclass(frozen=True, slots=True)
class AgentsRead:
    """The stored agents, read after another replica announced a change."""

    result: StoreResult[list[Agent]]


@dataclass(frozen=True, slots=True)
class AgentRunsRead:
    """The ledger's latest runs of the agent a ``GetAgent`` asked about."""

    query: GetAgent
    result: StoreResult[list[RunRecord]]
