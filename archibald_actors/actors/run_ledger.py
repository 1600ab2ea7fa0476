"""``RunLedger``: the orchestrator's side of the store's ledger of runs.

Finished runs are appended in the order they ended, off the orchestrator's thread; a run
the store could not take stays in the state and is appended again (in order) later. Its
``sync.completed``, ``sync.failed``, ``sync.cancelled`` or ``sync.skipped`` event is published once its
first write ended, so whoever sees the event finds the run in the ledger. History pages and a follower's
status read the ledger the same way: asked from the orchestrator, answered by message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from archibald_actors.actors.base import Address
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.store_worker import Chain, StoreWorker
from archibald_actors.clock import Clock
from archibald_actors.domain import RunRecord
from archibald_actors.events import EventBus
from archibald_actors.ledger import HISTORY_PER_TYPE
from archibald_actors.messages import (
    GetHistory,
    RecordRuns,
    answer,
    fail,
)
from archibald_actors.store.base import Store
from archibald_actors.store_messages import (
    HistoryRead,
    LedgerRead,
    RunRecorded,
    StoreResult,
)

__all__ = ["RECORD_RETRY", "RunLedger"]

log = logging.getLogger("archibald_actors.orchestrator")

#: Clock seconds before runs the store could not take are appended again.
RECORD_RETRY = 5.0
#: The event of a run's end, by outcome ("failed" and "timeout" are failures).
_END_EVENTS = {"success": "sync.completed", "cancelled": "sync.cancelled", "skipped": "sync.skipped"}


class RunLedger:
    """Appends runs and reads the ledger for the orchestrator; used on its thread only."""

    def __init__(
        self, state: OrchestratorState, worker: StoreWorker, address: Address, clock: Clock, events: EventBus
    ) -> None:
        self._state = state
        self._worker = worker
        self._address = address
        self._clock = clock
        self._events = events

    def handle(self, message: RunRecorded | RecordRuns | HistoryRead | LedgerRead) -> None:
        """The store's answer to one of the calls made here (or a retry's turn)."""
        match message:
            case RunRecorded():
                self.recorded(message)
            case RecordRuns():
                self.retry()
            case HistoryRead():
                self.history_read(message)
            case LedgerRead():
                self.ledger_read(message)

    def record(self, record: RunRecord, *, publish_now: bool = False) -> None:
        """Append a finished run after the ones still waiting for the store.

        Its end is published once the write ended, or at once if ``publish_now`` (a hold
        waits for this run: a user's action must not wait for the database).
        """
        state = self._state
        state.unrecorded.append(record)
        if state.recording == 0:
            state.record_chain = Chain()  # a new round: earlier failures are behind us
        if publish_now:
            self._publish(record)
        self._append([record], first_try=True, publish=not publish_now)

    def _publish(self, record: RunRecord) -> None:
        self._events.publish(_END_EVENTS.get(record.outcome, "sync.failed"), **record.to_json())

    def _append(self, records: list[RunRecord], *, first_try: bool, publish: bool = False) -> None:
        # One chain per round: once a run is not appended, the runs after it wait too.
        chain, address = self._state.record_chain, self._address
        for record in records:
            self._state.recording += 1

            def append(store: Store, record: RunRecord = record) -> None:
                store.append_run(record)

            def tell(result: StoreResult[None], record: RunRecord = record) -> None:
                address.tell(RunRecorded(record, first_try, publish, result))

            self._worker.submit(append, tell, chain=chain)

    def recorded(self, message: RunRecorded) -> None:
        """One append ended: drop the run from the waiting ones, publish its event on the first try."""
        state = self._state
        state.recording -= 1
        if message.result.error is None and state.unrecorded and state.unrecorded[0] is message.record:
            state.unrecorded.popleft()
        elif message.result.error is not None and message.first_try:
            log.error("%s run not recorded yet: %s", message.record.sync_type, message.result.error)
        if message.publish:
            self._publish(message.record)
        if state.recording == 0 and state.unrecorded:  # the store failed: try again in order, later
            address = self._address
            self._clock.call_at(self._clock.now() + RECORD_RETRY, lambda: address.tell(RecordRuns()))

    def retry(self) -> None:
        """Append again the runs the store could not take."""
        state = self._state
        if state.recording == 0 and state.unrecorded:
            state.record_chain = Chain()
            self._append(list(state.unrecorded), first_try=False)

    def read_history(self, query: GetHistory) -> None:
        """Answer a history query with runs newest first from the ledger, which every replica shares."""
        address, reply = self._address, query.reply

        def read(store: Store) -> list[RunRecord]:
            return store.runs(query.sync_type, query.limit, agent_id=query.agent_id, before=query.before)

        self._worker.submit(read, lambda result: address.tell(HistoryRead(reply, result)), for_caller=True)

    @staticmethod
    def history_read(message: HistoryRead) -> None:
        """Hand a history page (or the store's error: a 503) to its caller."""
        if message.result.error is not None:
            fail(message.reply, message.result.error)
        else:
            answer(message.reply, [r.to_json() for r in message.result.unwrap()])

    def refresh_then(self, then: Callable[[], None]) -> None:
        """A follower's status: read the leader's runs from the ledger first, then ``then()``.

        A store that does not answer within the patience gets the status answered with
        the runs read last time.
        """
        state = self._state
        state.status_waiters.append(then)
        if len(state.status_waiters) > 1:
            return  # one read serves every status asked meanwhile
        address, limit = self._address, HISTORY_PER_TYPE * len(state.counters)
        self._worker.submit(
            lambda store: store.runs(None, limit),
            lambda result: address.tell(LedgerRead(result)),
            for_caller=True,
            bounded=True,
        )

    def ledger_read(self, message: LedgerRead) -> None:
        """Adopt the runs read (if the store answered) and answer the statuses waiting."""
        state = self._state
        if message.result.error is None:
            state.adopt_runs(message.result.unwrap())
        else:
            log.warning("cannot read the ledger for the status: %s", message.result.error)
        waiters, state.status_waiters = state.status_waiters, []
        for then in waiters:
            then()
