"""The JSON shapes of the planning routes (preview and suggest), for the OpenAPI document.

Like the models of :mod:`.shapes`, these only describe answers the planning code builds
as plain dicts (:mod:`archibald_actors.planning.report`); a test checks every real
answer against the document generated from them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from archibald_actors.domain import Outcome, Trigger
from archibald_actors.web.shapes import Count, SyncTypeName, Time

__all__ = [
    "PLANNING_MODELS",
    "PlanPreview",
    "PlannedCollision",
    "PlannedRun",
    "StaggerSuggestion",
    "WaitStats",
]

Seconds = float


class _Answer(BaseModel):
    """An answer shape: documented, open to keys added later."""

    model_config = ConfigDict(frozen=True)


class PlannedRun(_Answer):
    """A run of the simulation."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId", description="the agent of a per-agent job")
    trigger: Trigger
    scheduled_at: Time | None = Field(alias="scheduledAt", description="the slot served; null if manual")
    started_at: Time = Field(alias="startedAt")
    finished_at: Time | None = Field(alias="finishedAt", description="null: still running at the end")
    wait_seconds: Seconds = Field(alias="waitSeconds", ge=0, description="from its slot to its start")
    duration_seconds: Seconds | None = Field(alias="durationSeconds")
    outcome: Outcome | Literal["running"]
    behind: list[SyncTypeName] = Field(description="the types that ran between its slot and its start")


class CollisionWait(_Answer):
    """A run that waited behind another type at a collision."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId")
    wait_seconds: Seconds = Field(alias="waitSeconds", ge=0)
    behind: list[SyncTypeName]


class PlannedCollision(_Answer):
    """An instant where two or more types were due together, or a run waited behind another type."""

    at: Time
    minutes_after_epoch: float = Field(alias="minutesAfterEpoch", description="T+ on the slot grid")
    types: list[SyncTypeName] = Field(description="the types with a slot at that instant, in start order")
    waited: list[CollisionWait]


class WaitStats(_Answer):
    """One type's waits between slot and start, in seconds."""

    runs: Count = Field(description="runs that served a slot")
    collided: Count = Field(description="of those, runs that started late")
    mean: Seconds = Field(ge=0)
    max: Seconds = Field(ge=0)
    p99: Seconds = Field(ge=0)
    coalesced: Count = Field(description="slots merged into one already waiting")


class PlannedEntry(_Answer):
    """One type's row of the simulated table, with the durations assumed."""

    interval_minutes: float = Field(alias="intervalMinutes")
    start_delay_minutes: float = Field(alias="startDelayMinutes")
    priority: int
    enabled: bool
    timeout_seconds: float = Field(alias="timeoutSeconds")
    duration_seconds: list[float] = Field(
        alias="durationSeconds", min_length=2, max_length=2, description="[shortest, longest] run"
    )


class LiveRun(_Answer):
    """A run in progress on the service when the preview was made."""

    sync_type: SyncTypeName = Field(alias="syncType")
    agent_id: str | None = Field(alias="agentId")
    started_at: Time = Field(alias="startedAt")
    expected_end_at: Time = Field(alias="expectedEndAt")


class PlanPreview(_Answer):
    """POST /schedule/preview: the next hours simulated under the changed table."""

    from_: Time = Field(alias="from")
    until: Time = Field(description="where the simulation got to (before from + hours if incomplete)")
    complete: bool = Field(description="false: the time budget ended the simulation before the hours asked")
    hours: float
    epoch: Time
    seed: int
    agents: Count
    max_concurrent: int | None = Field(alias="maxConcurrent")
    schedule: dict[str, PlannedEntry]
    runs: list[PlannedRun]
    collisions: list[PlannedCollision]
    waits: dict[str, WaitStats]
    queued_at_end: Count = Field(alias="queuedAtEnd", description="requests still waiting at the end")
    running: list[LiveRun]


class DelayChange(_Answer):
    """A type's start delay now and suggested, in minutes."""

    current: float
    suggested: float


class WaitsBeforeAfter(_Answer):
    """A type's waits under the current table and under the suggestion."""

    priority: int
    before: WaitStats
    after: WaitStats


class CollisionCounts(_Answer):
    """Collisions under the current table and under the suggestion."""

    before: Count
    after: Count


class StaggerSuggestion(_Answer):
    """POST /schedule/suggest: start delays that keep the intervals and lower the waits."""

    hours: float = Field(description="simulated hours each candidate was scored over")
    collision_free: bool = Field(alias="collisionFree")
    complete: bool = Field(description="false: the time budget cut the search short")
    searched: Count = Field(description="tables simulated")
    message: str
    delays: dict[str, DelayChange]
    waits: dict[str, WaitsBeforeAfter]
    collisions: CollisionCounts
    unavoidable: list[list[SyncTypeName]] = Field(
        description="pairs of types that meet whatever their whole-minute delays"
    )


#: Every planning model, for the document's components.
PLANNING_MODELS: tuple[type[BaseModel], ...] = (PlanPreview, StaggerSuggestion)
