"""Turning a request into jobs: one for a shared type, one per enabled agent for a per-agent type.

The agents of a fan-out are queued round-robin from an offset that turns by one at every
fan-out of the type, so under a small ``max_concurrent`` the agents at the end of the
list are not always the ones that wait longest (the real backend's later scheduler did
exactly that). Plain functions over the orchestrator's state, used on its thread.
"""

from __future__ import annotations

from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.errors import InvalidValueError, UnknownAgentError
from archibald_actors.request_queue import PendingRequest
from archibald_actors.schedule import ScheduleEntry

__all__ = ["check_request", "drop_agents", "job_agents"]


def enabled_agents(state: OrchestratorState) -> list[str]:
    """Ids of the agents whose jobs run, in id order."""
    return sorted(a.agent_id for a in state.agents if a.enabled)


def check_request(state: OrchestratorState, entry: ScheduleEntry, agent_id: str | None) -> None:
    """Refuse a caller's request that names an agent it cannot run for.

    Raises:
        InvalidValueError: ``agent_id`` is given for a shared type, or names a disabled agent.
        UnknownAgentError: ``agent_id`` is not a stored agent.
    """
    if agent_id is None:
        return
    # An agent no one has is a 404 whatever the type: the agent is what is missing.
    agent = next((a for a in state.agents if a.agent_id == agent_id), None)
    if agent is None:
        raise UnknownAgentError(agent_id)
    if not entry.per_agent:
        raise InvalidValueError(
            "agentId", f"cannot be given for {entry.sync_type!r}: it is a shared type (one job, no agents)"
        )
    if not agent.enabled:
        raise InvalidValueError("agentId", f"{agent_id!r} is disabled: its jobs do not run")


def job_agents(state: OrchestratorState, entry: ScheduleEntry, agent_id: str | None) -> list[str | None]:
    """The agents a request becomes jobs for, in the order to queue them.

    ``[None]`` for a shared type; ``[agent_id]`` for one agent (if it may run); else every
    enabled agent, starting at the type's rotating offset.
    """
    if not entry.per_agent:
        return [None]
    agents = enabled_agents(state)
    if agent_id is not None:
        return [agent_id] if agent_id in agents else []
    if not agents:
        return []
    turn = state.rotation.get(entry.sync_type, 0)
    state.rotation[entry.sync_type] = turn + 1
    start = turn % len(agents)
    return [*agents[start:], *agents[:start]]


def drop_agents(state: OrchestratorState) -> list[PendingRequest]:
    """Drop the pending jobs of agents removed or disabled since they were queued; return them."""
    allowed = set(enabled_agents(state))
    return state.queue.drop(lambda r: r.agent_id is None or r.agent_id in allowed)
