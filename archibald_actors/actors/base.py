"""What every actor of the service shares: a stable ``Address`` and the ``TrackedActor`` base.

An ``Address`` outlives the actor behind it. While a supervised child is dead or waiting
for its restart, messages sent to it are kept in order and delivered to the replacement,
together with whatever was still in the dead actor's inbox: no accepted message is lost
across a restart.

A message an actor tells itself, on its own thread, skips the mailbox: it is handled as
soon as the message being handled is done. That is how the answer of a store that answers
at once comes back (the memory store: a claim and a run record per job), without a round
trip through pykka's queue. The order is one a store on a thread could produce as well:
the answer after the call, possibly before messages that were already waiting.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
from types import TracebackType
from typing import Any, Protocol

import pykka

from archibald_actors.clock import Activity
from archibald_actors.messages import Crash

__all__ = ["Address", "InjectedFaultError", "TrackedActor"]

log = logging.getLogger("archibald_actors")

#: ``actor``: the ``TrackedActor`` whose thread this is (unset on other threads).
_home = threading.local()


class InjectedFaultError(RuntimeError):
    """Raised by an actor that received ``Crash`` (``service.inject_fault``)."""


class _Inbox(Protocol):
    def empty(self) -> bool: ...

    def get(self) -> Any: ...

    def put(self, item: Any) -> None: ...


class Address:
    """Where messages for one named actor go, across its restarts."""

    def __init__(self, name: str, activity: Activity) -> None:
        self.name = name
        self._activity = activity
        self._lock = threading.Lock()
        self._ref: pykka.ActorRef[Any] | None = None
        self._backlog: list[object] = []

    def tell(self, message: object) -> None:
        """Deliver ``message`` now, or keep it for the next incarnation."""
        actor = getattr(_home, "actor", None)
        if actor is not None and actor._sv_address is self:
            self._activity.begin()
            actor._sv_own.append(message)
            return
        with self._lock:
            if self._ref is not None:
                self._activity.begin()
                try:
                    self._ref.tell(message)
                    return
                except pykka.ActorDeadError:
                    self._activity.end()
                    self._ref = None
            # Kept messages do not count as activity: the restart that delivers them is
            # itself a clock wake-up, and a ManualClock must be able to reach it.
            self._backlog.append(message)

    def attach(self, ref: pykka.ActorRef[Any]) -> None:
        """Point the address at a (new) actor and hand it the kept messages in order."""
        with self._lock:
            backlog, self._backlog = self._backlog, []
            self._ref = ref
            for message in backlog:
                self._activity.begin()
                ref.tell(message)

    def detach(self, inbox: _Inbox, own: collections.deque[object]) -> None:
        """Called by the dying actor in its own thread: keep its unread messages.

        ``own`` holds the messages it told itself, which come before its inbox. Our
        messages are frozen dataclasses; anything else (pykka's own stop request, which a
        caller may be waiting on) goes back to the inbox for pykka to answer.
        """
        with self._lock:
            self._ref = None
            salvaged: list[object] = list(own)
            for _ in own:
                self._activity.end()
            own.clear()
            foreign: list[Any] = []
            # Only the dying actor's own thread reads its inbox, so empty() then get() is safe.
            while not inbox.empty():
                envelope = inbox.get()
                if not dataclasses.is_dataclass(envelope.message):
                    foreign.append(envelope)
                    continue
                salvaged.append(envelope.message)
                self._activity.end()
            for envelope in foreign:
                inbox.put(envelope)
            self._backlog[:0] = salvaged


class TrackedActor(pykka.ThreadingActor):
    """A pykka actor that accounts its messages to the clock's ``Activity``.

    Subclasses implement :meth:`handle`; ``Crash`` is handled here for every actor.
    """

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:  # pykka's hook for actor types
        # The C queue: pykka's default, a queue.Queue, takes and hands over each message
        # under a Condition written in Python, a few microseconds per message.
        return queue.SimpleQueue()

    def __init__(self, address: Address, activity: Activity) -> None:
        super().__init__()
        self._sv_address = address
        self._sv_activity = activity
        self._sv_own: collections.deque[object] = collections.deque()  # told to itself
        # Starting counts as activity until on_start has run (a ManualClock waits for it).
        activity.begin()

    def on_start(self) -> None:
        """Run :meth:`on_started`; the start's unit of activity ends either way."""
        try:
            self.on_started()
        finally:
            self._sv_activity.end()
        # From now on what it tells itself skips the mailbox. (Not while starting: pykka
        # only logs a failure in on_start, where a message's failure restarts the actor.)
        _home.actor = self

    def on_started(self) -> None:
        """Subclass hook: the actor's first act in its own thread."""

    def on_receive(self, message: Any) -> None:
        """Dispatch to :meth:`handle`; the message's unit of activity ends when it is done.

        When the handler raises, the unit lasts until :meth:`on_failure` has reported the
        death, so a ManualClock never sees the system quiet in between.
        """
        if isinstance(message, Crash):
            raise InjectedFaultError(f"fault injected into {self._sv_address.name}")
        self.handle(message)
        self._sv_activity.end()
        self._handle_own()

    def _handle_own(self) -> None:
        """Handle the messages this actor told itself meanwhile (see the module docstring)."""
        own = self._sv_own
        while own:
            self.handle(own.popleft())
            self._sv_activity.end()

    def handle(self, message: Any) -> None:
        """Handle one message of this actor's protocol."""
        log.warning("%s ignored an unexpected message: %r", self._sv_address.name, message)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Keep unread messages for the replacement, then report the death."""
        try:
            self._detach()
            self.on_death(f"{type(exception_value).__name__}: {exception_value}")
        finally:
            self._sv_activity.end()  # the unit of the message that killed the actor

    def on_stop(self) -> None:
        """Keep unread messages on a clean stop as well (nothing counted stays in flight)."""
        self._detach()

    def _detach(self) -> None:
        """Hand the unread messages, those told to itself first, to the next incarnation."""
        _home.actor = None  # what it tells itself from now on waits for that incarnation too
        self._sv_address.detach(self.actor_inbox, self._sv_own)

    def on_death(self, error: str) -> None:
        """Subclass hook after a failure: release resources, tell the supervisor."""
