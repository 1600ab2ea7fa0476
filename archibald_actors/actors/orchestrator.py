"""``OrchestratorActor``: runs syncs strictly one at a time, in the order of DESIGN section 6.

The actor only decides; handlers run in a ``SyncRunner`` and report back as messages,
so status queries, retunes and holds are answered while a sync runs. Everything worth
keeping lives in ``OrchestratorState``, which the supervisor hands to the next
incarnation after a crash: no accepted request is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.actors.orchestrator_state import OrchestratorState, Running
from archibald_actors.actors.runner import SyncHandler, SyncRunner
from archibald_actors.clock import Activity, Clock
from archibald_actors.events import EventBus
from archibald_actors.ledger import HISTORY_PER_TYPE, RunRecord
from archibald_actors.messages import (
    ChildFailed,
    Drain,
    GetHistory,
    GraceExpired,
    Hold,
    LoadRequests,
    Outcome,
    Pick,
    Release,
    Reply,
    ReportStatus,
    RequestSync,
    RunTimedOut,
    SetLeading,
    SyncFinished,
    WaitIdle,
    answer,
    fail,
)
from archibald_actors.request_queue import PendingRequest
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.status import build_status, iso_at

__all__ = ["OrchestratorActor", "OrchestratorState"]

log = logging.getLogger("archibald_actors.orchestrator")

#: Clock seconds a stopped run gets to end before it is abandoned.
STOP_GRACE_SECONDS = 30.0
#: Clock seconds before a pick is retried when the store could not claim a slot.
CLAIM_RETRY = 5.0
#: The event a run's end is published as, by outcome; the rest (failed, timeout) fail.
_END_EVENTS = {"success": "sync.completed", "cancelled": "sync.cancelled"}


class _ClaimDeferredError(Exception):
    """The store could not claim a slot; the pick was re-armed."""


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
        record_sink: Callable[[RunRecord], None],
        ledger: Callable[[str | None, int], list[RunRecord]],
        claim_slot: Callable[[str, float], bool],
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
        self._record_sink = record_sink
        self._ledger = ledger
        self._claim_slot = claim_slot
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
                answer(message.reply, self._status(message))
            case SetLeading(leading=leading):
                self._set_leading(leading)
            case LoadRequests():
                self._load_requests()
            case GetHistory(reply=reply, sync_type=sync_type, limit=limit):
                self._history(reply, sync_type, limit)
            case Drain(reply=reply, stop_running=stop_running):
                self._drain(reply, stop_running)
            case WaitIdle(reply=reply):
                if self._state.idle:
                    answer(reply, True)
                else:
                    self._state.idle_waiters.append(reply)
            case _:
                super().handle(message)

    # --- requests and picking -----------------------------------------------------

    def _accept(self, request: RequestSync) -> None:
        if request.from_wake:
            self._fires.end()
        state = self._state
        if request.reply is not None and state.rows is not None:
            # A caller's request is durable before it is acknowledged.
            try:
                state.rows.record(request.sync_type, request.trigger, request.requested_at)
            except Exception as exc:
                fail(request.reply, exc)
                return
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
        blocked = state.running is not None or state.holds or state.draining or not state.leading
        if blocked or not len(state.queue):
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
        with suppress(_ClaimDeferredError):
            self._start_next()

    def _start_next(self) -> None:
        state = self._state
        if state.running is not None or state.holds or state.draining or not state.leading:
            return
        request = None
        while request is None and (candidate := state.queue.pop_next()) is not None:
            request = self._claim(candidate)
        if request is None:
            self._notify_idle()
            return
        run_id = state.begin_run(request.sync_type)
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

    def _claim(self, request: PendingRequest) -> PendingRequest | None:
        """Claim the request's slot in the store, so no slot ever runs twice.

        Returns the request to run, or None to skip it. An automatic request whose slot
        was claimed already (served before a restart, or by another replica) is skipped;
        a user's request merged with such a slot still runs, for the user and not for the
        slot. If the store cannot answer, the request goes back to the queue and the pick
        is retried later: running without the claim could run a slot twice.
        """
        if request.scheduled_at is None or request.scheduled_at == request.claimed:
            return request
        try:
            claimed = self._claim_slot(request.sync_type, request.scheduled_at)
        except Exception as exc:  # the store is down: keep the request, try again later
            log.error("cannot claim %s slot, retrying in %g s: %s", request.sync_type, CLAIM_RETRY, exc)
            self._state.queue.restore(request)
            self._state.pick_armed = True
            address = self._sv_address
            self._clock.call_at(self._clock.now() + CLAIM_RETRY, lambda: address.tell(Pick()))
            raise _ClaimDeferredError from exc
        if claimed:
            return request
        self._state.counters[request.sync_type].duplicates += 1
        log.info("%s slot %s was already claimed", request.sync_type, request.scheduled_at)
        self._events.publish(
            "slot.skipped", syncType=request.sync_type, scheduledAt=iso_at(self._clock, request.scheduled_at)
        )
        return None if request.trigger == "auto" else replace(request, scheduled_at=None)

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
        self._record_sink(record)
        if running.stopped_for_hold and outcome == "cancelled":
            # Stopped to make way for a user action: it resumes once the hold is released.
            slot = running.scheduled_at
            state.queue.add(running.sync_type, "retry", slot, now, running=None, claimed=slot)
        self._events.publish(_END_EVENTS.get(outcome, "sync.failed"), **record.to_json())
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
        if state.rows is not None:
            state.rows.forget()
        if state.running is not None:
            state.running.stop()
        self._notify_idle()

    def _load_requests(self) -> None:
        if self._state.load_stored_requests():
            self._schedule_pick()

    def _drain(self, reply: Reply, stop_running: bool) -> None:
        state = self._state
        state.draining = True
        if state.running is None:
            answer(reply, True)
            return
        if stop_running:
            state.running.stop()
        state.drain_waiters.append(reply)

    def _notify_idle(self) -> None:
        state = self._state
        if state.idle and state.idle_waiters:
            for reply in state.idle_waiters:
                answer(reply, True)
            state.idle_waiters.clear()

    # --- views --------------------------------------------------------------------

    def _history(self, reply: Reply, sync_type: str | None, limit: int) -> None:
        """Runs newest first, from the ledger: the store's, which every replica shares."""
        try:
            runs = self._ledger(sync_type, limit)
        except Exception as exc:  # the store is down: the caller gets the error (a 503)
            fail(reply, exc)
            return
        answer(reply, [r.to_json() for r in runs])

    def _status(self, query: ReportStatus) -> dict[str, Any]:
        if not self._state.leading:
            # A follower runs nothing itself: its last runs are the leader's, read from the ledger.
            self._state.refresh_from_ledger(self._ledger, HISTORY_PER_TYPE * len(self._entries))
        return build_status(
            self._state, self._entries, query.timers, query.orchestrator_state, query.role, self._clock
        )

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
