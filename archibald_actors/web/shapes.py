"""The JSON shapes of the API as pydantic models: the request body validated, every answer described.

``ScheduleUpdate`` validates POST /schedule. The answer models are never built at run
time (the core builds plain dicts, and the hot GET paths stay free of a second pass); they
exist so that :mod:`.openapi` generates the document from them, and a test checks every
real answer against that document. Field types come from :mod:`archibald_actors.validation`,
where each rule is written once.

Names that depend on the service (its sync types) are references the document fills in:
``SyncType`` (an enum of the types), ``Schedule`` and ``TypeStatuses`` (one property per type).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from archibald_actors.agent import AGENT_ID_PATTERN
from archibald_actors.domain import Outcome, Trigger
from archibald_actors.validation import IntervalMinutes, StartDelayMinutes, show

__all__ = [
    "AGENT_FIELDS",
    "ANSWER_MODELS",
    "UPDATE_FIELDS",
    "Agent",
    "AgentCounts",
    "AgentDetail",
    "AgentRemoved",
    "AgentTypeState",
    "AgentUpdate",
    "BreakerPair",
    "BreakerStates",
    "ErpBreaker",
    "BreakerReset",
    "BreakerResetRequest",
    "ErrorBody",
    "Event",
    "HealthDegraded",
    "HealthOk",
    "Job",
    "JobProgress",
    "QueuedRequest",
    "Run",
    "RunAccepted",
    "RunRequest",
    "RunningSync",
    "ScheduleRow",
    "ScheduleUpdate",
    "Status",
    "TypeStatus",
    "ref",
]

#: Context key of the service's sync types when validating a body.
SYNC_TYPES_CONTEXT = "sync_types"
#: The fields of POST /schedule that change something; at least one is required.
UPDATE_FIELDS = ("intervalMinutes", "startDelayMinutes", "enabled")
#: The fields of PUT /agents/{agentId}; those left out keep their stored value.
AGENT_FIELDS = ("name", "enabled")


def ref(name: str) -> dict[str, str]:
    """A JSON Schema reference to the component ``name`` of the document."""
    return {"$ref": f"#/components/schemas/{name}"}


#: Marks a reference to a component built per service (pydantic resolves every ``$ref`` it
#: sees, so the document turns this into one: see ``openapi.py``).
SERVICE_REF = "x-service-ref"
SyncTypeName = Annotated[str, WithJsonSchema({SERVICE_REF: "SyncType"})]
Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Count = Annotated[int, Field(ge=0)]
AgentId = Annotated[
    str,
    Field(
        strict=True,
        pattern=f"^{AGENT_ID_PATTERN.pattern}$",
        description="1 to 64 letters, digits and . _ @ -",
    ),
]
TimerState = Literal["running", "restarting", "paused", "failed", "standby"]
ChildState = Literal["running", "restarting", "failed"]
StoreState = Literal["ok", "unavailable"]
#: Every event type the service publishes (GET /events sends each as an SSE ``event:``).
EventType = Literal[
    "sync.started",
    "sync.completed",
    "sync.failed",
    "sync.cancelled",
    "sync.skipped",
    "sync.progress",
    "breaker.opened",
    "breaker.half_open",
    "breaker.closed",
    "queue.changed",
    "schedule.changed",
    "child.restarted",
    "child.failed",
    "hold.taken",
    "hold.released",
    "leadership.changed",
    "agent.changed",
    "agent.removed",
]


def _absent(description: str | None = None, *, alias: str | None = None) -> Any:
    """A field a body may leave out (never null when present): not required, no default to show."""
    return Field(default=None, alias=alias, description=description)


class _Answer(BaseModel):
    """An answer shape: documented, open to keys added later."""

    model_config = ConfigDict(frozen=True)


class _Closed(BaseModel):
    """An answer shape no key is ever added to."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _known_type(value: str, info: ValidationInfo) -> str:
    """``value`` if it is one of the types in the validation context (any type without one)."""
    types: Iterable[str] | None = (info.context or {}).get(SYNC_TYPES_CONTEXT)
    if types is not None and value not in types:
        raise PydanticCustomError(
            "unknown_sync_type", f"{show(value)} is unknown; expected one of {', '.join(types)}"
        )
    return value


class ScheduleUpdate(BaseModel):
    """POST /schedule: retune one type; at least one of intervalMinutes, startDelayMinutes, enabled."""

    # Validated with ``context={"sync_types": (...)}``, the type must be one of the service's.

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    sync_type: SyncTypeName = Field(alias="syncType")
    interval_minutes: IntervalMinutes = _absent(alias="intervalMinutes")
    start_delay_minutes: StartDelayMinutes = _absent(alias="startDelayMinutes")
    enabled: StrictBool = _absent("false pauses the type's timer")

    @field_validator("sync_type", mode="after")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        return _known_type(value, info)

    @model_validator(mode="after")
    def _something_to_change(self) -> ScheduleUpdate:
        if not self.model_fields_set - {"sync_type"}:
            raise PydanticCustomError(
                "nothing_to_change",
                "intervalMinutes, startDelayMinutes or enabled is required: nothing to change",
            )
        return self


class AgentUpdate(BaseModel):
    """PUT /agents/{agentId}: add or change an agent; a field left out keeps its stored value
    (a new agent's: no name, enabled)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    name: str | None = _absent("a display name, or null for none")
    enabled: StrictBool = _absent("false keeps the agent's jobs from running")


class RunRequest(BaseModel):
    """POST /{syncType}/run (optional body): one agent's job; left out, every agent's (admin only
    for a per-agent type)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    agent_id: AgentId = _absent(alias="agentId")


class BreakerResetRequest(BaseModel):
    """POST /breakers/reset (optional body): close the breakers of one type, one agent, one
    pair, or (neither, an empty body or ``{}``) every breaker, the ERP-wide one too."""

    # Validated with ``context={"sync_types": (...)}``, the type must be one of the service's.

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    sync_type: SyncTypeName = _absent("one type's breakers; left out, every type's", alias="syncType")
    agent_id: AgentId = _absent("one agent's breakers; left out, every lane's", alias="agentId")

    @field_validator("sync_type", mode="after")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        return _known_type(value, info)


class ErrorBody(_Closed):
    """Every error answer: ``{"success": false, "error": "<names the field>"}``."""

    success: Literal[False]
    error: str


class ScheduleRow(_Answer):
    """One type's row of the schedule."""

    interval: IntervalMinutes
    start_delay: StartDelayMinutes = Field(alias="startDelay")
    unit: Literal["minutes"]
    enabled: bool
    next_run_at: Time | None = Field(alias="nextRunAt", description="null while paused or failed")


class Run(_Answer):
    """A finished run (a history entry, a type's ``lastRun``, the data of sync.completed/failed)."""

    sync_type: SyncTypeName = Field(alias="syncType")
    trigger: Trigger
    scheduled_at: Time | None = Field(alias="scheduledAt", description="the slot served; null if manual")
    requested_at: Time = Field(alias="requestedAt")
    started_at: Time = Field(alias="startedAt")
    finished_at: Time = Field(alias="finishedAt")
    duration_ms: Count = Field(alias="durationMs")
    outcome: Outcome
    error: str | None
    agent_id: str | None = Field(alias="agentId", description="the agent a per-agent run was for")
    attempt: int = Field(ge=1, description="which try of one job this was (1 first)")
    result: dict[str, Any] | None = Field(description="what the handler returned")
    reason: str | None = Field(description="why the run was skipped")


class RunningSync(_Answer):
    """The sync running now."""

    sync_type: SyncTypeName = Field(alias="syncType")
    trigger: Trigger
    scheduled_at: Time | None = Field(alias="scheduledAt")
    started_at: Time = Field(alias="startedAt")


class JobProgress(_Answer):
    """How far a running job says it is (its handler's latest ``ctx.progress``)."""

    done: float
    total: float | None
    message: str | None
    percentage: float | None = Field(description="done / total in percent; null without a total")


class Job(_Answer):
    """A job running now: a shared type's run, or one agent's share of a per-agent type."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId", description="null for a shared type")
    trigger: Trigger
    attempt: int = Field(ge=1)
    scheduled_at: Time | None = Field(alias="scheduledAt")
    started_at: Time = Field(alias="startedAt")
    progress: JobProgress | None


class QueuedRequest(_Answer):
    """A job waiting to run, in run order."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = _absent("the agent of a per-agent job; null for a shared type", alias="agentId")
    trigger: Trigger
    requested_at: Time = Field(alias="requestedAt")


class AgentCounts(_Closed):
    """A per-agent type's agents, by the outcome of each one's latest run."""

    total: Count = Field(description="enabled agents")
    ok: Count
    failed: Count = Field(description="latest run failed or timed out")
    skipped: Count = Field(description="latest run skipped (needs login, breaker open)")
    running: Count


class TypeStatus(_Answer):
    """One type's state, counters and timer."""

    state: Literal["running", "queued", "idle"]
    last_run: Run | None = Field(alias="lastRun")
    next_run_at: Time | None = Field(alias="nextRunAt")
    runs: Count
    failures: Count
    missed: Count
    coalesced: Count
    timer: TimerState = Field(description='"standby" on a cluster follower')
    restarts: Count
    fresh: bool = _absent("false once the type has not synced successfully for too long")
    duplicates: Count = _absent("requests for a slot already served (not run)")
    last_success_at: Time | None = _absent(alias="lastSuccessAt")
    consecutive_failures: Count = _absent(
        alias="consecutiveFailures", description="failed or timed-out runs in a row"
    )
    agents: AgentCounts | None = _absent("per-agent types only (null for a shared type)")


class BreakerPair(_Answer):
    """One (type, lane) circuit breaker that is failing, open or half-open."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId", description="null: the service's own lane")
    state: Literal["closed", "open", "half_open"]
    failures: Count = Field(description="failed tries in a row")
    opened_at: Time = _absent(alias="openedAt")
    until: Time = _absent("when its cooldown ends (then one trial job decides)")


class ErpBreaker(_Answer):
    """The ERP-wide breaker: open while failures on many lanes hold every job."""

    state: Literal["closed", "open"]
    until: Time | None
    lanes: Count = Field(description="distinct lanes failing within the window")


class BreakerStates(_Answer):
    """Every breaker not closed and healthy, and the ERP-wide one."""

    pairs: list[BreakerPair]
    erp: ErpBreaker


class Status(_Answer):
    """GET /status: running sync, queue, hold, orchestrator, per-type state."""

    running: RunningSync | None = Field(description="the longest-running job")
    jobs: list[Job] = _absent("every running job, longest-running first")
    queue: list[QueuedRequest]
    held: bool = Field(description="a hold of every lane is taken")
    held_agents: list[str] = _absent("agents whose lane alone is held", alias="heldAgents")
    max_concurrent: int = _absent("jobs that may run at once", alias="maxConcurrent")
    breakers: BreakerStates = _absent()
    orchestrator: ChildState
    types: Annotated[dict[str, TypeStatus], WithJsonSchema({SERVICE_REF: "TypeStatuses"})]
    role: Literal["standalone", "leader", "follower"] = _absent("this replica's part in a cluster")
    store: StoreState = _absent("whether the durable store answers")
    abandoned_threads: Count = _absent(
        alias="abandonedThreads",
        description="handler threads given up on (past their timeout or at stop) and still alive",
    )


class Agent(_Answer):
    """An agent as stored (GET /agents lists them, PUT answers one)."""

    agent_id: AgentId = Field(alias="agentId")
    name: str | None
    enabled: bool


class AgentRemoved(_Closed):
    """DELETE /agents/{agentId}: the agent is gone (its runs stay in the ledger)."""

    agent_id: AgentId = Field(alias="agentId")
    removed: Literal[True]


class AgentTypeState(_Answer):
    """One type's state for one agent."""

    last_run: Run | None = Field(alias="lastRun", description="the agent's latest run of the type")
    last_success_at: Time | None = Field(alias="lastSuccessAt")
    next_run_at: Time | None = Field(alias="nextRunAt", description="null while the type or agent is paused")
    fresh: bool = Field(description="false once the agent has had no success for longer than the type allows")
    breaker: dict[str, Any] | None = Field(description="the agent's circuit breaker of the type, if any")


class AgentDetail(_Answer):
    """GET /agents/{agentId}: the agent and, per type it has runs of, its state."""

    agent_id: AgentId = Field(alias="agentId")
    name: str | None
    enabled: bool
    types: dict[str, AgentTypeState] = Field(description="by sync type (per-agent types only)")


class RunAccepted(_Closed):
    """POST /{syncType}/run: the request was queued (or merged into a pending one)."""

    sync_type: SyncTypeName = Field(alias="syncType")
    coalesced: bool


class BreakerReset(_Closed):
    """POST /breakers/reset: how many breakers were open or half-open and are now closed."""

    reset: Count


class HealthOk(_Closed):
    """GET /healthz 200."""

    status: Literal["ok"]
    role: Literal["leader", "follower"] = _absent()


class HealthDegraded(_Closed):
    """GET /healthz 503: what is wrong (each key only when it applies)."""

    status: Literal["degraded"]
    failed: list[str] = _absent("children that failed for good")
    stale: list[str] = _absent("types without a success for too long")
    failing: list[str] = _absent("types whose last 3 or more runs failed or timed out")
    store: Literal["unavailable"] = _absent()
    breakers: list[str] = _absent(
        'breakers not closed ("erp", a type, or "type/agent"), when the ERP-wide or a shared one is'
    )
    abandoned_threads: Count = _absent(
        alias="abandonedThreads",
        description="present past the cap of abandoned handler threads",
    )
    role: Literal["leader", "follower"] = _absent()
    children: dict[str, ChildState] = _absent()
    error: str = _absent("the service did not answer")


class Event(_Answer):
    """One event of GET /events (the SSE ``data``); the keys besides ``type`` depend on it.

    sync.completed, sync.failed, sync.cancelled and sync.skipped carry a ``Run``;
    sync.progress carries syncType, agentId, startedAt and a ``JobProgress``'s keys.
    """

    type: EventType


#: Every answer model, for the document's components.
ANSWER_MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    Agent,
    AgentRemoved,
    AgentTypeState,
    AgentDetail,
    ScheduleRow,
    Run,
    RunningSync,
    JobProgress,
    Job,
    QueuedRequest,
    AgentCounts,
    TypeStatus,
    BreakerPair,
    ErpBreaker,
    BreakerStates,
    Status,
    RunAccepted,
    BreakerReset,
    HealthOk,
    HealthDegraded,
    Event,
)
