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
    "ANSWER_MODELS",
    "AgentId",
    "AnswerModel",
    "ClosedModel",
    "Count",
    "SyncTypeName",
    "Time",
    "absent",
    "known_type",
    "UPDATE_FIELDS",
    "AgentCounts",
    "BreakerPair",
    "BreakerStates",
    "ErpBreaker",
    "ErrorBody",
    "Event",
    "HealthDegraded",
    "HealthOk",
    "Job",
    "JobProgress",
    "QueuedRequest",
    "Run",
    "RunAccepted",
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


def absent(description: str | None = None, *, alias: str | None = None) -> Any:
    """A field a body may leave out (never null when present): not required, no default to show."""
    return Field(default=None, alias=alias, description=description)


class AnswerModel(BaseModel):
    """An answer shape: documented, open to keys added later."""

    model_config = ConfigDict(frozen=True)


class ClosedModel(BaseModel):
    """An answer shape no key is ever added to."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def known_type(value: str, info: ValidationInfo) -> str:
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
    interval_minutes: IntervalMinutes = absent(alias="intervalMinutes")
    start_delay_minutes: StartDelayMinutes = absent(alias="startDelayMinutes")
    enabled: StrictBool = absent("false pauses the type's timer")

    @field_validator("sync_type", mode="after")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        return known_type(value, info)

    @model_validator(mode="after")
    def _something_to_change(self) -> ScheduleUpdate:
        if not self.model_fields_set - {"sync_type"}:
            raise PydanticCustomError(
                "nothing_to_change",
                "intervalMinutes, startDelayMinutes or enabled is required: nothing to change",
            )
        return self


class ErrorBody(ClosedModel):
    """Every error answer: ``{"success": false, "error": "<names the field>"}``."""

    success: Literal[False]
    error: str


class ScheduleRow(AnswerModel):
    """One type's row of the schedule."""

    interval: IntervalMinutes
    start_delay: StartDelayMinutes = Field(alias="startDelay")
    unit: Literal["minutes"]
    enabled: bool
    next_run_at: Time | None = Field(alias="nextRunAt", description="null while paused or failed")


class Run(AnswerModel):
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


class RunningSync(AnswerModel):
    """The sync running now."""

    sync_type: SyncTypeName = Field(alias="syncType")
    trigger: Trigger
    scheduled_at: Time | None = Field(alias="scheduledAt")
    started_at: Time = Field(alias="startedAt")


class JobProgress(AnswerModel):
    """How far a running job says it is (its handler's latest ``ctx.progress``)."""

    done: float
    total: float | None
    message: str | None
    percentage: float | None = Field(description="done / total in percent; null without a total")


class Job(AnswerModel):
    """A job running now: a shared type's run, or one agent's share of a per-agent type."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId", description="null for a shared type")
    trigger: Trigger
    attempt: int = Field(ge=1)
    scheduled_at: Time | None = Field(alias="scheduledAt")
    started_at: Time = Field(alias="startedAt")
    progress: JobProgress | None


class QueuedRequest(AnswerModel):
    """A job waiting to run, in run order."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = absent("the agent of a per-agent job; null for a shared type", alias="agentId")
    trigger: Trigger
    requested_at: Time = Field(alias="requestedAt")


class AgentCounts(ClosedModel):
    """A per-agent type's agents, by the outcome of each one's latest run."""

    total: Count = Field(description="enabled agents")
    ok: Count
    failed: Count = Field(description="latest run failed or timed out")
    skipped: Count = Field(description="latest run skipped (needs login, breaker open)")
    running: Count


class TypeStatus(AnswerModel):
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
    fresh: bool = absent("false once the type has not synced successfully for too long")
    duplicates: Count = absent("requests for a slot already served (not run)")
    last_success_at: Time | None = absent(alias="lastSuccessAt")
    consecutive_failures: Count = absent(
        alias="consecutiveFailures", description="failed or timed-out runs in a row"
    )
    agents: AgentCounts | None = absent("per-agent types only (null for a shared type)")


class BreakerPair(AnswerModel):
    """One (type, lane) circuit breaker that is failing, open or half-open."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId", description="null: the service's own lane")
    state: Literal["closed", "open", "half_open"]
    failures: Count = Field(description="failed tries in a row")
    opened_at: Time = absent(alias="openedAt")
    until: Time = absent("when its cooldown ends (then one trial job decides)")


class ErpBreaker(AnswerModel):
    """The ERP-wide breaker: open while failures on many lanes hold every job."""

    state: Literal["closed", "open"]
    until: Time | None
    lanes: Count = Field(description="distinct lanes failing within the window")


class BreakerStates(AnswerModel):
    """Every breaker not closed and healthy, and the ERP-wide one."""

    pairs: list[BreakerPair]
    erp: ErpBreaker


class Status(AnswerModel):
    """GET /status: running sync, queue, hold, orchestrator, per-type state."""

    running: RunningSync | None = Field(description="the longest-running job")
    jobs: list[Job] = absent("every running job, longest-running first")
    queue: list[QueuedRequest]
    held: bool = Field(description="a hold of every lane is taken")
    held_agents: list[str] = absent("agents whose lane alone is held", alias="heldAgents")
    max_concurrent: int = absent("jobs that may run at once", alias="maxConcurrent")
    breakers: BreakerStates = absent()
    orchestrator: ChildState
    types: Annotated[dict[str, TypeStatus], WithJsonSchema({SERVICE_REF: "TypeStatuses"})]
    role: Literal["standalone", "leader", "follower"] = absent("this replica's part in a cluster")
    store: StoreState = absent("whether the durable store answers")
    abandoned_threads: Count = absent(
        alias="abandonedThreads",
        description="handler threads given up on (past their timeout or at stop) and still alive",
    )


class RunAccepted(ClosedModel):
    """POST /{syncType}/run: the request was queued (or merged into a pending one)."""

    sync_type: SyncTypeName = Field(alias="syncType")
    coalesced: bool


class HealthOk(ClosedModel):
    """GET /healthz 200."""

    status: Literal["ok"]
    role: Literal["leader", "follower"] = absent()


class HealthDegraded(ClosedModel):
    """GET /healthz 503: what is wrong (each key only when it applies)."""

    status: Literal["degraded"]
    failed: list[str] = absent("children that failed for good")
    stale: list[str] = absent("types without a success for too long")
    failing: list[str] = absent("types whose last 3 or more runs failed or timed out")
    store: Literal["unavailable"] = absent()
    breakers: list[str] = absent(
        'breakers not closed ("erp", a type, or "type/agent"), when the ERP-wide or a shared one is'
    )
    abandoned_threads: Count = absent(
        alias="abandonedThreads",
        description="present past the cap of abandoned handler threads",
    )
    role: Literal["leader", "follower"] = absent()
    children: dict[str, ChildState] = absent()
    error: str = absent("the service did not answer")


class Event(AnswerModel):
    """One event of GET /events (the SSE ``data``); the keys besides ``type`` depend on it.

    sync.completed, sync.failed, sync.cancelled and sync.skipped carry a ``Run``;
    sync.progress carries syncType, agentId, startedAt and a ``JobProgress``'s keys;
    sync.started and queue.changed carry ``queue`` (the types with jobs waiting, each
    once, in the order their first job would run) and ``queued`` (how many jobs wait).
    """

    type: EventType


#: Every answer model, for the document's components.
ANSWER_MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
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
    HealthOk,
    HealthDegraded,
    Event,
)
