"""``AgentCalls``: the calls about agents and circuit breakers, in both forms like every call.

``SyncService`` has them through this class; see :mod:`.service_calls` for the two forms
(``*_future()`` to await on a loop, the blocking one elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from archibald_actors.actors.supervisor import ORCHESTRATOR
from archibald_actors.agent import Agent, check_agent_id
from archibald_actors.errors import InvalidValueError
from archibald_actors.loop_guard import blocking
from archibald_actors.messages import (
    GetAgent,
    GetAgents,
    PutAgent,
    RemoveAgent,
    ResetBreakers,
)
from archibald_actors.schedule import check_sync_type
from archibald_actors.service_calls import ASK_TIMEOUT, ServiceCalls, awaitable

__all__ = ["AGENT_FIELDS", "AgentCalls"]

#: The fields of an agent that ``put_agent(keep=...)`` may keep as stored.
AGENT_FIELDS = frozenset({"name", "enabled"})


class AgentCalls(ServiceCalls):
    """Agents (``put_agent``, ``remove_agent``, ``agents``, ``agent``) and ``reset_breakers``."""

    def agents_future(self) -> Future[list[dict[str, Any]]]:
        """Future of :meth:`agents`."""
        return self._send("supervisor", GetAgents)

    @blocking("service.agents()", awaitable("agents_future()"))
    def agents(self, timeout: float = ASK_TIMEOUT) -> list[dict[str, Any]]:
        """Every agent as stored, in id order: ``[{"agentId", "name", "enabled"}]``."""
        return self._wait(self.agents_future(), timeout, "agents")

    def agent_future(self, agent_id: str) -> Future[dict[str, Any]]:
        """Future of :meth:`agent`."""
        check_agent_id(agent_id)
        return self._send("supervisor", lambda reply: GetAgent(agent_id, reply))

    @blocking("service.agent()", awaitable("agent_future(...)"))
    def agent(self, agent_id: str, *, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
        """One agent with, per type it has runs of, ``lastRun``, ``lastSuccessAt``, ``nextRunAt``,
        ``fresh`` and ``breaker``.

        Raises:
            InvalidValueError: ``agent_id`` is not an agent id.
            UnknownAgentError: no agent has that id.
        """
        return self._wait(self.agent_future(agent_id), timeout, "agent")

    def put_agent_future(
        self, agent_id: str, name: str | None = None, enabled: bool = True, *, keep: Iterable[str] = ()
    ) -> Future[dict[str, Any]]:
        """Future of :meth:`put_agent`; fails with the validation error if a value is bad."""
        Agent(agent_id, name, enabled)  # the values' rules, checked before anything is sent
        kept = frozenset(keep)
        if not kept <= AGENT_FIELDS:
            raise InvalidValueError("keep", f"may name only name and enabled, got {sorted(kept)!r}")
        return self._send("supervisor", lambda reply: PutAgent(agent_id, name, enabled, reply, kept))

    @blocking("service.put_agent()", awaitable("put_agent_future(...)"))
    def put_agent(
        self,
        agent_id: str,
        name: str | None = None,
        enabled: bool = True,
        *,
        keep: Iterable[str] = (),
        timeout: float = ASK_TIMEOUT,
    ) -> dict[str, Any]:
        """Add an agent or replace it; returns it as stored (``{"agentId", "name", "enabled"}``).

        Args:
            agent_id: 1 to 64 of ``A-Z a-z 0-9 . _ @ -``.
            name: a display name, or None.
            enabled: False keeps the agent's jobs from running.
            keep: fields ("name", "enabled") to leave as stored instead (a new agent's: no
                name, enabled), as HTTP PUT does for the fields its body leaves out.
            timeout: real seconds to wait for the store and the actors.

        Raises:
            InvalidValueError: a value is of the wrong type (names the field).
            StoreError: the store failed or did not answer; nothing changed.
        """
        future = self.put_agent_future(agent_id, name, enabled, keep=keep)
        return self._wait(future, timeout, "put_agent")

    def remove_agent_future(self, agent_id: str) -> Future[dict[str, Any]]:
        """Future of :meth:`remove_agent`."""
        check_agent_id(agent_id)
        return self._send("supervisor", lambda reply: RemoveAgent(agent_id, reply))

    @blocking("service.remove_agent()", awaitable("remove_agent_future(...)"))
    def remove_agent(self, agent_id: str, *, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
        """Forget an agent and its pending jobs (never its runs); returns ``{"agentId", "removed"}``.

        Raises:
            UnknownAgentError: no agent has that id.
            StoreError: the store failed or did not answer; nothing changed.
        """
        return self._wait(self.remove_agent_future(agent_id), timeout, "remove_agent")

    def reset_breakers_future(self, sync_type: str | None = None, agent_id: str | None = None) -> Future[int]:
        """Future of :meth:`reset_breakers`; fails with the validation error if a value is bad."""
        if sync_type is not None:
            check_sync_type(sync_type, self.sync_types)
        if agent_id is not None:
            check_agent_id(agent_id)
        return self._send(ORCHESTRATOR, lambda reply: ResetBreakers(reply, sync_type, agent_id))

    @blocking("service.reset_breakers()", awaitable("reset_breakers_future(...)"))
    def reset_breakers(
        self, sync_type: str | None = None, agent_id: str | None = None, *, timeout: float = ASK_TIMEOUT
    ) -> int:
        """Close circuit breakers early (an admin's call); returns how many it closed (open or half-open).

        Args:
            sync_type: one type's breakers, or None for every type's.
            agent_id: one agent's breakers, or None for every lane's. With neither, every
                breaker closes, the ERP-wide one too.
            timeout: real seconds to wait for the orchestrator.

        Raises:
            UnknownSyncTypeError: ``sync_type`` is not one of the service's types.
            InvalidValueError: ``agent_id`` is not an agent id.
        """
        return int(self._wait(self.reset_breakers_future(sync_type, agent_id), timeout, "reset_breakers"))
