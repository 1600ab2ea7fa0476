"""``OrchestratorActor``: runs jobs in priority order, on lanes, within a budget.

A job is one run of a shared type, or of one agent's share of a per-agent type. It runs
on a lane (the ERP session it uses: the service's own, or its agent's); never two jobs
on one lane, and at most ``max_concurrent`` at once (1 by default: strictly one at a
time). The actor only decides; handlers run in a ``SyncRunner`` and store calls in the
``StoreWorker``, and both report back as messages, so status queries, retunes and holds
are answered while jobs run or the store hangs. Everything worth keeping lives in
``OrchestratorState``, which the supervisor hands to the next incarnation after a crash:
no accepted request is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.actors.job_control import STOP_GRACE_SECONDS, JobControl
from archibald_actors.actors.job_intake import JobIntake
from archibald_actors.actors.orchestrator_state import OrchestratorState, Running
from archibald_actors.actors.recovery import Recovery
from archibald_actors.actors.request_store import RequestStore
from archibald_actors.actors.run_ledger import RunLedger
from archibald_actors.actors.runner import SyncHandler, SyncRunner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.agent import Agent
from archibald_actors.clock import Activity, Clock
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    AgentsChanged,
    BreakersDue,
    ChildFailed,
    Drain,
    GetHistory,
    GraceExpired,
    Hold,
    LoadRequests,
    Pick,
    RecordRuns,
    Release,
    ReportStatus,
    RequestSync,
    ResetBreakers,
    RetryDue,
    RunTimedOut,
    SetLeading,
    SyncFinished,
    WaitIdle,
    answer,
)
from archibald_actors.request_queue import PendingRequest
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.status import build_status, iso_at
from archibald_actors.store.base import ClusterStore
from archibald_actors.store_messages import (
    Booted,
    HistoryRead,
    LedgerRead,
    RequestStored,
    RunRecorded,
    SlotClaimed,
    StoredRequestsRead,
)

__all__ = ["STOP_GRACE_SECONDS", "OrchestratorActor", "OrchestratorState"]

log = logging.getLogger("archibald_actors.orchestrator")


class OrchestratorActor(Recovery, JobIntake, JobControl, TrackedActor):
    """Decides what runs next, and on which lane; never runs a handler itself."""

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
        max_concurrent: int = 1,
        schedule_view: Callable[[], ScheduleView | None] = lambda: None,
    ) -> None:
        super().__init__(address, clock.activity)
        self._supervisor = supervisor
        self._clock = clock
        self._entries = entries
        self._handlers = handlers
        self._state = state
        state.max_concurrent = max_concurrent
        self._runner = runner
        self._events = events
        self._ledger = RunLedger(state, store, address, clock, events)
        self._requests = RequestStore(state, store, address, clock, events, cluster=cluster)
        self._fires = fires_in_flight
        self._schedule_view = schedule_view
        self._enabled_of: tuple[tuple[Agent, ...], frozenset[str]] = ((), frozenset())

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
            case SyncFinished():
                self._finished(message)
            case RunTimedOut(run_id=run_id):
                self._timed_out(run_id)
            case GraceExpired(run_id=run_id):
                self._runner.abandon(run_id)
                error = "did not stop within the grace period; abandoned"
                self._finished(SyncFinished(run_id, "timeout", error, self._clock.now()))
            case Hold(reply=reply, agent_id=agent_id):
                self._hold(reply, agent_id)
            case Release(agent_id=agent_id):
                self._release(agent_id)
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
                self._agents_changed(agents)
            case ResetBreakers():
                self._reset_breakers(message)
            case RetryDue():
                self._retry_due(message)
            case BreakersDue():
                self._breakers_due()
            case _:
                self._handle_store_result(message)

    def _handle_store_result(self, message: Any) -> None:
        """The store's answers to the calls made for this actor (or its last incarnation)."""
        match message:
            case Booted(epoch=epoch, served=served, runs=runs):
                self._state.boot(epoch, served, runs)
            case RequestStored(request=request):
                row = self._requests.written(message)
                if row is not None:
                    self._enqueue(request, row)
            case StoredRequestsRead(result=result):
                self._queue_stored(result)
            case SlotClaimed():
                self._claimed(message)
            case RunRecorded() | RecordRuns() | HistoryRead() | LedgerRead():
                self._ledger.handle(message)
            case _:
                super().handle(message)

    # --- requests and picking -----------------------------------------------------

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
        """Start (or claim the slots of) the first jobs in run order whose lanes are free."""
        state = self._state
        while not state.blocked and not self._erp_wait():
            busy = state.busy_lanes()

            def free(r: PendingRequest, busy: set[str | None] = busy) -> bool:
                return r.lane not in busy and not state.lane_held(r.lane)

            request = state.queue.pop_next(free)
            if request is None:
                break
            admission = self._admit(request)
            if admission.verdict == "skip":
                self._skip(request, admission.reason or "breaker open")
                continue
            if admission.verdict == "wait":  # the ERP-wide breaker opened just now
                state.queue.restore(request)
                break
            if admission.ticket is not None:  # its breaker's trial (a queued job holds no ticket)
                request = replace(request, ticket=admission.ticket)
            if request.scheduled_at is None or request.scheduled_at == request.claimed:
                self._start(request)
            else:
                self._requests.claim(request)
        self._notify_idle()

    def _start(self, request: PendingRequest) -> None:
        state = self._state
        run_id = state.begin_run()
        self._requests.forget(request.key)
        now = self._clock.now()
        running = Running.of(run_id, request, now, lambda: None)
        running.stop = self._runner.start(
            run_id,
            self._handlers[request.sync_type],
            {
                "sync_type": request.sync_type,
                "trigger": request.trigger,
                "scheduled_at": request.scheduled_at,
                "agent_id": request.agent_id,
                "attempt": request.attempt,
                "on_progress": self._progress_of(running),
            },
        )
        timeout = self._entries[request.sync_type].timeout_seconds
        address = self._sv_address
        running.deadline = self._clock.call_at(now + timeout, lambda: address.tell(RunTimedOut(run_id)))
        state.jobs[run_id] = running
        state.queue.started(request.sync_type)  # its type's waiting jobs are follow-ups now
        self._events.publish(
            "sync.started",
            syncType=running.sync_type,
            agentId=running.agent_id,
            trigger=running.trigger,
            attempt=running.attempt,
            scheduledAt=iso_at(self._clock, running.scheduled_at),
            startedAt=iso_at(self._clock, now),
            queue=state.queue.waiting_types(),
            queued=len(state.queue),
        )

    def _claimed(self, message: SlotClaimed) -> None:
        state = self._state
        request, store_failed = self._requests.settle(message)
        started = False
        if store_failed:
            self._release_trial(message.request)
            return
        if request is not None and state.leading:
            if request.agent_id is not None and request.agent_id not in self._enabled():
                self._requests.forget(request.key)  # its agent went meanwhile
            elif state.lane_held(request.lane):  # a hold came meanwhile: the run waits for it, claimed
                state.queue.restore(request)
            else:
                started = True
                # Decided before any drain that came meanwhile: the slot is served now,
                # so it runs (a drain that stops runs stops it at once).
                self._start(request)
                if state.draining and state.drain_stops:
                    self._stop_all()
        if not started:
            self._release_trial(message.request)
        self._answer_waiters()
        self._schedule_pick()

    # --- ends of runs -------------------------------------------------------------

    def _finished(self, message: SyncFinished) -> None:
        state = self._state
        running = state.jobs.get(message.run_id)
        if running is None:
            return  # a late report from a run already written off
        if running.deadline is not None:
            running.deadline.cancel()
        outcome, error = message.outcome, message.error
        if running.timed_out:
            timeout = self._entries[running.sync_type].timeout_seconds
            outcome, error = "timeout", error if outcome == "timeout" else f"timed out after {timeout:g} s"
        now = self._clock.now()
        result = message.result if outcome == "success" else None
        reason = message.reason if outcome == "skipped" else None
        record = running.record(outcome, error, self._clock, now, result=result, reason=reason)
        state.end_run(running.run_id, record)
        self._ledger.record(record, publish_now=bool(state.hold_waiters))
        self._after_run(running, outcome)
        if running.stopped_for_hold and outcome == "cancelled":
            # Stopped to make way for a user action: it resumes once the hold is released.
            slot = running.scheduled_at
            state.queue.add(
                running.sync_type,
                "retry",
                slot,
                now,
                claimed=slot,
                agent_id=running.agent_id,
                attempt=running.attempt,
            )
        self._answer_waiters()
        self._schedule_pick()

    def _set_leading(self, leading: bool) -> None:
        state = self._state
        state.leading = leading
        if leading:
            self._load_requests()
            return
        # Deposed: whatever waits here is the next leader's now (timers catch up on its
        # side, manual requests stay rows in the store); the jobs in progress are stopped.
        state.queue.clear()
        state.rows.forget()
        self._stop_all()
        self._notify_idle()

    def _load_requests(self) -> None:
        """Read the stored manual requests (written by any replica, or before a restart)."""
        if self._state.leading:
            self._requests.read_stored()

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
        """On shutdown, ask the running jobs to stop and disarm their deadlines and retries."""
        state = self._state
        for running in state.jobs.values():
            if running.deadline is not None:
                running.deadline.cancel()
            running.stop()
        for wakeup in [*state.retries.values(), state.breaker_wakeup]:
            if wakeup is not None:
                wakeup.cancel()
        super().on_stop()

    def _enabled(self) -> frozenset[str]:
        """The enabled agents' ids, built once per change of the agents (each claimed job asks)."""
        agents = self._state.agents
        if self._enabled_of[0] is not agents:
            self._enabled_of = (agents, frozenset(a.agent_id for a in agents if a.enabled))
        return self._enabled_of[1]

    def on_death(self, error: str) -> None:
        """Tell the supervisor; the state object waits for the next incarnation."""
        self._state.pick_armed = False
        self._supervisor.tell(ChildFailed("orchestrator", error))
