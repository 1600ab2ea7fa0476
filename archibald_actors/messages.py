"""Immutable messages between the actors, and the reply helper.

Commands are verb-noun, events past tense. A message that expects an answer carries a
``concurrent.futures.Future`` in ``reply``: the actor completes it, and the caller waits on
it with a timeout (or, on an event loop, awaits ``asyncio.wrap_future``) so nobody ever
blocks inside a message handler waiting for another actor.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from archibald_actors.agent import Agent
from archibald_actors.domain import Outcome, Trigger
from archibald_actors.schedule import ScheduleEntry

if TYPE_CHECKING:
    pass

T = TypeVar("T")
Reply = Future[Any]
#: A stored manual request: ``(id, syncType, trigger, requestedAt, agentId)``.
StoredRequest = tuple[int, str, str, datetime, str | None]


def answer(reply: Reply | None, value: object) -> None:
    """Complete ``reply`` with ``value`` unless the caller already gave up on it."""
    if reply is not None:
        with contextlib.suppress(InvalidStateError):
            reply.set_result(value)


def fail(reply: Reply | None, error: BaseException) -> None:
    """Complete ``reply`` with ``error`` unless the caller already gave up on it."""
    if reply is not None:
        with contextlib.suppress(InvalidStateError):
            reply.set_exception(error)


# --- every actor -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Crash:
    """Make the receiving actor raise, so it dies the way a real failure kills it."""


# --- timer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rearm:
    """Adopt ``entry`` (retune ``seq`` of its type) and arm again by the slot rule."""

    entry: ScheduleEntry
    seq: int


# --- orchestrator --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestSync:
    """Ask for one run of ``sync_type``; ``scheduled_at`` is the slot served (None if manual)."""

    sync_type: str
    trigger: Trigger
    scheduled_at: float | None
    requested_at: float
    missed: int = 0
    reply: Reply | None = None
    #: Fired for a clock wake-up: the receiver ends that fire's count in ``fires_in_flight``.
    from_wake: bool = False
    #: One agent's job of a per-agent type (None: a shared type, or every agent).
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    """Choose and start the next run, once every request of this instant has arrived."""


@dataclass(frozen=True, slots=True)
class RetryDue:
    """Time to queue try ``attempt`` of the job ``(sync_type, agent_id)`` that failed.

    ``scheduled_at`` is the slot the failed try served (claimed already), None if manual.
    """

    sync_type: str
    agent_id: str | None
    attempt: int
    scheduled_at: float | None


@dataclass(frozen=True, slots=True)
class BreakersDue:
    """A breaker's cooldown or the ERP-wide wait may have ended: apply it, then pick."""


@dataclass(frozen=True, slots=True)
class SyncFinished:
    """The runner's report that run ``run_id`` ended."""

    run_id: int
    outcome: Outcome
    error: str | None
    finished_at: float
    #: What the handler returned (a JSON-able dict), on success.
    result: dict[str, Any] | None = None
    #: Why the run was skipped (``NeedsLogin``'s message).
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RunTimedOut:
    """Run ``run_id`` reached its timeout."""

    run_id: int


@dataclass(frozen=True, slots=True)
class GraceExpired:
    """Run ``run_id`` did not end within the grace period after being stopped."""

    run_id: int


@dataclass(frozen=True, slots=True)
class Hold:
    """Take an exclusive hold; ``reply`` completes once no sync runs (on ``agent_id``'s lane only, if set)."""

    reply: Reply
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """Give back one exclusive hold (of ``agent_id``'s lane, if set)."""

    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReportStatus:
    """Answer the status, merging the supervisor's view of timers and children."""

    reply: Reply
    timers: dict[str, dict[str, Any]]
    orchestrator_state: str
    role: str
    store: str


@dataclass(frozen=True, slots=True)
class GetHistory:
    """Answer runs newest first, optionally of one type and of one agent, at most ``limit``;
    with ``before``, only runs that started strictly before it (paging back)."""

    reply: Reply
    sync_type: str | None
    limit: int
    agent_id: str | None = None
    before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Drain:
    """Start nothing new; ``reply`` completes once no sync runs (stopping it if asked)."""

    reply: Reply
    stop_running: bool


@dataclass(frozen=True, slots=True)
class SetLeading:
    """This replica now leads (runs syncs) or follows (only records requests)."""

    leading: bool


@dataclass(frozen=True, slots=True)
class LoadRequests:
    """Read the durable manual requests and queue those not seen yet."""


@dataclass(frozen=True, slots=True)
class RecordRuns:
    """Try again to append the runs the store could not take."""


@dataclass(frozen=True, slots=True)
class WaitIdle:
    """Complete ``reply`` once nothing runs or waits."""

    reply: Reply


# --- supervisor ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildFailed:
    """A child died; ``name`` is a sync type or ``"orchestrator"``."""

    name: str
    error: str


@dataclass(frozen=True, slots=True)
class RestartChild:
    """The backoff for ``name`` has passed: start it again."""

    name: str


@dataclass(frozen=True, slots=True)
class PruneLedger:
    """Time to drop ledger rows past the retention."""


@dataclass(frozen=True, slots=True)
class TimerArmed:
    """A timer's view after arming: slot served, next slot, slots newly missed, retune applied."""

    sync_type: str
    served: float | None
    next_slot: float | None
    missed: int
    retune_seq: int


@dataclass(frozen=True, slots=True)
class Retune:
    """Change one type's interval, start delay or enabled flag; None keeps a field."""

    sync_type: str
    interval_minutes: float | None
    start_delay_minutes: float | None
    enabled: bool | None
    reply: Reply


@dataclass(frozen=True, slots=True)
class GetSchedule:
    """Answer the schedule as it now stands, ``nextRunAt`` included."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class GetStatus:
    """Answer the full status (the supervisor forwards it to the orchestrator)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class LoadState:
    """Time to try reading the store's state again (load ``attempt``)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class LeadershipChanged:
    """This replica won or lost the cluster's leadership."""

    leading: bool


@dataclass(frozen=True, slots=True)
class ClusterChanged:
    """Another replica announced a change (``retune``, ``request``, ``agents`` or ``resync``)."""

    kind: str


# --- agents and breakers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentsChanged:
    """The agents as they now stand (stored), sent to the orchestrator after a load or a change."""

    agents: tuple[Agent, ...]


@dataclass(frozen=True, slots=True)
class ResetBreakers:
    """Close the circuit breakers of ``sync_type`` and/or ``agent_id`` (None: any); answers the count."""

    reply: Reply
    sync_type: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetAgents:
    """Answer every agent (``Agent.to_json()``), in id order."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class GetAgent:
    """Answer one agent with its per-type last run, next run and freshness; unknown: ``UnknownAgentError``."""

    agent_id: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class PutAgent:
    """Store an agent as given, except the fields named in ``keep`` ("name", "enabled"),
    which keep the stored value (a new agent's: no name, enabled); answers it as stored."""

    agent_id: str
    name: str | None
    enabled: bool
    reply: Reply
    keep: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    """Forget an agent and its pending requests (never its runs); unknown: ``UnknownAgentError``."""

    agent_id: str
    reply: Reply
