"""``start_actors``: the start-up wiring of one service's actors, and the ``ActorSystem`` it returns.

From what the store held it computes the epoch, builds the addresses, the runner, the
history and the orchestrator's state, starts the supervisor (which starts the timers and
the orchestrator) and, on a cluster store, the link to the other replicas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pykka

from archibald_actors.actors.base import Address
from archibald_actors.actors.orchestrator import OrchestratorActor
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.request_rows import RequestRows
from archibald_actors.actors.runner import LoopProvider, SyncHandler, SyncRunner
from archibald_actors.actors.supervisor import ORCHESTRATOR, SupervisorActor
from archibald_actors.clock import Activity, Clock
from archibald_actors.cluster.link import ClusterLink
from archibald_actors.events import EventBus
from archibald_actors.ledger import History
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.store.base import ClusterStore, Store, StoredState

__all__ = ["ActorSystem", "start_actors"]

# The service's own logger: the staggered plan is logged as the service's start-up lines.
log = logging.getLogger("archibald_actors")


@dataclass(frozen=True)
class ActorSystem:
    """What the service keeps of the actors it started.

    Attributes:
        epoch: clock time of the shared epoch that slots count from.
        supervisor_ref: the running supervisor.
        addresses: the address of the orchestrator and of each type's timer, by name.
        runner: executes the handlers; joined when the service stops.
        cluster: the link to the other replicas, on a cluster store only.
    """

    epoch: float
    supervisor_ref: pykka.ActorRef[Any]
    addresses: dict[str, Address]
    runner: SyncRunner
    cluster: ClusterLink | None


def start_actors(
    *,
    schedule: Mapping[str, ScheduleEntry],
    handlers: Mapping[str, SyncHandler],
    clock: Clock,
    store: Store,
    stored: StoredState,
    stored_epoch: datetime,
    events: EventBus,
    supervisor_address: Address,
    coroutine_loop: LoopProvider,
    publish_view: Callable[[ScheduleView], None],
    retention_days: float,
) -> ActorSystem:
    """Start the supervisor, the timers, the orchestrator and, on a cluster store, the link.

    Args:
        schedule: the table to start from; the stored timing of a type wins.
        handlers: the sync handler of every type of ``schedule``.
        clock: the service clock; anchored here at ``stored_epoch``.
        store: durable state the actors write to.
        stored: what ``store.load()`` returned.
        stored_epoch: the wall-clock epoch the store holds (``store.ensure_epoch``).
        events: the bus the actors publish on.
        supervisor_address: attached here to the started supervisor.
        coroutine_loop: gives the loop coroutine handlers run on.
        publish_view: receives every schedule view the supervisor publishes.
        retention_days: runs older than this are pruned from the store's ledger.

    Returns:
        What the service keeps to talk to the actors and to stop them.
    """
    entries = {t: e.with_timing_of(stored.entries.get(t)) for t, e in schedule.items()}
    clock.anchor(stored_epoch)
    now = clock.now()  # one reading: every replica then places the grid alike
    epoch = now - (clock.wall(now) - stored_epoch).total_seconds()
    served = {t: epoch + offset for t, offset in stored.served.items() if t in entries}
    _log_plan(entries)

    activity = clock.activity
    fires_in_flight = Activity()
    addresses = {name: Address(name, activity) for name in [ORCHESTRATOR, *entries]}
    runner = SyncRunner(clock, addresses[ORCHESTRATOR], coroutine_loop)
    history = History(entries)
    for record in reversed(store.runs(limit=len(entries) * 100)):
        history.add(record)
    cluster_store = store if isinstance(store, ClusterStore) else None
    role = "follower" if cluster_store is not None else "standalone"
    state = OrchestratorState.fresh(
        entries,
        history,
        since=clock.wall(),
        rows=RequestRows(store, clock),
        leading=cluster_store is None,
    )

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
            record_sink=store.append_run,
            ledger=store.runs,
            claim_slot=_slot_claimer(store, epoch, served),
            fires_in_flight=fires_in_flight,
        )

    supervisor_ref = SupervisorActor.start(
        address=supervisor_address,
        clock=clock,
        epoch=epoch,
        entries=dict(entries),
        served=served,
        addresses=addresses,
        start_orchestrator=start_orchestrator,
        orchestrator_state=state,
        events=events,
        store=store,
        fires_in_flight=fires_in_flight,
        retention_days=retention_days,
        role=role,
        publish_view=publish_view,
    )
    supervisor_address.attach(supervisor_ref)
    cluster: ClusterLink | None = None
    if cluster_store is not None:
        cluster = ClusterLink(cluster_store, supervisor_address)
        cluster.start()
    return ActorSystem(epoch, supervisor_ref, addresses, runner, cluster)


def _slot_claimer(store: Store, epoch: float, served: Mapping[str, float]) -> Callable[[str, float], bool]:
    """Claim a slot in the store and remember it as the type's latest served slot.

    Served means claimed (about to run), not merely fired: a slot fired but still
    queued when the service stopped fires again after the restart, and the claim
    keeps it from ever running twice.
    """
    latest = dict(served)

    def claim(sync_type: str, slot: float) -> bool:
        if not store.claim_slot(sync_type, slot - epoch):
            return False
        if slot > latest.get(sync_type, float("-inf")):
            latest[sync_type] = slot
            store.save_served(sync_type, slot - epoch)
        return True

    return claim


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
