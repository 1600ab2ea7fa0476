"""``OrchestratorActor``: runs syncs strictly one at a time, in priority order.

The actor only decides; handlers run in a ``SyncRunner`` and store calls in the
``StoreWorker``, and both report back as messages, so status queries, retunes and holds
are answered while a sync runs or the store hangs. Everything worth keeping lives in
``OrchestratorState``, which the supervisor hands to the next incarnation after a crash:
no accepted request is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.actors.orchestrator_state import OrchestratorState, Running
from archibald_actors.actors.request_store import RequestStore
from archibald_actors.actors.run_ledger import RunLedger
from archibald_actors.actors.runner import SyncHandler, SyncRunner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.clock import Activity, Clock
from archibald_actors.domain import Outcome
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    AgentsChanged,
    Booted,
    ChildFailed,
    Drain,
    GetHistory,
    GraceExpired,
    HistoryRead,
    Hold,
    LedgerRead,
    LoadRequests,
    Pick,
    RecordRuns,
    Release,
    Reply,
    ReportStatus,
    RequestStored,
    RequestSync,
    ResetBreakers,
    RunRecorded,
    RunTimedOut,
    SetLeading,
    SlotClaimed,
    StoredRequest,
    StoredRequestsRead,
    StoreResult,
    SyncFinished,
    WaitIdle,
    answer,
)
from archibald_actors.request_queue import PendingRequest
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.status import build_status, iso_at
from archibald_actors.store.base import ClusterStore

__all__ = ["OrchestratorActor", "OrchestratorState"]

log = logging.getLogger("archibald_actors.orchestrator")

#: Clock seconds a stopped run gets to end before it is abandoned.
STOP_GRACE_SECONDS = 30.0


class OrchestratorActor(TrackedActor):
    """Decides what runs next; never runs a handler itself."""

    def __init__(
        self,
        *,
        address: Address,
        supervisor: Address,
        clock: Clock,
        entries: Mapping[str, ScheduleEntry],
        handlers: Mapping[str, SyncHandler],
        state: OrchestratorState,
        runner: SyncRunner,
        events: EventBus,
        store: StoreWorker,
        cluster: ClusterStore | None,
        fires_in_flight: Activity,
    ) -> None:
        super().__init__(address, clock.activity)
        self._supervisor = supervisor
        self._clock = clock
        self._entries = entries
        self._handlers = handlers
        self._state = state
        self._runner = runner
        self._events = events
        self._ledger = RunLedger(state, store, address, clock, events)
        self._requests = RequestStore(state, store, address, clock, events, cluster=cluster)
        self._fires = fires_in_flight

    def on_started(self) -> None:
        """A new incarnation picks up where the last one (or the last process) stopped."""
        self._load_requests()
        self._schedule_pick()

    def handle(self, message: Any) -> None:
        """Dispatch on the message type."""
        match message:
            case RequestSync():
                self._accept(message)
            case Pick():
                self._state.pick_armed = False
                self._schedule_pick()
            case SyncFinished(run_id=run_id, outcome=outcome, error=error):
                self._finished(run_id, outcome, error)
            case RunTimedOut(run_id=run_id):
                self._timed_out(run_id)
            case GraceExpired(run_id=run_id):
                self._runner.abandon(run_id)
                self._finished(run_id, "timeout", "did not stop within the grace period; abandoned")
            case Hold(reply=reply):
                self._hold(reply)
            case Release():
                self._state.holds = max(0, self._state.holds - 1)
                if self._state.holds == 0:
                    self._events.publish("hold.released")
                    self._schedule_pick()
            case ReportStatus():
                self._status(message)
            case SetLeading(leading=leading):
                self._set_leading(leading)
            case LoadRequests():
                self._load_requests()
            case GetHistory():
                self._ledger.read_history(message)
            case Drain(reply=reply, stop_running=stop_running):
                self._drain(reply, stop_running)
            case WaitIdle(reply=reply):
                if self._state.idle:
                    answer(reply, True)
                else:
                    self._state.idle_waiters.append(reply)
            case AgentsChanged(agents=agents):
                self._state.agents = agents
            case ResetBreakers(reply=reply):
                answer(reply, 0)  # no breakers yet
            case _:
                self._handle_store_result(message)

    def _handle_store_result(self, message: Any) -> None:
        """The store's answers to the calls made for this actor (or its last incarnation)."""
        match message:
            case Booted(epoch=epoch, served=served, runs=runs):
                self._state.boot(epoch, served, runs)
            case RequestStored(request=request):
                if self._requests.written(message):
                    self._enqueue(request)
            case StoredRequestsRead(result=result):
                self._queue_stored(result)
            case SlotClaimed():
                self._claimed(message)
            case RunRecorded() | RecordRuns() | HistoryRead() | LedgerRead():
                self._ledger.handle(message)
            case _:
                super().handle(message)

    # --- requests and picking -----------------------------------------------------

    def _accept(self, request: RequestSync) -> None:
        if request.from_wake:
            self._fires.end()
        if request.reply is None:
            self._enqueue(request)
            return
        # A caller's request is durable (and, in a cluster, announced) before it is
        # acknowledged: it is queued once the store has it.
        self._requests.write(request)

    def _enqueue(self, request: RequestSync) -> None:
        state = self._state
        if not state.leading:
            answer(request.reply, {"syncType": request.sync_type, "coalesced": False})
            return
        coalesced = state.enqueue(
            request.sync_type, request.trigger, request.scheduled_at, request.requested_at
        )
        lateness = None if request.scheduled_at is None else request.requested_at - request.scheduled_at
        self._events.publish(
            "queue.changed",
            syncType=request.sync_type,
            trigger=request.trigger,
            coalesced=coalesced,
            missed=request.missed,
            fireLatenessSeconds=lateness,
            queue=[r.sync_type for r in state.queue.ordered()],
        )
        # Answered after the event: a caller that got its answer finds it counted in /metrics.
        answer(request.reply, {"syncType": request.sync_type, "coalesced": coalesced})
        self._schedule_pick()

    def _schedule_pick(self) -> None:
        """Pick now, or as soon as every request of this instant has arrived.

        Timers of one instant deliver their requests one after another; picking before
        the last has arrived would let arrival order beat priority. A request a wake-up
        fired that is still on its way (counted in ``fires_in_flight``) calls this again
        when it arrives. A wake-up due now that has not run yet gets a pick armed on the
        clock for this instant, which runs after it.
        """
        state = self._state
        if state.blocked or not len(state.queue):
            self._notify_idle()
            return
        if self._fires.count > 0:
            return
        if not self._clock.has_due():
            self._pick()
            return
        if state.pick_armed:
            return
        state.pick_armed = True
        address = self._sv_address
        self._clock.call_at(self._clock.now(), lambda: address.tell(Pick()))

    def _pick(self) -> None:
        state = self._state
        if state.blocked:
            return
        request = state.queue.pop_next()
        if request is None:
            self._notify_idle()
        elif request.scheduled_at is None or request.scheduled_at == request.claimed:
            self._start(request)
        else:
            self._requests.claim(request)

    def _start(self, request: PendingRequest) -> None:
        state = self._state
        run_id = state.begin_run()
        self._requests.forget(request.sync_type)
        now = self._clock.now()
        handler = self._handlers[request.sync_type]
        stop = self._runner.start(
            run_id,
            handler,
            {
                "sync_type": request.sync_type,
                "trigger": request.trigger,
                "scheduled_at": request.scheduled_at,
            },
        )
        running = Running.of(run_id, request, now, stop)
        timeout = self._entries[request.sync_type].timeout_seconds
        address = self._sv_address
        running.deadline = self._clock.call_at(now + timeout, lambda: address.tell(RunTimedOut(run_id)))
        state.running = running
        self._events.publish(
            "sync.started",
            syncType=running.sync_type,
            trigger=running.trigger,
            scheduledAt=iso_at(self._clock, running.scheduled_at),
            startedAt=iso_at(self._clock, now),
            queue=[r.sync_type for r in state.queue.ordered()],
        )

    def _claimed(self, message: SlotClaimed) -> None:
        state = self._state
        request, store_failed = self._requests.settle(message)
        if store_failed:
            return
        if request is not None and state.leading:
            if state.holds:  # a hold came meanwhile: the run waits for it, claimed
                state.queue.restore(request)
            else:
                # Decided before any drain that came meanwhile: the slot is served now,
                # so it runs (a drain that stops runs stops it at once).
                self._start(request)
                if state.draining and state.drain_stops and state.running is not None:
                    state.running.stop()
                return
        if state.draining:
            for reply in state.drain_waiters:
                answer(reply, True)
            state.drain_waiters.clear()
        self._schedule_pick()

    # --- ends of runs -------------------------------------------------------------

    def _timed_out(self, run_id: int) -> None:
        running = self._state.running
        if running is None or running.run_id != run_id or running.timed_out:
            return
        running.timed_out = True
        log.warning("%s sync timed out; stopping it", running.sync_type)
        running.stop()
        address = self._sv_address
        running.deadline = self._clock.call_at(
            self._clock.now() + STOP_GRACE_SECONDS, lambda: address.tell(GraceExpired(run_id))
        )

    def _finished(self, run_id: int, outcome: Outcome, error: str | None) -> None:
        state = self._state
        running = state.running
        if running is None or running.run_id != run_id:
            return  # a late report from a run already written off
        if running.deadline is not None:
            running.deadline.cancel()
        if running.timed_out:
            timeout = self._entries[running.sync_type].timeout_seconds
            outcome, error = "timeout", error if outcome == "timeout" else f"timed out after {timeout:g} s"
        now = self._clock.now()
        record = running.record(outcome, error, self._clock, now)
        state.end_run(record)
        self._ledger.record(record, publish_now=bool(state.hold_waiters))
        if running.stopped_for_hold and outcome == "cancelled":
            # Stopped to make way for a user action: it resumes once the hold is released.
            slot = running.scheduled_at
            state.queue.add(running.sync_type, "retry", slot, now, running=None, claimed=slot)
        for reply in [*state.hold_waiters, *state.drain_waiters]:
            answer(reply, True)
        state.hold_waiters.clear()
        state.drain_waiters.clear()
        self._schedule_pick()

    def _hold(self, reply: Reply) -> None:
        state = self._state
        state.holds += 1
        if state.holds == 1:
            self._events.publish("hold.taken")
        if state.running is None:
            answer(reply, True)
            return
        state.running.stopped_for_hold = True
        state.running.stop()
        state.hold_waiters.append(reply)

    def _set_leading(self, leading: bool) -> None:
        state = self._state
        state.leading = leading
        if leading:
            self._load_requests()
            return
        # Deposed: whatever waits here is the next leader's now (timers catch up on its
        # side, manual requests stay rows in the store); a run in progress is stopped.
        state.queue.clear()
        state.rows.forget()
        if state.running is not None:
            state.running.stop()
        self._notify_idle()

    def _load_requests(self) -> None:
        """Read the stored manual requests (written by any replica, or before a restart)."""
        if self._state.leading:
            self._requests.read_stored()

    def _queue_stored(self, result: StoreResult[list[StoredRequest]]) -> None:
        """Queue the stored requests not queued yet, if still leading."""
        state = self._state
        unseen = self._requests.unseen(result) if state.leading else []
        for sync_type, trigger, requested_at in unseen:
            state.enqueue(sync_type, trigger, None, requested_at)
        if unseen:
            self._schedule_pick()

    def _drain(self, reply: Reply, stop_running: bool) -> None:
        state = self._state
        state.draining = True
        state.drain_stops = state.drain_stops or stop_running
        if state.running is None and state.claiming is None:
            answer(reply, True)
            return
        if stop_running and state.running is not None:
            state.running.stop()
        state.drain_waiters.append(reply)

    def _notify_idle(self) -> None:
        state = self._state
        if state.idle and state.idle_waiters:
            for reply in state.idle_waiters:
                answer(reply, True)
            state.idle_waiters.clear()

    # --- views --------------------------------------------------------------------

    def _status(self, query: ReportStatus) -> None:
        def report() -> None:
            state, entries, clock = self._state, self._entries, self._clock
            status = build_status(
                state, entries, query.timers, query.orchestrator_state, query.role, clock, query.store
            )
            answer(query.reply, status)

        if self._state.leading:
            report()
        else:
            # A follower runs nothing itself: its last runs are the leader's, read from the ledger.
            self._ledger.refresh_then(report)

    def on_stop(self) -> None:
        """On shutdown, ask the running sync to stop and disarm its deadline."""
        running = self._state.running
        if running is not None:
            if running.deadline is not None:
                running.deadline.cancel()
            running.stop()
        super().on_stop()

    def on_death(self, error: str) -> None:
        """Tell the supervisor; the state object waits for the next incarnation."""
        self._state.pick_armed = False
        self._supervisor.tell(ChildFailed("orchestrator", error))

