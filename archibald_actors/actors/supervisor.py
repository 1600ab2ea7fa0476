"""``SupervisorActor``: starts the timers and the orchestrator and restarts them one-for-one.

A child that dies is restarted after an exponential backoff on the service clock (0.1 s
doubling, at most 30 s) while it has had fewer than ``MAX_RESTARTS`` restarts in the last
``RESTART_WINDOW`` seconds; past that it stays down as ``failed`` and the others go on.

The supervisor's other jobs live beside it: the schedule (entries, retunes, the
published view) in ``ScheduleOwner``; the agents in ``AgentBook``; leadership (reading
the store at start and on election, then leading or following) in ``Role``; pruning in
``Pruner``. Every store
call runs on the ``StoreWorker``; none blocks this actor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pykka

from archibald_actors.actors.agent_book import AgentBook
from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.pruner import Pruner
from archibald_actors.actors.role import Role, StateLoader
from archibald_actors.actors.schedule_owner import ScheduleOwner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.actors.timer import TimerActor
from archibald_actors.clock import Activity, Clock, Wakeup
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    ChildFailed,
    ClusterChanged,
    GetSchedule,
    GetStatus,
    LeadershipChanged,
    LoadRequests,
    LoadState,
    PruneLedger,
    ReportStatus,
    RestartChild,
    Retune,
    TimerArmed,
    answer,
)
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.status import build_status
from archibald_actors.store.base import ClusterStore, Store
from archibald_actors.store_messages import (
    EntriesRead,
    EntryStored,
    StateLoaded,
)

__all__ = ["ORCHESTRATOR", "ChildInfo", "SupervisorActor"]

log = logging.getLogger("archibald_actors.supervisor")

ORCHESTRATOR = "orchestrator"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 30.0
#: Real seconds the supervisor waits for each child to stop.
CHILD_STOP_TIMEOUT = 5.0


@dataclass
class ChildInfo:
    """What the supervisor knows of one child."""

    state: str = "running"  # running | restarting | failed | standby (not firing: a follower's timer)
    restarts: int = 0
    recent: list[float] = field(default_factory=list)
    ref: pykka.ActorRef[Any] | None = None
    restart_wakeup: Wakeup | None = None


class SupervisorActor(TrackedActor):
    """Parent of every other actor of the service.

    Args:
        address: the supervisor's own address.
        clock: the service clock.
        entries: the table to start from (the stored timing wins once read).
        addresses: the address of the orchestrator and of each type's timer.
        start_orchestrator: starts an incarnation of the orchestrator.
        orchestrator_state: the orchestrator's state (read here while it is down).
        events: the service's event bus.
        store: the store (only the pruning thread calls it directly).
        worker: runs every other store call.
        cluster: the store shared with other replicas, if any.
        fires_in_flight: timer fires not yet handled by the orchestrator.
        retention_days: runs older than this are pruned.
        publish_view: receives every schedule view.
        on_booted: told the epoch once the store was first read.
        first_load: completed after the first read of the store, whether it worked or not.
    """

    def __init__(
        self,
        *,
        address: Address,
        clock: Clock,
        entries: Mapping[str, ScheduleEntry],
        addresses: Mapping[str, Address],
        start_orchestrator: Callable[[], pykka.ActorRef[Any]],
        orchestrator_state: OrchestratorState,
        events: EventBus,
        store: Store,
        worker: StoreWorker,
        cluster: ClusterStore | None,
        fires_in_flight: Activity,
        retention_days: float,
        publish_view: Callable[[ScheduleView], None],
        on_booted: Callable[[float], None],
        first_load: Future[bool],
    ) -> None:
        super().__init__(address, clock.activity)
        self._clock = clock
        self._addresses = addresses
        self._start_orchestrator = start_orchestrator
        self._orchestrator_state = orchestrator_state
        self._events = events
        self._fires = fires_in_flight
        self._pruner = Pruner(store, clock, address, retention_days)
        # The timers stand by until the store was read: they need its epoch and slots.
        self._children = {n: ChildInfo("running" if n == ORCHESTRATOR else "standby") for n in addresses}
        self._on_booted = on_booted
        self._first_load: Future[bool] | None = first_load
        self._worker = worker
        self._loader = StateLoader(worker, clock, address, len(entries))
        self._schedule = ScheduleOwner(
            entries=entries,
            clock=clock,
            address=address,
            timers=addresses,
            timer_state=self._timer_state,
            store=worker,
            cluster=cluster,
            events=events,
            publish_view=publish_view,
        )
        self._agents = AgentBook(
            clock=clock,
            address=address,
            store=worker,
            cluster=cluster,
            events=events,
            orchestrator=addresses[ORCHESTRATOR],
            schedule=self._schedule,
            breakers=lambda: orchestrator_state.breakers,
        )
        self._role = Role(
            shared=cluster is not None,
            loader=self._loader,
            schedule=self._schedule,
            orchestrator=addresses[ORCHESTRATOR],
            clock=clock,
            events=events,
            timers=self._run_timers,
            booted=self._booted,
            agents=self._agents.adopt,
        )

    # --- lifecycle ----------------------------------------------------------------

    def on_started(self) -> None:
        """Start the orchestrator (it answers while the store is read), then read the store."""
        self._start_child(ORCHESTRATOR)
        self._loader.load()
        self._schedule.refresh()

    def _loaded(self, message: StateLoaded) -> None:
        loaded = self._role.loaded(message)
        if self._first_load is not None and (loaded is not None or self._loader.failing):
            self._schedule.refresh()  # whoever waited for the start reads the schedule at once
            answer(self._first_load, loaded is not None)
            self._first_load = None

    def _booted(self, epoch: float) -> None:
        self._on_booted(epoch)
        self._pruner.prune()

    def _run_timers(self, run: bool) -> None:
        """Start every timer (this replica leads), or stop them all (it follows)."""
        if not run:
            self._stop_timers()
            return
        for sync_type in self._schedule.entries:
            child = self._children[sync_type]
            child.state, child.recent = "running", []
            self._start_child(sync_type)

    def _stop_timers(self) -> None:
        for sync_type in self._schedule.entries:
            child = self._children[sync_type]
            if child.restart_wakeup is not None:
                child.restart_wakeup.cancel()
                child.restart_wakeup = None
            if child.ref is not None:
                self._stop_child(sync_type, child)
                child.ref = None
            child.state = "standby"
            self._schedule.timer_gone(sync_type)

    def _stop_child(self, name: str, child: ChildInfo) -> None:
        assert child.ref is not None
        try:
            child.ref.stop(block=True, timeout=CHILD_STOP_TIMEOUT)
        except pykka.Timeout:
            log.error("%s did not stop within %s s", name, CHILD_STOP_TIMEOUT)

    def _cluster_changed(self, kind: str) -> None:
        """Another replica retuned the schedule, changed the agents or stored a request."""
        if kind in ("retune", "resync"):
            self._schedule.read_stored()
        if kind in ("agents", "resync"):
            self._agents.read_stored()
        if kind in ("request", "resync") and self._role.name == "leader":
            self._addresses[ORCHESTRATOR].tell(LoadRequests())

    def _start_child(self, name: str) -> None:
        ref: pykka.ActorRef[Any]
        if name == ORCHESTRATOR:
            ref = self._start_orchestrator()
        else:
            schedule = self._schedule
            assert schedule.epoch is not None
            ref = TimerActor.start(
                address=self._addresses[name],
                clock=self._clock,
                entry=schedule.entries[name],
                epoch=schedule.epoch,
                served=schedule.views[name].served,
                retune_seq=schedule.retune_seq[name],
                orchestrator=self._addresses[ORCHESTRATOR],
                supervisor=self._sv_address,
                fires_in_flight=self._fires,
            )
        child = self._children[name]
        child.ref = ref
        child.state = "running"
        self._addresses[name].attach(ref)

    def on_stop(self) -> None:
        """Stop the timers (no new requests), then the orchestrator."""
        self._loader.cancel()
        for name in [*self._schedule.entries, ORCHESTRATOR]:
            child = self._children[name]
            if child.restart_wakeup is not None:
                child.restart_wakeup.cancel()
            if child.ref is not None:
                self._stop_child(name, child)
        self._pruner.stop(CHILD_STOP_TIMEOUT)
        for running in list(self._orchestrator_state.jobs.values()):
            # The orchestrator may have been down at shutdown: the jobs must still be told.
            running.stop()
        if self._first_load is not None:
            answer(self._first_load, False)
        super().on_stop()

    # --- messages -----------------------------------------------------------------

    def handle(self, message: Any) -> None:
        """Dispatch on the message type; anything but a query may change the schedule view."""
        if self._agents.handle(message):
            return  # agents change no schedule
        self._dispatch(message)
        if not isinstance(message, GetSchedule | GetStatus):
            self._schedule.refresh()

    def _dispatch(self, message: Any) -> None:
        match message:
            case TimerArmed():
                self._schedule.timer_armed(message)
            case ChildFailed(name=name, error=error):
                self._child_failed(name, error)
            case RestartChild(name=name):
                self._restart(name)
            case PruneLedger():
                self._pruner.prune()
            case Retune():
                self._schedule.retune(message)
            case EntryStored():
                self._schedule.stored(message)
            case EntriesRead(result=result):
                self._schedule.adopt_read(result)
            case GetSchedule(reply=reply):
                answer(reply, self._schedule.view.rows(self._clock))
            case GetStatus(reply=reply):
                self._status(reply)
            case StateLoaded():
                self._loaded(message)
            case LoadState():
                self._loader.retry(message)
            case LeadershipChanged(leading=leading):
                self._role.elected(leading)
            case ClusterChanged(kind=kind):
                self._cluster_changed(kind)
            case _:
                super().handle(message)

    def _child_failed(self, name: str, error: str) -> None:
        child = self._children[name]
        child.ref = None
        now = self._clock.now()
        child.recent = [t for t in child.recent if now - t < RESTART_WINDOW]
        if len(child.recent) >= MAX_RESTARTS:
            child.state = "failed"
            log.error("%s failed %d times within %g s; leaving it down: %s",
                      name, len(child.recent) + 1, RESTART_WINDOW, error)
            self._events.publish("child.failed", name=name, error=error)
            if name != ORCHESTRATOR:
                self._schedule.timer_gone(name)
            return
        delay = min(BACKOFF_FIRST * 2 ** len(child.recent), BACKOFF_MAX)
        child.state = "restarting"
        child.recent.append(now)
        log.warning("%s died (%s); restarting in %.1f s", name, error, delay)
        address = self._sv_address
        child.restart_wakeup = self._clock.call_at(now + delay, lambda: address.tell(RestartChild(name)))

    def _restart(self, name: str) -> None:
        child = self._children[name]
        if child.restart_wakeup is not None:
            child.restart_wakeup.cancel()  # restarted early (on shutdown): the backoff is moot
        child.restart_wakeup = None
        if child.state != "restarting":
            return
        child.restarts += 1
        self._start_child(name)
        self._events.publish("child.restarted", name=name, restarts=child.restarts)

    # --- views --------------------------------------------------------------------

    def _timer_state(self, sync_type: str) -> str:
        state = self._children[sync_type].state
        if state == "running" and not self._schedule.entries[sync_type].enabled:
            return "paused"
        return state

    def _status(self, reply: Any) -> None:
        schedule = self._schedule
        timers = {
            t: {
                "nextRunAt": schedule.view.next_run_at(t, self._clock),
                "missed": schedule.views[t].missed,
                "timer": self._timer_state(t),
                "restarts": self._children[t].restarts,
            }
            for t in schedule.entries
        }
        store = "unavailable" if self._loader.failing or not self._worker.available else "ok"
        orchestrator = self._children[ORCHESTRATOR]
        if orchestrator.state != "running":
            # No incarnation is alive (restarts happen in this very thread), so nobody
            # else touches the state: read it here rather than wait for the restart.
            state, role, clock = self._orchestrator_state, self._role.name, self._clock
            status = build_status(state, schedule.entries, timers, orchestrator.state, role, clock, store)
            answer(reply, status)
            return
        query = ReportStatus(reply, timers, orchestrator.state, self._role.name, store)
        self._addresses[ORCHESTRATOR].tell(query)

