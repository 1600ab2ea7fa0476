"""``StoreWorker``: the store's calls, run one after another off the actor threads.

An actor never waits on the store inside a message handler: it hands the worker a call
and a way to turn the outcome into a message, and carries on with its mailbox. The
worker runs the calls in the order they were handed over (run records stay in order, a
claim is answered before the run it guards may start) and tells each outcome back.

A store that hangs (a PostgreSQL reconnect takes up to 20 s) must not hang the callers
behind it. The store counts as stuck once a call has gone unanswered for ``STUCK_AFTER``
real seconds. From then on a call made for a waiting caller (a retune, a manual request,
a history page) is refused at once, and one already waiting is withdrawn (never run, so
nothing changed); both are answered ``StoreNotAnsweringError``. A read made for a status
may also be given up while it runs, since reading changes nothing.

Why a second and not the 50 ms a caller would like: a healthy store's call can take tens
of milliseconds (an fsync on a busy disk, a loaded host that does not schedule this
thread), and a shorter bound refused retunes of a store that was merely slow. A second
tells a hung store from a slow one; after it, every caller is answered in microseconds.

A store that says it ``answers_at_once`` (the memory store: no I/O, only a short lock)
needs none of this: its calls run on the caller's thread, in the order they are made, and
their outcome is delivered the same way. Handing them to a thread would only add two
thread switches to every claim and run record (a quarter of a simulated run's cost).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from archibald_actors.clock import Activity
from archibald_actors.errors import StoreError
from archibald_actors.store.base import ClusterStore, Store
from archibald_actors.store_messages import (
    StoreResult,
)

__all__ = ["STUCK_AFTER", "Chain", "StoreNotAnsweringError", "StoreWorker", "announce"]

log = logging.getLogger("archibald_actors.store")

T = TypeVar("T")

#: Real seconds a call may go unanswered before the store counts as stuck: callers are
#: then refused at once, and health reads the store as unavailable.
STUCK_AFTER = 1.0


class StoreNotAnsweringError(StoreError):
    """A caller's call was refused: the store has not answered a call for too long."""


class Chain:
    """Calls that build on each other: once one fails, the later ones are not run.

    A second retune of a type is computed on top of the first one still being stored;
    if the first is not stored, storing the second would store half of the first.
    """

    def __init__(self) -> None:
        self.broken: StoreError | None = None


@dataclass(eq=False)
class _Job:
    call: Callable[[Store], Any]
    deliver: Callable[[StoreResult[Any]], None]
    deadline: float | None  # real time by which it must start (None: no hurry)
    bounded: bool  # a read: may be answered StoreError while it runs
    chain: Chain | None
    answered: bool = False
    started: bool = False


class StoreWorker:
    """Runs store calls in order on the thread ``archibald-store`` (or in place, see above).

    Args:
        store: the service's store.
        activity: the clock's activity: a call counts from submission until its outcome
            was handed on, so a ``ManualClock`` waits for store work in flight.
        patience: real seconds a call may go unanswered before the store counts as stuck
            (``STUCK_AFTER``).
    """

    def __init__(self, store: Store, activity: Activity, *, patience: float = STUCK_AFTER) -> None:
        self._store = store
        self._activity = activity
        self._patience = patience
        # Taken for every call and answer: the plain lock's ``with`` costs less than the
        # condition's, which is for waiting and notifying only.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: collections.deque[_Job] = collections.deque()
        self._current: _Job | None = None
        self._current_since = 0.0
        self._failing = False
        self._closed = False
        self._in_place = store.answers_at_once
        self._threads = (
            []
            if self._in_place
            else [
                threading.Thread(target=self._work, name="archibald-store", daemon=True),
                threading.Thread(target=self._watchdog, name="archibald-store-watch", daemon=True),
            ]
        )
        for thread in self._threads:
            thread.start()

    @property
    def available(self) -> bool:
        """Whether the store answers: False after a failed call or a refused caller, or
        while a call has been running for longer than the patience (the store is stuck)."""
        with self._cond:
            return not self._failing and not self._stalled(time.monotonic())

    def submit(
        self,
        call: Callable[[Store], T],
        deliver: Callable[[StoreResult[T]], None],
        *,
        for_caller: bool = False,
        bounded: bool = False,
        chain: Chain | None = None,
    ) -> None:
        """Run ``call(store)`` after the calls submitted before; hand its outcome to ``deliver``.

        ``deliver`` runs on a worker thread and should only tell a message.

        Args:
            call: the store call.
            deliver: receives the outcome (typically: tell it to an actor).
            for_caller: someone waits for the outcome: refused once the store is stuck.
            bounded: the caller is answered once the store is stuck, even while this call runs
                (only for calls that change nothing: a status's read of the ledger).
            chain: the call builds on the earlier calls of ``chain``.
        """
        if self._in_place:
            self._call_in_place(_Job(call, deliver, None, bounded, chain))
            return
        now = time.monotonic()
        job = _Job(call, deliver, now + self._patience if for_caller else None, bounded, chain)
        self._activity.begin()
        with self._cond:
            closed = self._closed
            stalled = for_caller and self._stalled(now)
            self._failing = self._failing or stalled
            if not closed and not stalled:
                self._queue.append(job)
                self._cond.notify_all()
        if closed:
            self._answer(job, StoreResult(error=StoreError("the store is closed")), finished=True)
        elif stalled:
            self._answer(job, StoreResult(error=self._not_answering(now)), finished=True)

    def close(self, timeout: float) -> None:
        """Run what was submitted (a stopping service still records its last run), then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        if any(thread.is_alive() for thread in self._threads):
            log.error("the store did not finish its calls within %s s", timeout)

    def _call_in_place(self, job: _Job) -> None:
        """Run a call of a store that answers at once, on this thread; deliver its outcome."""
        with self._lock:  # calls made from several threads still run one at a time
            result: StoreResult[Any] = (
                StoreResult(error=StoreError("the store is closed")) if self._closed else self._run(job)
            )
            self._failing = result.error is not None
        self._answer(job, result, finished=False)  # never counted: it is done before this returns

    # --- on the worker threads ------------------------------------------------------

    def _stalled(self, now: float) -> bool:
        """The call in progress has been running for longer than the patience (lock held)."""
        return self._current is not None and now - self._current_since > self._patience

    def _not_answering(self, now: float) -> StoreNotAnsweringError:
        with self._cond:
            waited = now - self._current_since if self._current is not None else 0.0
        return StoreNotAnsweringError(
            f"the store is not answering (a call has waited {waited * 1000:.0f} ms for it); try again"
        )

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
                job.started = True
                self._current, self._current_since = job, time.monotonic()
                self._cond.notify_all()  # the watchdog times this call
            result = self._run(job)
            with self._cond:
                self._current = None
                self._failing = result.error is not None
                self._cond.notify_all()
            self._answer(job, result, finished=True)

    def _run(self, job: _Job) -> StoreResult[Any]:
        chain = job.chain
        if chain is not None and chain.broken is not None:
            return StoreResult(error=chain.broken)
        try:
            result: StoreResult[Any] = StoreResult(value=job.call(self._store))
        except Exception as exc:  # every store failure goes back to the caller as a result
            result = StoreResult(error=exc)
        return result

    def _answer(self, job: _Job, result: StoreResult[Any], *, finished: bool) -> None:
        """Deliver ``result`` unless the job was answered already; end its unit once finished."""
        with self._lock:
            first, job.answered = not job.answered, True
            if result.error is not None and job.chain is not None and job.chain.broken is None:
                job.chain.broken = StoreError(f"a change it builds on was not stored: {result.error}")
        if first:
            try:
                job.deliver(result)
            except Exception:  # a delivery that fails must not kill the worker
                log.exception("could not deliver a store result")
        if finished:
            self._activity.end()

    def _watchdog(self) -> None:
        """Answer the callers waiting on a call that has been running past the patience.

        Only a call stuck in the store counts: a queue of quick calls that the worker is
        getting through (a busy moment, a slow machine) refuses nobody.
        """
        with self._cond:
            while not self._closed:
                now, current = time.monotonic(), self._current
                if current is None:  # nothing is stuck: the worker takes the next call
                    self._cond.wait()
                    continue
                stuck_at = self._current_since + self._patience
                waiting = [j for j in self._queue if j.deadline is not None]
                if current.bounded and not current.answered:
                    waiting.append(current)  # a read may be answered while it runs
                # A caller is refused once its own patience is over and the store is stuck.
                due = {job: max(job.deadline or now, stuck_at) for job in waiting}
                expired = [job for job, at in due.items() if at <= now]
                if not expired:
                    later = [at for at in due.values() if at > now]
                    self._cond.wait(min(later) - now if later else None)
                    continue
                self._failing = True  # a caller is refused: the store is not answering
                for job in expired:
                    if not job.started:
                        self._queue.remove(job)
                self._cond.release()
                try:
                    for job in expired:
                        self._answer(
                            job, StoreResult(error=self._not_answering(now)), finished=not job.started
                        )
                finally:
                    self._cond.acquire()


def announce(cluster: ClusterStore | None, kind: str, payload: dict[str, Any]) -> None:
    """Tell the other replicas of a change already stored (on the store worker's thread).

    A failure is only logged: the change is stored, and the replicas read it at their
    next resync.
    """
    if cluster is None:
        return
    try:
        cluster.notify(kind, payload)
    except Exception as exc:
        log.error("%s stored but not announced to the other replicas: %s", kind, exc)
