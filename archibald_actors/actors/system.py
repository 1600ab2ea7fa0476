"""``start_actors``: the start-up wiring of one service's actors, and the ``ActorSystem`` it returns.

It builds the addresses, the store worker, the runner and the orchestrator's state,
starts the supervisor (which starts the orchestrator, reads the store, then starts the
timers) and, on a store shared by a cluster, the link to the other replicas. Nothing
here touches the store: a store that is down at start only delays the timers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pykka

from archibald_actors.actors.base import Address
from archibald_actors.actors.orchestrator import OrchestratorActor
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.runner import LoopProvider, SyncHandler, SyncRunner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.actors.supervisor import ORCHESTRATOR, SupervisorActor
from archibald_actors.breaker import DEFAULT_BREAKERS, BreakerPolicy, Breakers
from archibald_actors.clock import Activity, Clock
from archibald_actors.cluster.link import ClusterLink
from archibald_actors.events import EventBus
from archibald_actors.ledger import History
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.store.base import Store

__all__ = ["ActorSystem", "start_actors"]

# The service's own logger: the staggered plan is logged as the service's start-up lines.
log = logging.getLogger("archibald_actors")


@dataclass(frozen=True)
class ActorSystem:
    """What the service keeps of the actors it started.

    Attributes:
        supervisor_ref: the running supervisor.
        addresses: the address of the orchestrator and of each type's timer, by name.
        runner: executes the handlers; joined when the service stops.
        store_worker: runs the store calls; closed when the service stops.
        cluster: the link to the other replicas, on a shared store only.
        first_load: True once the store was first read, False if that failed (it is
            read again with a backoff meanwhile).
    """

    supervisor_ref: pykka.ActorRef[Any]
    addresses: dict[str, Address]
    runner: SyncRunner
    store_worker: StoreWorker
    cluster: ClusterLink | None
    first_load: Future[bool]


def start_actors(
    *,
    schedule: Mapping[str, ScheduleEntry],
    handlers: Mapping[str, SyncHandler],
    clock: Clock,
    store: Store,
    events: EventBus,
    supervisor_address: Address,
    coroutine_loop: LoopProvider,
    publish_view: Callable[[ScheduleView], None],
    on_booted: Callable[[float], None],
    retention_days: float,
    max_concurrent: int = 1,
    breaker_policy: BreakerPolicy = DEFAULT_BREAKERS,
) -> ActorSystem:
    """Start the supervisor, the orchestrator, the store worker and, on a shared store, the link.

    Args:
        schedule: the table to start from; the stored timing of a type wins.
        handlers: the sync handler of every type of ``schedule``.
        clock: the service clock; anchored at the stored epoch once the store was read.
        store: durable state the actors read and write (on the store worker).
        events: the bus the actors publish on.
        supervisor_address: attached here to the started supervisor.
        coroutine_loop: gives the loop coroutine handlers run on.
        publish_view: receives every schedule view the supervisor publishes.
        on_booted: told the epoch (clock time) once the store was first read.
        retention_days: runs older than this are pruned from the store's ledger.
        max_concurrent: jobs that may run at once (never two on one lane).
        breaker_policy: when circuit breakers open, and for how long.

    Returns:
        What the service keeps to talk to the actors and to stop them.
    """
    entries = dict(schedule)
    _log_plan(entries)
    activity = clock.activity
    fires_in_flight = Activity()
    addresses = {name: Address(name, activity) for name in [ORCHESTRATOR, *entries]}
    runner = SyncRunner(clock, addresses[ORCHESTRATOR], coroutine_loop)
    worker = StoreWorker(store, activity)
    cluster_store = store.cluster()
    # Until the store was read (and, in a cluster, an election won) nothing runs.
    state = OrchestratorState.fresh(entries, History(entries), since=clock.wall(), leading=False)
    state.breakers = Breakers(breaker_policy)
    # The orchestrator reads the type's next slot (a retry never reaches it) from the view.
    views: list[ScheduleView] = []

    def publish(view: ScheduleView) -> None:
        views[:] = [view]
        publish_view(view)

    def start_orchestrator() -> pykka.ActorRef[Any]:
        return OrchestratorActor.start(
            address=addresses[ORCHESTRATOR],
            supervisor=supervisor_address,
            clock=clock,
            entries=entries,
            handlers=handlers,
            state=state,
            runner=runner,
            events=events,
            store=worker,
            cluster=cluster_store,
            fires_in_flight=fires_in_flight,
            max_concurrent=max_concurrent,
            schedule_view=lambda: views[0] if views else None,
        )

    first_load: Future[bool] = Future()
    supervisor_ref = SupervisorActor.start(
        address=supervisor_address,
        clock=clock,
        entries=entries,
        addresses=addresses,
        start_orchestrator=start_orchestrator,
        orchestrator_state=state,
        events=events,
        store=store,
        worker=worker,
        cluster=cluster_store,
        fires_in_flight=fires_in_flight,
        retention_days=retention_days,
        publish_view=publish,
        on_booted=on_booted,
        first_load=first_load,
    )
    supervisor_address.attach(supervisor_ref)
    cluster: ClusterLink | None = None
    if cluster_store is not None:
        cluster = ClusterLink(cluster_store, supervisor_address)
        cluster.start()
    return ActorSystem(supervisor_ref, addresses, runner, worker, cluster, first_load)


def _log_plan(entries: Mapping[str, ScheduleEntry]) -> None:
    log.info("[SyncService] Starting staggered auto-sync...")
    for entry in entries.values():
        state = "" if entry.enabled else " (paused)"
        log.info(
            "  %s: %gmin (T+%g)%s",
            entry.sync_type.capitalize() if entry.sync_type != "ddt" else "DDT",
            entry.interval_minutes,
            entry.start_delay_minutes,
            state,
        )
    log.info("[SyncService] Staggered auto-sync configured")
