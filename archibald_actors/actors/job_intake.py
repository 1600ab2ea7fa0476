"""``JobIntake``: how the orchestrator turns requests into queued jobs.

A timer's request is queued at once; a caller's is checked (an agent it names must be
one whose jobs run, and only for a per-agent type), written to the store, and queued
once written. A request of a per-agent type without an agent becomes one job per enabled
agent (see ``fanout``). The stored requests of any replica, or of the last process, are
read back and queued the same way; when the agents change, the pending jobs of agents
removed or disabled are dropped (never their history). Mixed into ``OrchestratorActor``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from archibald_actors.actors.fanout import check_request, drop_agents, job_agents
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.request_store import RequestStore
from archibald_actors.agent import Agent
from archibald_actors.clock import Activity
from archibald_actors.errors import InvalidValueError, UnknownAgentError
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    RequestSync,
    StoredRequest,
    answer,
    fail,
)
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.store_messages import (
    StoreResult,
)

__all__ = ["JobIntake"]

log = logging.getLogger("archibald_actors.orchestrator")


class JobIntake:
    """Requests in, jobs queued."""

    _state: OrchestratorState
    _entries: Mapping[str, ScheduleEntry]
    _events: EventBus
    _requests: RequestStore
    _fires: Activity

    def _schedule_pick(self) -> None:
        raise NotImplementedError  # the actor's

    def _load_requests(self) -> None:
        raise NotImplementedError  # the actor's

    def _accept(self, request: RequestSync) -> None:
        if request.from_wake:
            self._fires.end()
        if request.reply is None:
            self._enqueue(request, None)
            return
        try:
            check_request(self._state, self._entries[request.sync_type], request.agent_id)
        except (InvalidValueError, UnknownAgentError) as exc:
            fail(request.reply, exc)
            return
        # A caller's request is durable (and, in a cluster, announced) before it is
        # acknowledged: it is queued once the store has it.
        self._requests.write(request)

    def _enqueue(self, request: RequestSync, row: int | None) -> None:
        """Queue the jobs of ``request`` (one, or one per enabled agent); ``row``: its stored row."""
        state = self._state
        if not state.leading:
            answer(request.reply, {"syncType": request.sync_type, "coalesced": False})
            return
        agents = job_agents(state, self._entries[request.sync_type], request.agent_id)
        sync_type, trigger, slot, requested_at = (
            request.sync_type, request.trigger, request.scheduled_at, request.requested_at
        )
        merged = [state.enqueue(sync_type, trigger, slot, requested_at, agent_id=agent) for agent in agents]
        coalesced = bool(merged) and all(merged)
        if row is not None:
            if agents:
                state.rows.note([(request.sync_type, agent) for agent in agents], row)
            else:
                self._requests.delete([row])  # no agent to run it for
        if agents:
            lateness = None if request.scheduled_at is None else request.requested_at - request.scheduled_at
            self._events.publish(
                "queue.changed",
                syncType=request.sync_type,
                agentId=request.agent_id,
                jobs=len(agents),
                trigger=request.trigger,
                coalesced=coalesced,
                missed=request.missed,
                fireLatenessSeconds=lateness,
                queue=state.queue.waiting_types(),
                queued=len(state.queue),
            )
        # Answered after the event: a caller that got its answer finds it counted in /metrics.
        answer(request.reply, {"syncType": request.sync_type, "coalesced": coalesced})
        self._schedule_pick()

    def _agents_changed(self, agents: tuple[Agent, ...]) -> None:
        """Adopt the agents as stored; the pending jobs of agents removed or disabled go."""
        state = self._state
        state.agents = agents
        for dropped in drop_agents(state):
            self._requests.forget(dropped.key)  # never its history: only what waits
            log.info("%s job of agent %s dropped: the agent is gone", dropped.sync_type, dropped.agent_id)
        # Requests for every agent stored before any agent was known can run now.
        self._load_requests()
        self._schedule_pick()

    def _queue_stored(self, result: StoreResult[list[StoredRequest]]) -> None:
        """Queue the stored requests not queued yet, if still leading."""
        state = self._state
        unseen = self._requests.unseen(result) if state.leading else []
        queued = False
        for row, sync_type, trigger, requested_at, agent_id in unseen:
            entry = self._entries.get(sync_type)
            agents = [] if entry is None else job_agents(state, entry, agent_id)
            if not agents:
                if entry is None or agent_id is not None:
                    self._requests.delete([row])  # its type or its agent is gone
                continue  # for every agent, none known yet: read again when agents change
            for agent in agents:
                state.enqueue(sync_type, trigger, None, requested_at, agent_id=agent)
            state.rows.note([(sync_type, agent) for agent in agents], row)
            queued = True
        if queued:
            self._schedule_pick()

