"""``SyncService``: wires clock, store and actors together; the embedding facade.

Every method that talks to the actors has two forms: ``status()`` blocks the calling
thread with a timeout, ``status_future()`` returns a ``concurrent.futures.Future`` that an
asyncio caller awaits through ``asyncio.wrap_future`` without blocking its loop. The
blocking forms refuse to run on the thread of a running event loop (``BlockingCallError``,
naming the form to await), since they would freeze it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import pykka

from archibald_actors.actors.base import Address
from archibald_actors.actors.runner import SyncHandler, SyncRunner
from archibald_actors.actors.store_worker import StoreWorker
from archibald_actors.actors.supervisor import ORCHESTRATOR
from archibald_actors.actors.system import start_actors
from archibald_actors.clock import Clock, SystemClock
from archibald_actors.cluster.link import ClusterLink
from archibald_actors.domain import TRIGGERS, Trigger
from archibald_actors.errors import InvalidValueError, ServiceStateError, ServiceUnavailableError
from archibald_actors.events import EventBus
from archibald_actors.exclusive import ExclusiveHold
from archibald_actors.handler_signature import handler_problem
from archibald_actors.loop_guard import blocking, refuse_on_loop
from archibald_actors.loop_thread import LoopThread
from archibald_actors.messages import (
    Crash,
    Drain,
    GetHistory,
    GetSchedule,
    GetStatus,
    RequestSync,
    RestartChild,
    Retune,
    WaitIdle,
)
from archibald_actors.schedule import (
    DEFAULT_SCHEDULE,
    SYNC_TYPES,
    ScheduleEntry,
    check_schedule,
    check_sync_type,
)
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.status import health_from_status
from archibald_actors.store.base import Store
from archibald_actors.store.memory import MemoryStore

__all__ = ["SyncService"]

log = logging.getLogger("archibald_actors")

T = TypeVar("T")
#: Real seconds a blocking call waits for the actors by default.
ASK_TIMEOUT = 5.0
#: Real seconds ``start()`` waits for the first read of the store.
START_WAIT = 30.0
#: What to await instead of a blocking call, on an event loop's thread.
_STOP_ON_LOOP = "`await asyncio.to_thread(service.stop)` (or let `archibald_actors.web.setup()` stop it)"


def _awaitable(future_call: str) -> str:
    return f"`await asyncio.wrap_future(service.{future_call})`"


def _noop_handler(ctx: Any) -> None:
    """The handler of a type the service was given none for: succeeds at once."""


class SyncService:
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

    Raises:
        UnknownSyncTypeError: a handler names a type that is neither in the schedule nor
            one of the default six.
        InvalidValueError: a schedule key is not a valid type name or not its entry's type,
            or a handler cannot be called as ``handler(ctx)`` (names it).
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
            timeout: real seconds to wait for each step.
            drain: let the running sync finish by itself (its own timeout still applies)
                instead of asking it to stop at its next safe point.

        Afterwards no thread of the service is left (a handler that ignores the stop
        request for longer than ``timeout`` is abandoned on its daemon thread).

        Raises:
            BlockingCallError: called on the thread of a running event loop (it would wait
                for coroutine handlers that need that loop to end).
        """
        with self._lock:
            if not self._started or self._stopped:
                self._stopped = True
                return
        if self._cluster is not None:
            self._cluster.stop(timeout)  # steps down first: no slot fires while we stop
        self._drain(timeout, drain)
        with self._lock:
            self._stopped = True
        if self._supervisor_ref is not None:
            try:
                self._supervisor_ref.stop(block=True, timeout=timeout)
            except pykka.Timeout:
                log.error("the supervisor did not stop within %s s", timeout)
        if self._runner is not None:
            self._runner.join(timeout)
        if self._store_worker is not None:
            self._store_worker.close(timeout)  # the last runs reach the ledger first
        if self._loop_thread is not None:
            self._loop_thread.close(timeout)
        if isinstance(self.clock, SystemClock):
            self.clock.join(timeout)  # returns at once if another user still has wake-ups armed
        self.store.close()

    def _drain(self, timeout: float, let_finish: bool) -> None:
        """Let the running sync end and be recorded before the actors stop."""
        try:
            orchestrator = self.status(timeout=min(timeout, ASK_TIMEOUT))["orchestrator"]
        except ServiceUnavailableError:
            orchestrator = "failed"
        if orchestrator == "failed":
            return  # nobody left to record the run
        if orchestrator == "restarting":
            self._supervisor.tell(RestartChild(ORCHESTRATOR))  # now, not after the backoff
        for stop_running in ([False, True] if let_finish else [True]):
            reply: Future[Any] = Future()
            self._addresses[ORCHESTRATOR].tell(Drain(reply, stop_running=stop_running))
            try:
                reply.result(timeout)
                return
            except FutureTimeout:
                if not stop_running:
                    log.warning("the running sync did not finish within %s s; asking it to stop", timeout)
        log.error("the running sync did not stop within %s s; stopping without its record", timeout)

    def __enter__(self) -> SyncService:
        # Refused before starting: on a loop's thread the stop on exit could not run.
        refuse_on_loop("`with SyncService(...)`", "`start()`, then " + _STOP_ON_LOOP)
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- talking to the actors ----------------------------------------------------

    def _check_running(self) -> None:
        if not self._started or self._stopped:
            raise ServiceStateError("the service is not running; call start() first")

    def _send(self, to: str, make: Callable[[Future[Any]], object]) -> Future[Any]:
        """Tell the actor named ``to`` (``"supervisor"`` or a child) a message carrying a reply."""
        self._check_running()
        reply: Future[Any] = Future()
        address = self._supervisor if to == "supervisor" else self._addresses[to]
        address.tell(make(reply))
        return reply

    @staticmethod
    def _wait(reply: Future[T], timeout: float | None, what: str) -> T:
        try:
            return reply.result(timeout)
        except FutureTimeout:
            reply.cancel()
            raise ServiceUnavailableError(f"{what}: no answer from the actors within {timeout} s") from None

    def schedule_future(self) -> Future[dict[str, dict[str, Any]]]:
        """Future of :meth:`schedule`."""
        return self._send("supervisor", GetSchedule)

    @blocking("service.schedule()", _awaitable("schedule_future()") + " or `service.schedule_view()`")
    def schedule(self, timeout: float = ASK_TIMEOUT) -> dict[str, dict[str, Any]]:
        """The schedule as it stands: ``{type: {interval, startDelay, unit, enabled, nextRunAt}}``."""
        return self._wait(self.schedule_future(), timeout, "schedule")

    def schedule_view(self) -> ScheduleView:
        """The schedule as the supervisor last published it, read without a round trip.

        The supervisor publishes a new view after every change and before it answers the
        retune that made it; ``view.rows(service.clock)`` is what :meth:`schedule` returns.

        Raises:
            ServiceStateError: the service is not running.
            ServiceUnavailableError: the supervisor is gone.
        """
        self._check_running()
        view, ref = self._view, self._supervisor_ref
        if view is None or ref is None or not ref.is_alive():
            raise ServiceUnavailableError("schedule: the supervisor is not running")
        return view

    def _publish_view(self, view: ScheduleView) -> None:
        self._view = view  # one reference swap: readers on other threads see either view whole

    def status_future(self) -> Future[dict[str, Any]]:
        """Future of :meth:`status`."""
        return self._send("supervisor", GetStatus)

    @blocking("service.status()", _awaitable("status_future()"))
    def status(self, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
        """Running sync, queue, hold, orchestrator state and per-type details."""
        return self._wait(self.status_future(), timeout, "status")

    def retune_future(
        self,
        sync_type: str,
        interval_minutes: float | None = None,
        start_delay_minutes: float | None = None,
        enabled: bool | None = None,
    ) -> Future[dict[str, dict[str, Any]]]:
        """Future of :meth:`retune`; fails with the validation error if a value is bad."""
        check_sync_type(sync_type, self.sync_types)
        if interval_minutes is None and start_delay_minutes is None and enabled is None:
            raise InvalidValueError(
                "intervalMinutes", "or startDelayMinutes or enabled is required: nothing to change"
            )
        return self._send(
            "supervisor",
            lambda reply: Retune(sync_type, interval_minutes, start_delay_minutes, enabled, reply),
        )

    @blocking("service.retune()", _awaitable("retune_future(...)"))
    def retune(
        self,
        sync_type: str,
        interval_minutes: float | None = None,
        start_delay_minutes: float | None = None,
        enabled: bool | None = None,
        *,
        timeout: float = ASK_TIMEOUT,
    ) -> dict[str, dict[str, Any]]:
        """Change one type's timing live; returns the schedule once the timer applied it.

        Raises:
            UnknownSyncTypeError: ``sync_type`` is unknown.
            InvalidValueError: a value is of the wrong type or out of range (names the field).
        """
        future = self.retune_future(sync_type, interval_minutes, start_delay_minutes, enabled)
        return self._wait(future, timeout, "retune")

    def request_sync_future(self, sync_type: str, trigger: Trigger = "manual") -> Future[dict[str, Any]]:
        """Future of :meth:`request_sync`."""
        check_sync_type(sync_type, self.sync_types)
        if trigger not in TRIGGERS:
            raise InvalidValueError("trigger", f"must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
        now = self.clock.now()
        return self._send(
            ORCHESTRATOR,
            lambda reply: RequestSync(sync_type, trigger, None, now, reply=reply),
        )

    @blocking("service.request_sync()", _awaitable("request_sync_future(...)"))
    def request_sync(
        self, sync_type: str, trigger: Trigger = "manual", *, timeout: float = ASK_TIMEOUT
    ) -> dict[str, Any]:
        """Queue a run of ``sync_type``; returns ``{"syncType", "coalesced"}``."""
        return self._wait(self.request_sync_future(sync_type, trigger), timeout, "request_sync")

    def history_future(self, sync_type: str | None = None, limit: int = 100) -> Future[list[dict[str, Any]]]:
        """Future of :meth:`history`."""
        if sync_type is not None:
            check_sync_type(sync_type, self.sync_types)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidValueError("limit", f"must be a positive whole number, got {limit!r}")
        return self._send(ORCHESTRATOR, lambda reply: GetHistory(reply, sync_type, limit))

    @blocking("service.history()", _awaitable("history_future(...)"))
    def history(
        self, sync_type: str | None = None, limit: int = 100, *, timeout: float = ASK_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Runs newest first, of one type or all."""
        return self._wait(self.history_future(sync_type, limit), timeout, "history")

    def health_future(self) -> Future[dict[str, Any]]:
        """Future of :meth:`health`."""
        health: Future[dict[str, Any]] = Future()

        def derive(status: Future[dict[str, Any]]) -> None:
            try:
                health.set_result(health_from_status(status.result()))
            except BaseException as exc:
                health.set_exception(exc)

        self.status_future().add_done_callback(derive)
        return health

    @blocking("service.health()", _awaitable("health_future()"))
    def health(self, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
        """``{"status": "ok"}``, or ``{"status": "degraded", "failed", "stale", "failing"}`` (lists)."""
        return self._wait(self.health_future(), timeout, "health")

    def wait_idle_future(self) -> Future[bool]:
        """Future of :meth:`wait_idle`, done (True) once nothing runs or waits."""
        return self._send(ORCHESTRATOR, WaitIdle)

    @blocking(
        "service.wait_idle()",
        "`await asyncio.wait_for(asyncio.wrap_future(service.wait_idle_future()), timeout)`",
    )
    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing runs or waits; False if that did not happen within ``timeout``."""
        try:
            return bool(self.wait_idle_future().result(timeout))
        except FutureTimeout:
            return False

    def exclusive(self, timeout: float | None = None) -> ExclusiveHold:
        """A hold that stops the running sync and keeps new ones from starting.

        Use as ``with service.exclusive():`` on a thread, ``async with service.exclusive():``
        in a coroutine (``with`` on an event loop's thread raises ``BlockingCallError``:
        it would wait for a coroutine handler that needs that very loop to stop).

        Args:
            timeout: real seconds entering waits for the running sync to end (None: no limit).
        """
        return ExclusiveHold(self, timeout)

    def inject_fault(self, name: str) -> None:
        """Crash the timer of type ``name`` (or ``"orchestrator"``) through the real failure path.

        Raises:
            UnknownSyncTypeError: ``name`` is neither a sync type nor "orchestrator".
        """
        if name != ORCHESTRATOR:
            check_sync_type(name, self.sync_types)
        self._check_running()
        self._addresses[name].tell(Crash())

    def _tell(self, name: str, message: object) -> None:
        self._addresses[name].tell(message)
