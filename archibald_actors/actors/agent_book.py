"""``AgentBook``: the supervisor's agents: read with the stored state, changed through the store.

A change (a put or a removal) is written by the store worker first and applied once the
write's result comes back as a message, as a retune is: an answer always says what the
store holds. Changes of one agent are chained: a put computed on top of another one still
being stored is not stored if that one was not (it would store half of it). After the
load and after every change the orchestrator is told every agent (``AgentsChanged``); in a
cluster the change is announced ("agents") and every replica reads the agents again.
Used on the supervisor's thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from archibald_actors.actors.base import Address
from archibald_actors.actors.schedule_owner import ScheduleOwner
from archibald_actors.actors.store_worker import Chain, StoreNotAnsweringError, StoreWorker, announce
from archibald_actors.agent import Agent
from archibald_actors.breaker import Breakers
from archibald_actors.clock import Clock
from archibald_actors.domain import RunRecord, iso
from archibald_actors.errors import InvalidValueError, StoreError, UnknownAgentError
from archibald_actors.events import EventBus
from archibald_actors.ledger import HISTORY_PER_TYPE
from archibald_actors.messages import (
    AgentsChanged,
    GetAgent,
    GetAgents,
    PutAgent,
    RemoveAgent,
    Reply,
    answer,
    fail,
)
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.status import is_stale
from archibald_actors.store.base import ClusterStore, Store
from archibald_actors.store_messages import (
    AgentRemoved,
    AgentRunsRead,
    AgentsRead,
    AgentStored,
    StoreResult,
)

__all__ = ["AgentBook", "agent_detail", "agent_types"]

log = logging.getLogger("archibald_actors.supervisor")

#: The kind of change announced to the other replicas of a cluster.
ANNOUNCED = "agents"


def agent_types(entries: Mapping[str, ScheduleEntry]) -> list[str]:
    """The types an agent has runs of: every type but the shared ones."""
    return [t for t, e in entries.items() if e.per_agent]


class AgentBook:
    """The agents as stored, and the changes in flight.

    Args:
        clock: the service clock.
        address: the supervisor's address (store results come back to it).
        store: the store worker.
        cluster: the store shared with other replicas, if any (changes are announced).
        events: the service's event bus.
        orchestrator: told every agent after the load and after every change.
        schedule: the supervisor's schedule (an agent's next runs and staleness thresholds).
        breakers: the orchestrator's circuit breakers (read, never changed, here: one
            pair's state is one dict lookup, whole under the GIL).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        address: Address,
        store: StoreWorker,
        cluster: ClusterStore | None,
        events: EventBus,
        orchestrator: Address,
        schedule: ScheduleOwner,
        breakers: Callable[[], Breakers] | None = None,
    ) -> None:
        self._clock = clock
        self._address = address
        self._store = store
        self._cluster = cluster
        self._events = events
        self._orchestrator = orchestrator
        self._schedule = schedule
        self._breakers = breakers
        self._agents: dict[str, Agent] | None = None  # None until the store was read
        #: When this replica first knew each agent: staleness counts from there.
        self._seen: dict[str, datetime] = {}
        self._storing: dict[str, list[tuple[PutAgent | RemoveAgent, Agent | None]]] = {}
        self._chains: dict[str, Chain] = {}

    def handle(self, message: object) -> bool:
        """Handle a message about agents; False if it is about something else."""
        match message:
            case GetAgents(reply=reply):
                self.listing(reply)
            case GetAgent():
                self.detail(message)
            case AgentRunsRead():
                self.runs_read(message)
            case PutAgent():
                self.put(message)
            case AgentStored():
                self.stored(message)
            case RemoveAgent():
                self.remove(message)
            case AgentRemoved():
                self.removed(message)
            case AgentsRead():
                self.adopt_read(message)
            case _:
                return False
        return True

    # --- the stored agents ------------------------------------------------------------

    def adopt(self, agents: Iterable[Agent]) -> None:
        """Take the agents as read from the store (at load, on election, or after a change
        announced by another replica); publish what differs from the ones known."""
        known, self._agents = self._agents, {a.agent_id: a for a in agents}
        now = self._clock.wall()
        self._seen = {agent_id: self._seen.get(agent_id, now) for agent_id in self._agents}
        if known is not None:
            changed = [a for a in self._agents.values() if known.get(a.agent_id) != a]
            gone = sorted(known.keys() - self._agents.keys())
            for agent in changed:
                self._events.publish("agent.changed", **agent.to_json())
            for agent_id in gone:
                self._events.publish("agent.removed", agentId=agent_id)
            if not changed and not gone:
                return
        self._tell_orchestrator()

    def read_stored(self) -> None:
        """Another replica changed the agents: read them (they come back as ``AgentsRead``)."""
        address = self._address
        self._store.submit(lambda store: store.agents(), lambda result: address.tell(AgentsRead(result)))

    def adopt_read(self, message: AgentsRead) -> None:
        """The agents read after an announcement; the listener announces a resync once it can."""
        if message.result.error is not None:
            log.error("cannot reload the agents: %s", message.result.error)
            return
        if self._agents is not None:  # else the load in progress reads them
            self.adopt(message.result.unwrap())

    def _tell_orchestrator(self) -> None:
        assert self._agents is not None
        self._orchestrator.tell(AgentsChanged(tuple(sorted(self._agents.values(), key=_by_id))))

    def _known(self, reply: Reply) -> dict[str, Agent] | None:
        """The agents, or None after failing ``reply``: the store was not read yet."""
        if self._agents is None:
            fail(reply, StoreError("the agents have not been read from the store yet; try again"))
        return self._agents

    # --- queries ------------------------------------------------------------------------

    def listing(self, reply: Reply) -> None:
        """Answer every agent in id order."""
        agents = self._known(reply)
        if agents is not None:
            answer(reply, [a.to_json() for a in sorted(agents.values(), key=_by_id)])

    def detail(self, query: GetAgent) -> None:
        """Read the agent's latest runs from the ledger; answered once they come back."""
        agents = self._known(query.reply)
        if agents is None:
            return
        if query.agent_id not in agents:
            fail(query.reply, UnknownAgentError(query.agent_id))
            return
        address, agent_id = self._address, query.agent_id
        limit = HISTORY_PER_TYPE * len(self._schedule.entries)
        self._store.submit(
            lambda store: store.runs(None, limit, agent_id=agent_id),
            lambda result: address.tell(AgentRunsRead(query, result)),
            for_caller=True,
            bounded=True,
        )

    def runs_read(self, message: AgentRunsRead) -> None:
        """Answer a ``GetAgent`` with the runs read (or the store's error: a 503)."""
        query = message.query
        agent = (self._agents or {}).get(query.agent_id)
        if message.result.error is not None:
            fail(query.reply, message.result.error)
        elif agent is None:  # removed while its runs were read
            fail(query.reply, UnknownAgentError(query.agent_id))
        else:
            since = self._seen.get(agent.agent_id, self._clock.wall())
            view, clock = self._schedule.view, self._clock
            next_runs = {t: view.next_run_at(t, clock) for t in self._schedule.entries}
            entries, runs = self._schedule.entries, message.result.unwrap()
            detail = agent_detail(agent, runs, entries, next_runs, since, clock.wall())
            if self._breakers is not None:
                breakers, now = self._breakers(), clock.now()
                for sync_type, state in detail["types"].items():
                    if breakers.state(sync_type, agent.agent_id, now) != "closed":
                        state["breaker"] = breakers.pair_json(
                            sync_type, agent.agent_id, now, lambda t: iso(clock.wall(t))
                        )
            answer(query.reply, detail)

    # --- changes ------------------------------------------------------------------------

    def put(self, message: PutAgent) -> None:
        """Store the agent (merged with the stored one for the fields ``keep`` names)."""
        agents = self._known(message.reply)
        if agents is None:
            return
        agent_id = message.agent_id
        storing = self._storing.get(agent_id, [])
        base = storing[-1][1] if storing else agents.get(agent_id)
        name = message.name
        enabled = message.enabled
        if "name" in message.keep:
            name = None if base is None else base.name
        if "enabled" in message.keep:
            enabled = True if base is None else base.enabled
        try:
            agent = Agent(agent_id, name, enabled)
        except InvalidValueError as exc:
            fail(message.reply, exc)
            return
        cluster, address = self._cluster, self._address

        def write(store: Store) -> Agent:
            stored = store.put_agent(agent.agent_id, agent.name, agent.enabled)
            announce(cluster, ANNOUNCED, {"agentId": agent_id})
            return stored

        self._submit(message, agent, write, lambda result: address.tell(AgentStored(message, agent, result)))

    def stored(self, message: AgentStored) -> None:
        """A put's write ended: apply it and answer the agent, or tell the caller why not."""
        put = message.put
        self._done(put.agent_id, put)
        if self._failed("put", put.agent_id, put.reply, message.result):
            return
        agent = message.result.unwrap()
        assert self._agents is not None  # a put is refused before the load
        if self._agents.get(agent.agent_id) != agent:
            self._agents[agent.agent_id] = agent
            self._seen.setdefault(agent.agent_id, self._clock.wall())
            self._events.publish("agent.changed", **agent.to_json())
            self._tell_orchestrator()
        answer(put.reply, agent.to_json())

    def remove(self, message: RemoveAgent) -> None:
        """Forget the agent in the store (its pending requests too, never its runs)."""
        if self._known(message.reply) is None:
            return
        agent_id, cluster, address = message.agent_id, self._cluster, self._address

        def write(store: Store) -> bool:
            existed = store.remove_agent(agent_id)
            if existed:
                announce(cluster, ANNOUNCED, {"agentId": agent_id})
            return existed

        self._submit(message, None, write, lambda result: address.tell(AgentRemoved(message, result)))

    def removed(self, message: AgentRemoved) -> None:
        """A removal's write ended: drop the agent and answer, or tell the caller why not."""
        remove = message.remove
        agent_id = remove.agent_id
        self._done(agent_id, remove)
        if self._failed("removal", agent_id, remove.reply, message.result):
            return
        assert self._agents is not None  # a removal is refused before the load
        if self._agents.pop(agent_id, None) is not None:  # also when another replica removed it first
            self._seen.pop(agent_id, None)
            self._events.publish("agent.removed", agentId=agent_id)
            self._tell_orchestrator()
        if message.result.unwrap():
            answer(remove.reply, {"agentId": agent_id, "removed": True})
        else:
            fail(remove.reply, UnknownAgentError(agent_id))

    def _submit(
        self,
        message: PutAgent | RemoveAgent,
        agent: Agent | None,
        write: Callable[[Store], Any],
        deliver: Callable[[StoreResult[Any]], None],
    ) -> None:
        agent_id = message.agent_id
        storing = self._storing.setdefault(agent_id, [])
        if not storing:
            self._chains[agent_id] = Chain()  # nothing in flight: earlier failures are behind us
        storing.append((message, agent))
        self._store.submit(write, deliver, for_caller=True, chain=self._chains[agent_id])

    def _done(self, agent_id: str, message: PutAgent | RemoveAgent) -> None:
        storing = self._storing.get(agent_id, [])
        if storing and storing[0][0] is message:
            storing.pop(0)
        if not storing:  # a thousand agents must not leave a thousand empty entries
            self._storing.pop(agent_id, None)
            self._chains.pop(agent_id, None)

    @staticmethod
    def _failed(what: str, agent_id: str, reply: Reply, result: StoreResult[Any]) -> bool:
        if result.error is None:
            return False
        # The caller is told either way; a store that is only slow is no error of ours.
        level = logging.WARNING if isinstance(result.error, StoreNotAnsweringError) else logging.ERROR
        log.log(level, "%s of agent %s not applied, the store failed: %s", what, agent_id, result.error)
        fail(reply, result.error)
        return True


def _by_id(agent: Agent) -> str:
    return agent.agent_id


def agent_detail(  # noqa: PLR0917 - one pure function of everything it shows
    agent: Agent,
    runs: list[RunRecord],
    entries: Mapping[str, ScheduleEntry],
    next_runs: Mapping[str, str | None],
    since: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The agent with, per type it has runs of, its ``lastRun``, ``lastSuccessAt``, ``nextRunAt``,
    ``fresh`` and ``breaker`` (null here; the book fills in a pair that is not closed).

    Args:
        agent: the agent.
        runs: its latest runs, newest first.
        entries: the schedule (which types, and their staleness thresholds).
        next_runs: ``nextRunAt`` per type (none is due for a disabled agent).
        since: when the agent became known: a type never synced reads stale from there.
        now: the wall time of reading.
    """
    types: dict[str, Any] = {}
    for sync_type in agent_types(entries):
        last = next((r for r in runs if r.sync_type == sync_type), None)
        success = next((r for r in runs if r.sync_type == sync_type and r.outcome == "success"), None)
        last_success = None if success is None else success.finished_at
        types[sync_type] = {
            "lastRun": None if last is None else last.to_json(),
            "lastSuccessAt": iso(last_success),
            "nextRunAt": next_runs[sync_type] if agent.enabled else None,
            "fresh": not is_stale(last_success, since, entries[sync_type], now),
            "breaker": None,
        }
    return {**agent.to_json(), "types": types}
