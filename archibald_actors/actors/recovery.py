"""``Recovery``: retries of failed jobs and the circuit breakers, on the orchestrator's thread.

A ``failed`` or ``timeout`` job is queued again (trigger "retry", ``attempt`` counted)
after the retry policy's backoff, never at or past its type's next slot (that slot's own
job takes over). Before a job starts its (type, lane) breaker is asked: an open pair's
jobs are recorded ``skipped`` with reason "breaker open" without running; a half-open
pair lets one trial through; while the ERP-wide breaker is open nothing starts. The
policies are pure (``retry``, ``breaker``); this mixin only arms their wake-ups, records
the skips and publishes their changes. Mixed into ``OrchestratorActor``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from archibald_actors.actors.base import Address
from archibald_actors.actors.orchestrator_state import OrchestratorState, Running
from archibald_actors.actors.request_store import RequestStore
from archibald_actors.actors.run_ledger import RunLedger
from archibald_actors.breaker import Admission, BreakerChanged
from archibald_actors.clock import Clock
from archibald_actors.domain import Outcome
from archibald_actors.events import EventBus
from archibald_actors.messages import BreakersDue, ResetBreakers, RetryDue, answer
from archibald_actors.request_queue import PendingRequest
from archibald_actors.retry import plan_retry
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.status import iso_at

__all__ = ["Recovery"]

log = logging.getLogger("archibald_actors.orchestrator")


class Recovery:
    """Retries and breakers over the orchestrator's state."""

    _state: OrchestratorState
    _clock: Clock
    _events: EventBus
    _entries: Mapping[str, ScheduleEntry]
    _requests: RequestStore
    _ledger: RunLedger
    _sv_address: Address
    _schedule_view: Callable[[], ScheduleView | None]

    def _schedule_pick(self) -> None:
        raise NotImplementedError  # the actor's

    def _enabled(self) -> frozenset[str]:
        raise NotImplementedError  # the actor's

    # --- breakers -----------------------------------------------------------------

    def _admit(self, request: PendingRequest) -> Admission:
        """Ask the job's breaker whether it may start now (publishing what changed)."""
        admission = self._state.breakers.admit(request.sync_type, request.agent_id, self._clock.now())
        self._breakers_changed(admission.changes)
        return admission

    def _erp_wait(self) -> bool:
        """True while the ERP-wide breaker keeps every job waiting (a wake-up is armed for its end)."""
        if self._state.breakers.blocked_until(self._clock.now()) is None:
            return False
        self._arm_breakers()
        return True

    def _skip(self, request: PendingRequest, reason: str) -> None:
        """Record ``request`` as skipped without running it (its breaker is open)."""
        state, now = self._state, self._clock.now()
        self._requests.forget(request.key)
        job = Running.of(-1, request, now, lambda: None)
        record = job.record("skipped", None, self._clock, now, reason=reason)
        state.end_run(-1, record)
        self._ledger.record(record)

    def _breakers_changed(self, changes: tuple[BreakerChanged, ...]) -> None:
        clock = self._clock
        for change in changes:
            log.warning(
                "breaker of %s %s", "the ERP" if change.sync_type is None else change.sync_type, change.state
            )
            self._events.publish(change.event_type, **change.to_json(lambda t: iso_at(clock, t)))
        if changes:
            self._arm_breakers()

    def _arm_breakers(self) -> None:
        """Arm one wake-up for the breakers' next change in time (a cooldown or the ERP wait ending)."""
        state = self._state
        at = state.breakers.next_change_at()
        current = state.breaker_wakeup
        if current is not None and not current.fired_or_cancelled and current.deadline == at:
            return
        if current is not None:
            current.cancel()
        address = self._sv_address
        state.breaker_wakeup = (
            None if at is None else self._clock.call_at(at, lambda: address.tell(BreakersDue()))
        )

    def _breakers_due(self) -> None:
        self._state.breaker_wakeup = None
        self._breakers_changed(self._state.breakers.advance(self._clock.now()))
        self._arm_breakers()
        self._schedule_pick()

    def _reset_breakers(self, message: ResetBreakers) -> None:
        """An admin closes breakers early; answers how many changed."""
        changes = self._state.breakers.reset(message.sync_type, message.agent_id)
        self._breakers_changed(changes)
        self._arm_breakers()
        answer(message.reply, len(changes))
        self._schedule_pick()

    def _release_trial(self, request: PendingRequest) -> None:
        """A job admitted as its breaker's trial did not run: the next job of the pair tries."""
        if request.ticket is not None:
            now = self._clock.now()
            self._state.breakers.record(*request.key, "cancelled", now, ticket=request.ticket)

    # --- ends of jobs ---------------------------------------------------------------

    def _after_run(self, running: Running, outcome: Outcome) -> None:
        """Count the end in the breakers; arm a retry if the policy wants one."""
        state, now = self._state, self._clock.now()
        changes = state.breakers.record(*running.key, outcome, now, ticket=running.ticket)
        self._breakers_changed(changes)
        armed = state.retries.pop(running.key, None)
        if armed is not None:
            armed.cancel()  # this end supersedes the retry armed for an earlier one
        if running.stopped_for_hold:
            return  # a job stopped for a hold resumes after it; that is no failure
        view = self._schedule_view()
        next_slot = None if view is None else view.next_slot(running.sync_type, now)
        policy = self._entries[running.sync_type].retry_policy  # the type's retries and backoff
        plan = plan_retry(outcome, running.attempt, now, next_slot, policy)
        if plan is None:
            return
        retry = RetryDue(running.sync_type, running.agent_id, plan.attempt, running.scheduled_at)
        address = self._sv_address
        state.retries[running.key] = self._clock.call_at(plan.at, lambda: address.tell(retry))

    def _retry_due(self, retry: RetryDue) -> None:
        """Queue the retry (for its own slot, claimed already) unless its agent went meanwhile."""
        state = self._state
        state.retries.pop((retry.sync_type, retry.agent_id), None)
        if not state.leading:
            return
        if retry.agent_id is not None and retry.agent_id not in self._enabled():
            return
        slot = retry.scheduled_at
        state.queue.add(
            retry.sync_type,
            "retry",
            slot,
            self._clock.now(),
            running_types=state.running_types(),
            claimed=slot,
            agent_id=retry.agent_id,
            attempt=retry.attempt,
        )
        self._events.publish(
            "queue.changed",
            syncType=retry.sync_type,
            agentId=retry.agent_id,
            jobs=1,
            trigger="retry",
            attempt=retry.attempt,
            coalesced=False,
            missed=0,
            fireLatenessSeconds=None,
            queue=state.queue.waiting_types(),
            queued=len(state.queue),
        )
        self._schedule_pick()
