"""The shapes of the agents' routes and the breaker reset: request bodies and answers.

Like :mod:`.shapes`, these models are the one source of each rule (strict types, unknown
keys refused) and of the OpenAPI document's schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from archibald_actors.web.shapes import (
    AgentId,
    AnswerModel,
    ClosedModel,
    Count,
    Run,
    SyncTypeName,
    Time,
    absent,
    known_type,
)

__all__ = [
    "AGENT_ANSWER_MODELS",
    "AGENT_FIELDS",
    "Agent",
    "AgentDetail",
    "AgentRemoved",
    "AgentTypeState",
    "AgentUpdate",
    "BreakerReset",
    "BreakerResetRequest",
    "RunRequest",
]

#: The fields PUT /agents/{agentId} takes.
AGENT_FIELDS = ("name", "enabled")


class AgentUpdate(BaseModel):
    """PUT /agents/{agentId}: add or change an agent; a field left out keeps its stored value
    (a new agent's: no name, enabled)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    name: str | None = absent("a display name, or null for none")
    enabled: StrictBool = absent("false keeps the agent's jobs from running")


class RunRequest(BaseModel):
    """POST /{syncType}/run (optional body): one agent's job; left out, every agent's (admin only
    for a per-agent type)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    agent_id: AgentId = absent(alias="agentId")


class BreakerResetRequest(BaseModel):
    """POST /breakers/reset (optional body): close the breakers of one type, one agent, one
    pair, or (neither, an empty body or ``{}``) every breaker, the ERP-wide one too."""

    # Validated with ``context={"sync_types": (...)}``, the type must be one of the service's.

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)

    sync_type: SyncTypeName = absent("one type's breakers; left out, every type's", alias="syncType")
    agent_id: AgentId = absent("one agent's breakers; left out, every lane's", alias="agentId")

    @field_validator("sync_type", mode="after")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        return known_type(value, info)


class Agent(AnswerModel):
    """An agent as stored (GET /agents lists them, PUT answers one)."""

    agent_id: AgentId = Field(alias="agentId")
    name: str | None
    enabled: bool


class AgentRemoved(ClosedModel):
    """DELETE /agents/{agentId}: the agent is gone (its runs stay in the ledger)."""

    agent_id: AgentId = Field(alias="agentId")
    removed: Literal[True]


class AgentTypeState(AnswerModel):
    """One type's state for one agent."""

    last_run: Run | None = Field(alias="lastRun", description="the agent's latest run of the type")
    last_success_at: Time | None = Field(alias="lastSuccessAt")
    next_run_at: Time | None = Field(alias="nextRunAt", description="null while the type or agent is paused")
    fresh: bool = Field(description="false once the agent has had no success for longer than the type allows")
    breaker: dict[str, Any] | None = Field(description="the agent's circuit breaker of the type, if any")


class AgentDetail(AnswerModel):
    """GET /agents/{agentId}: the agent and, per type it has runs of, its state."""

    agent_id: AgentId = Field(alias="agentId")
    name: str | None
    enabled: bool
    types: dict[str, AgentTypeState] = Field(description="by sync type (per-agent types only)")


class BreakerReset(ClosedModel):
    """POST /breakers/reset: how many breakers were open or half-open and are now closed."""

    reset: Count


AGENT_ANSWER_MODELS: tuple[type[BaseModel], ...] = (
    Agent,
    AgentRemoved,
    AgentTypeState,
    AgentDetail,
    BreakerReset,
)
