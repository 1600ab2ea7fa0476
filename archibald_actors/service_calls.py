"""``ServiceCalls``: every call a ``SyncService`` makes to its running actors, in both forms.

``status_future()`` returns a ``concurrent.futures.Future`` that an asyncio caller awaits
through ``asyncio.wrap_future`` without blocking its loop; ``status()`` waits for it with a
timeout and refuses to run on the thread of a running event loop (``BlockingCallError``,
naming the form to await). ``SyncService`` adds construction and the lifecycle.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any, TypeVar

import pykka

from archibald_actors.actors.base import Address
from archibald_actors.actors.runner import SyncRunner
from archibald_actors.actors.supervisor import ORCHESTRATOR
from archibald_actors.agent import check_agent_id
from archibald_actors.clock import Clock
from archibald_actors.domain import TRIGGERS, Trigger
from archibald_actors.errors import InvalidValueError, ServiceStateError, ServiceUnavailableError
from archibald_actors.exclusive import ExclusiveHold
from archibald_actors.loop_guard import blocking
from archibald_actors.messages import (
    Crash,
    GetHistory,
    GetSchedule,
    GetStatus,
    RequestSync,
    Retune,
    WaitIdle,
)
from archibald_actors.schedule import check_sync_type
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.status import health_from_status

__all__ = ["ASK_TIMEOUT", "ServiceCalls", "awaitable"]

T = TypeVar("T")
U = TypeVar("U")
#: Real seconds a blocking call waits for the actors by default.
ASK_TIMEOUT = 5.0


def awaitable(future_call: str) -> str:
    """The awaitable form of a call, as a loop guard's message names it."""
    return f"`await asyncio.wrap_future(service.{future_call})`"


def _then(future: Future[T], make: Callable[[T], U]) -> Future[U]:
    """A future of ``make(result)``, failing with ``future``'s error or ``make``'s."""
    derived: Future[U] = Future()

    def derive(done: Future[T]) -> None:
        try:
            derived.set_result(make(done.result()))
        except BaseException as exc:
            derived.set_exception(exc)

    future.add_done_callback(derive)
    return derived


class ServiceCalls:
    """The calls to the actors; the attributes below are set by ``SyncService``."""

    clock: Clock
    sync_types: tuple[str, ...]
    _started: bool
    _stopped: bool
    _supervisor: Address
    _addresses: dict[str, Address]
    _supervisor_ref: pykka.ActorRef[Any] | None
    _view: ScheduleView | None
    _runner: SyncRunner | None

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

    @blocking("service.schedule()", awaitable("schedule_future()") + " or `service.schedule_view()`")
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
        return _then(self._send("supervisor", GetStatus), self._with_threads)

    def _with_threads(self, status: dict[str, Any]) -> dict[str, Any]:
        """The actors' status plus the count of abandoned handler threads (the runner's, not theirs)."""
        return {**status, "abandonedThreads": self.abandoned_threads}

    @property
    def abandoned_threads(self) -> int:
        """Handler threads written off after a timeout or a stop that are still alive."""
        runner = self._runner
        return 0 if runner is None else runner.abandoned_threads

    @blocking("service.status()", awaitable("status_future()"))
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

    @blocking("service.retune()", awaitable("retune_future(...)"))
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

    def request_sync_future(
        self, sync_type: str, trigger: Trigger = "manual", *, agent_id: str | None = None
    ) -> Future[dict[str, Any]]:
        """Future of :meth:`request_sync`; fails with its errors."""
        check_sync_type(sync_type, self.sync_types)
        if trigger not in TRIGGERS:
            raise InvalidValueError("trigger", f"must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
        if agent_id is not None:
            check_agent_id(agent_id)
        now = self.clock.now()
        return self._send(
            ORCHESTRATOR,
            lambda reply: RequestSync(sync_type, trigger, None, now, reply=reply, agent_id=agent_id),
        )

    @blocking("service.request_sync()", awaitable("request_sync_future(...)"))
    def request_sync(
        self,
        sync_type: str,
        trigger: Trigger = "manual",
        agent_id: str | None = None,
        *,
        timeout: float = ASK_TIMEOUT,
    ) -> dict[str, Any]:
        """Queue a run of ``sync_type``; returns ``{"syncType", "coalesced"}``.

        For a per-agent type, ``agent_id`` runs that agent's job only; None runs every
        enabled agent's (``coalesced`` is then true only if every job merged into a pending one).

        Raises:
            UnknownSyncTypeError: ``sync_type`` is unknown.
            InvalidValueError: a bad ``trigger`` or ``agent_id``, an ``agent_id`` for a shared
                type, or one of a disabled agent.
            UnknownAgentError: ``agent_id`` is not a stored agent.
        """
        future = self.request_sync_future(sync_type, trigger, agent_id=agent_id)
        return self._wait(future, timeout, "request_sync")

    def history_future(
        self,
        sync_type: str | None = None,
        limit: int = 100,
        *,
        agent_id: str | None = None,
        before: datetime | None = None,
    ) -> Future[list[dict[str, Any]]]:
        """Future of :meth:`history`."""
        if sync_type is not None:
            check_sync_type(sync_type, self.sync_types)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidValueError("limit", f"must be a positive whole number, got {limit!r}")
        if agent_id is not None:
            check_agent_id(agent_id)
        if before is not None and (not isinstance(before, datetime) or before.utcoffset() is None):
            raise InvalidValueError("before", f"must be a datetime with a time zone, got {before!r}")
        return self._send(ORCHESTRATOR, lambda reply: GetHistory(reply, sync_type, limit, agent_id, before))

    @blocking("service.history()", awaitable("history_future(...)"))
    def history(
        self,
        sync_type: str | None = None,
        limit: int = 100,
        *,
        agent_id: str | None = None,
        before: datetime | None = None,
        timeout: float = ASK_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Runs newest first by start, of one type or all, of one agent or all.

        Args:
            sync_type: one type, or None for all.
            limit: at most this many runs.
            agent_id: one agent's runs, or None for everyone's (shared types' too).
            before: only runs that started strictly before it (the ``startedAt`` of the
                last run seen, to page back through the ledger); a datetime with a zone.
            timeout: real seconds to wait for the answer.
        """
        future = self.history_future(sync_type, limit, agent_id=agent_id, before=before)
        return self._wait(future, timeout, "history")

    def health_future(self) -> Future[dict[str, Any]]:
        """Future of :meth:`health`."""
        return _then(self.status_future(), health_from_status)

    @blocking("service.health()", awaitable("health_future()"))
    def health(self, timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
        """``{"status": "ok"}``, or ``{"status": "degraded", "failed", "stale", "failing"}`` (lists).

        A degraded body also has ``abandonedThreads`` once more than 8 handler threads that
        ignored a stop are still alive.
        """
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

    def exclusive(self, timeout: float | None = None, *, agent_id: str | None = None) -> ExclusiveHold:
        """A hold that stops the running jobs and keeps new ones from starting.

        Use as ``with service.exclusive():`` on a thread, ``async with service.exclusive():``
        in a coroutine (``with`` on an event loop's thread raises ``BlockingCallError``:
        it would wait for a coroutine handler that needs that very loop to stop).

        Args:
            timeout: real seconds entering waits for the running jobs to end (None: no limit).
            agent_id: hold only that agent's lane (a user's action in its ERP session);
                the other agents' jobs and the shared types go on. None holds every lane.

        Raises:
            InvalidValueError: ``agent_id`` is not a valid agent id.
        """
        if agent_id is not None:
            check_agent_id(agent_id)
        return ExclusiveHold(self, timeout, agent_id)

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
