"""``SyncService``: wires clock, store and actors together; the embedding facade.

Construction (checking the schedule and the handlers) and the lifecycle (``start``,
``stop``) live here; the calls to the running actors, each in a blocking and a
``*_future()`` form, come from ``ServiceCalls`` (service_calls.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import pykka
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archibald_actors.actors.base import Address
from archibald_actors.actors.runner import SyncHandler, SyncRunner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.actors.supervisor import ORCHESTRATOR
from archibald_actors.actors.system import start_actors
from archibald_actors.agent_calls import AgentCalls
from archibald_actors.breaker import DEFAULT_BREAKERS, BreakerPolicy
from archibald_actors.clock import Clock, Deadline, SystemClock
from archibald_actors.cluster.link import ClusterLink
from archibald_actors.errors import InvalidValueError, ServiceStateError, ServiceUnavailableError
from archibald_actors.events import EventBus
from archibald_actors.handler_signature import handler_problem
from archibald_actors.loop_guard import blocking, refuse_on_loop
from archibald_actors.loop_thread import LoopThread
from archibald_actors.messages import (
    Drain,
    RestartChild,
)
from archibald_actors.schedule import (
    DEFAULT_SCHEDULE,
    SYNC_TYPES,
    ScheduleEntry,
    check_schedule,
    check_sync_type,
)
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.service_calls import ASK_TIMEOUT
from archibald_actors.store.base import Store
from archibald_actors.store.memory import MemoryStore
from archibald_actors.validation import MaxConcurrent, first_error

__all__ = ["SyncService"]

log = logging.getLogger("archibald_actors")

T = TypeVar("T")
U = TypeVar("U")
#: Real seconds ``start()`` waits for the first read of the store.
START_WAIT = 30.0
#: Real seconds each step of ``stop()`` gets even once its budget is spent: the steps
#: after a stuck one (stopping actors, joining the clock) take milliseconds when nothing
#: is stuck, so ``stop(timeout)`` returns within ``timeout`` plus a few of these.
STOP_STEP_FLOOR = 0.1
#: What to await instead of a blocking call, on an event loop's thread.
_STOP_ON_LOOP = "`await asyncio.to_thread(service.stop)` (or let `archibald_actors.web.setup()` stop it)"


def _check_max_concurrent(value: object) -> int:
    try:
        return _MaxConcurrent.model_validate({"maxConcurrent": value}).max_concurrent
    except ValidationError as exc:
        problem = first_error(exc.errors(), _MaxConcurrent).problem
        raise InvalidValueError("max_concurrent", problem) from None


class _MaxConcurrent(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)

    max_concurrent: MaxConcurrent = Field(alias="maxConcurrent")


def _noop_handler(ctx: Any) -> None:
    """The handler of a type the service was given none for: succeeds at once."""


class SyncService(AgentCalls):
    """Staggered, serialized, supervised syncs of the ERP data types.

    Args:
        handlers: sync handler per type (plain or coroutine function taking ``ctx``);
            a type without one gets a handler that succeeds at once.
        clock: ``SystemClock()`` by default; ``ManualClock()`` in tests.
        schedule: the table to start from (``DEFAULT_SCHEDULE``); its keys are the service's
            sync types (``sync_types``), any names matching ``[a-z][a-z0-9_-]{0,31}``. Stored
            retunes win.
        store: durable state; ``MemoryStore()`` by default.
        loop: the asyncio loop coroutine handlers run on; by default the loop running
            when ``start()`` is called, else a private one.
        retention_days: runs older than this are pruned from the store's ledger.
        max_concurrent: jobs that may run at once, never two on one lane (an agent's ERP
            session, or the service's own for shared types); 1 runs strictly one at a time.
        breakers: when the circuit breakers open and for how long, service-wide
            (``DEFAULT_BREAKERS``: 3 failed tries in a row open a (type, lane) pair for 2 h;
            failures on 5 lanes within 10 min hold every job for 15 min). A type's retries
            are its ``ScheduleEntry``'s.

    Raises:
        UnknownSyncTypeError: a handler names a type that is neither in the schedule nor
            one of the default six.
        InvalidValueError: a schedule key is not a valid type name or not its entry's type,
            or a handler cannot be called as ``handler(ctx)`` (names it), or ``breakers``
            is not a ``BreakerPolicy``, or ``max_concurrent`` is not a whole number from 1 to 64.
    """

    def __init__(
        self,
        handlers: Mapping[str, SyncHandler] | None = None,
        *,
        clock: Clock | None = None,
        schedule: Mapping[str, ScheduleEntry] | None = None,
        store: Store | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        retention_days: float = 30.0,
        max_concurrent: int = 1,
        breakers: BreakerPolicy = DEFAULT_BREAKERS,
    ) -> None:
        handlers = dict(handlers or {})
        schedule = check_schedule(schedule or DEFAULT_SCHEDULE)
        #: The service's sync types: the keys of its schedule, in order.
        self.sync_types: tuple[str, ...] = tuple(schedule)
        for name in handlers:
            # A handler of a default type the schedule leaves out is ignored (one handler
            # table serves any subset of the six); any other unknown name is a typo.
            if name not in SYNC_TYPES:
                check_sync_type(name, self.sync_types)
        for sync_type, handler in handlers.items():
            if (problem := handler_problem(handler)) is not None:
                raise InvalidValueError(f"handlers[{sync_type!r}]", problem)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.store: Store = store if store is not None else MemoryStore()
        self.events = EventBus()
        self._handlers = {t: handlers.get(t, _noop_handler) for t in schedule}
        self._initial_schedule = schedule
        valid = isinstance(retention_days, int | float) and not isinstance(retention_days, bool)
        if not valid or not retention_days > 0:
            raise InvalidValueError("retention_days", f"must be a positive number, got {retention_days!r}")
        self._retention_days = float(retention_days)
        self.max_concurrent = _check_max_concurrent(max_concurrent)
        if not isinstance(breakers, BreakerPolicy):
            raise InvalidValueError("breakers", f"must be a BreakerPolicy, got {breakers!r}")
        #: The service-wide circuit breaker settings.
        self.breaker_policy: BreakerPolicy = breakers
        self._loop = loop
        self._loop_thread: LoopThread | None = None
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._supervisor_ref: pykka.ActorRef[Any] | None = None
        self._view: ScheduleView | None = None  # published by the supervisor
        self._addresses: dict[str, Address] = {}
        self._supervisor = Address("supervisor", self.clock.activity)
        self._cluster: ClusterLink | None = None
        self._runner: SyncRunner | None = None
        self._store_worker: StoreWorker | None = None
        self.epoch: float | None = None

    # --- lifecycle ----------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the actors; the epoch is now, or the stored one.

        Args:
            loop: the loop for coroutine handlers, if none was given to the constructor
                (the web layer starts the service off its loop, since the store is read here).

        Returns once the store was read, or once reading it failed: then the service
        runs without timers, its health says ``"store": "unavailable"``, and it reads the
        store again with a backoff (1 s doubling to 30 s) until it can.

        Raises:
            ServiceStateError: already started, or stopped (a stopped service never starts again).
        """
        with self._lock:
            if self._stopped:
                raise ServiceStateError(
                    "the service was stopped and cannot start again; build a new SyncService"
                )
            if self._started:
                raise ServiceStateError("the service is already started; start() runs once")
            self._started = True
        if loop is not None:
            self._loop = loop
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        system = start_actors(
            schedule=self._initial_schedule,
            handlers=self._handlers,
            clock=self.clock,
            store=self.store,
            events=self.events,
            supervisor_address=self._supervisor,
            coroutine_loop=self._coroutine_loop,
            publish_view=self._publish_view,
            on_booted=self._booted,
            retention_days=self._retention_days,
            max_concurrent=self.max_concurrent,
            breaker_policy=self.breaker_policy,
        )
        self._addresses = system.addresses
        self._runner = system.runner
        self._store_worker = system.store_worker
        self._supervisor_ref = system.supervisor_ref
        self._cluster = system.cluster
        try:
            # The first read of the store is bounded by the store's own timeouts.
            system.first_load.result(START_WAIT)
        except FutureTimeout:
            log.error("the store did not answer within %s s; starting without it", START_WAIT)

    def _booted(self, epoch: float) -> None:
        self.epoch = epoch  # one reference swap, from the supervisor's thread

    def _coroutine_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None and not self._loop.is_closed():
                return self._loop
            if self._loop_thread is None:
                self._loop_thread = LoopThread()
            return self._loop_thread.loop

    @blocking("service.stop()", _STOP_ON_LOOP)
    def stop(self, timeout: float = 10.0, *, drain: bool = False) -> None:
        """Let the running sync end and be recorded, then stop every actor and thread.

        Args:
            timeout: real seconds the whole stop may take (plus a fraction of a second
                for the last steps once a stuck handler has used it up).
            drain: let the running sync finish by itself, for up to half of ``timeout``,
                before asking it to stop at its next safe point.

        Afterwards no thread of the service is left but handler threads that ignored the
        stop request: those are abandoned (daemon threads, counted in ``status()`` as
        ``abandonedThreads``).

        Raises:
            BlockingCallError: called on the thread of a running event loop (it would wait
                for coroutine handlers that need that loop to end).
        """
        with self._lock:
            if not self._started or self._stopped:
                self._stopped = True
                return
        deadline = Deadline(timeout)
        if self._cluster is not None:
            # Steps down first: no slot fires while we stop.
            self._cluster.stop(deadline.left(STOP_STEP_FLOOR))
        self._drain(deadline, drain)
        with self._lock:
            self._stopped = True
        if self._supervisor_ref is not None:
            try:
                self._supervisor_ref.stop(block=True, timeout=deadline.left(STOP_STEP_FLOOR))
            except pykka.Timeout:
                log.error("the supervisor did not stop within %s s", timeout)
        if self._runner is not None:
            self._runner.join(deadline)
        if self._store_worker is not None:
            # The last runs reach the ledger first.
            self._store_worker.close(deadline.left(STOP_STEP_FLOOR))
        if self._loop_thread is not None:
            self._loop_thread.close(deadline.left(STOP_STEP_FLOOR))
        if isinstance(self.clock, SystemClock):
            # Returns at once if another user still has wake-ups armed.
            self.clock.join(deadline.left(STOP_STEP_FLOOR))
        self.store.close()

    def _drain(self, deadline: Deadline, let_finish: bool) -> None:
        """Let the running sync end and be recorded before the actors stop."""
        try:
            ask = min(deadline.left(STOP_STEP_FLOOR), ASK_TIMEOUT)
            orchestrator = self.status(timeout=ask)["orchestrator"]
        except ServiceUnavailableError:
            orchestrator = "failed"
        if orchestrator == "failed":
            return  # nobody left to record the run
        if orchestrator == "restarting":
            self._supervisor.tell(RestartChild(ORCHESTRATOR))  # now, not after the backoff
        for stop_running in [False, True] if let_finish else [True]:
            # Letting it finish takes half of what is left; asking it to stop, the rest.
            wait = deadline.left() if stop_running else deadline.left() / 2
            reply: Future[Any] = Future()
            self._addresses[ORCHESTRATOR].tell(Drain(reply, stop_running=stop_running))
            try:
                reply.result(wait)
                return
            except FutureTimeout:
                if not stop_running:
                    log.warning("the running sync did not finish within %.1f s; asking it to stop", wait)
        log.error("the running sync did not stop in time; stopping without its record")

    def __enter__(self) -> SyncService:
        # Refused before starting: on a loop's thread the stop on exit could not run.
        refuse_on_loop("`with SyncService(...)`", "`start()`, then " + _STOP_ON_LOOP)
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
