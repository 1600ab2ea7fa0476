"""Running one sync handler outside the orchestrator's message handler.

A plain function runs on a daemon handler thread. A thread that finished its run waits
for the next one, so the runs of a slot cost no thread start each (the orchestrator would
wait for every new thread to be scheduled); a handler that never returns keeps its thread,
which is never handed another run. A coroutine function runs on the service's asyncio
loop; a ``TimedHandler`` (a simulated run, which only takes time) runs nowhere: its end
is armed on the clock. Either way the outcome comes back to the orchestrator as
``SyncFinished``, so the orchestrator stays free to answer status queries and retunes
while a sync runs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, Protocol

from archibald_actors.actors.base import Address
from archibald_actors.actors.timed_handler import TimedHandler
from archibald_actors.clock import Clock, Deadline
from archibald_actors.domain import Outcome, Trigger
from archibald_actors.errors import NeedsLogin, SyncCancelledError
from archibald_actors.messages import SyncFinished

__all__ = ["PROGRESS_EVERY", "LoopProvider", "Progress", "SyncContext", "SyncHandler", "SyncRunner"]

log = logging.getLogger("archibald_actors.runner")

SyncHandler = Callable[["SyncContext"], Any]
#: What a handler thread waits on: its next run, or None to end.
_Inbox = queue.SimpleQueue[Callable[[], None] | None]
#: ``{"done", "total", "message"}``: how far a running job says it is.
Progress = dict[str, Any]
#: Clock seconds between two progress reports of one job that are passed on: a handler
#: may report every row, and a listener needs no more than a refresh a second.
PROGRESS_EVERY = 1.0


class LoopProvider(Protocol):
    """Gives the asyncio loop coroutine handlers run on."""

    def __call__(self) -> asyncio.AbstractEventLoop:
        """Return a running loop (starting one if needed)."""
        ...


class SyncContext:
    """What a handler gets: which job this is, a clock-aware ``sleep`` and ``progress``.

    Attributes:
        sync_type: the type being synced.
        trigger: "auto", "manual" or "retry".
        scheduled_at: clock time of the slot served (None for manual runs).
        agent_id: the agent whose ERP session a per-agent job uses (None for a shared type).
        attempt: which try of the job this is (1 first, more for retries).
    """

    def __init__(
        self,
        *,
        sync_type: str,
        trigger: Trigger,
        scheduled_at: float | None,
        clock: Clock,
        is_async: bool,
        agent_id: str | None = None,
        attempt: int = 1,
        on_progress: Callable[[Progress, bool], None] | None = None,
    ) -> None:
        self.sync_type = sync_type
        self.trigger = trigger
        self.scheduled_at = scheduled_at
        self.agent_id = agent_id
        self.attempt = attempt
        self._clock = clock
        self._is_async = is_async
        self._lock = threading.Lock()
        self._stop = False
        self._interrupt: Callable[[], None] | None = None
        self._on_progress = on_progress
        self._progress_at = float("-inf")

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Say how far the job is (``done`` of ``total`` units, if known); cheap to call per row.

        The latest report is what the status shows; at most one per ``PROGRESS_EVERY``
        clock seconds (and the last one, ``done == total``) is published as ``sync.progress``.
        """
        report: Progress = {"done": done, "total": total, "message": message}
        now = self._clock.now()
        publish = now - self._progress_at >= PROGRESS_EVERY or (total is not None and done >= total)
        if publish:
            self._progress_at = now
        if self._on_progress is not None:
            self._on_progress(report, publish)

    def detach_progress(self) -> None:
        """The run ended: later ``progress`` calls are kept nowhere."""
        self._on_progress = None

    @property
    def stop_requested(self) -> bool:
        """True once the run should end at its next safe point."""
        with self._lock:
            return self._stop

    def request_stop(self) -> None:
        """Ask the run to stop; a ``sleep`` in progress ends with ``SyncCancelledError``."""
        with self._lock:
            self._stop = True
            interrupt, self._interrupt = self._interrupt, None
        if interrupt is not None:
            interrupt()

    def sleep(self, seconds: float) -> Any:
        """Wait ``seconds`` on the service clock.

        Blocking in a plain handler; returns an awaitable in a coroutine handler.

        Raises:
            SyncCancelledError: the run was asked to stop before or during the wait.
        """
        if self._is_async:
            return self._sleep_async(seconds)
        self._sleep_blocking(seconds)
        return None

    def _arm(self, seconds: float, wake: Callable[[], None]) -> bool:
        """Arm the clock wake-up and the stop interrupt; False if a stop is already requested."""
        activity = self._clock.activity
        woken = threading.Lock()

        def once() -> None:
            # Whichever comes first, the clock or a stop, makes the sleeper runnable.
            if woken.acquire(blocking=False):
                activity.begin()
                wake()

        with self._lock:
            if self._stop:
                return False
            handle = self._clock.call_at(self._clock.now() + max(0.0, seconds), once)

            def interrupt() -> None:
                handle.cancel()
                once()

            self._interrupt = interrupt
        activity.end()
        return True

    def _disarm(self) -> None:
        with self._lock:
            self._interrupt = None
            if self._stop:
                raise SyncCancelledError(f"{self.sync_type} sync was asked to stop")

    def _sleep_blocking(self, seconds: float) -> None:
        event = threading.Event()
        if self._arm(seconds, event.set):
            event.wait()
        self._disarm()

    async def _sleep_async(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not future.done():
                future.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(resolve)

        if self._arm(seconds, wake):
            await future
        self._disarm()


class SyncRunner:
    """Starts a handler for one run and reports its end to the orchestrator."""

    def __init__(self, clock: Clock, orchestrator: Address, loop_provider: LoopProvider) -> None:
        self._clock = clock
        self._orchestrator = orchestrator
        self._loop_provider = loop_provider
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}  # the threads of live plain runs, by run id
        self._idle: list[tuple[_Inbox, threading.Thread]] = []  # threads waiting for a run
        self._closed = False  # set by join: a thread ends after its run
        self._abandoned: set[int] = set()  # run ids written off while their thread lives on

    def start(self, run_id: int, handler: SyncHandler, ctx_args: dict[str, Any]) -> Callable[[], None]:
        """Start ``handler``; return a function that asks the run to stop (cancels a coroutine)."""
        if isinstance(handler, TimedHandler):  # a simulated run: no thread, no loop
            ctx = SyncContext(clock=self._clock, is_async=False, **ctx_args)

            def finish(outcome: Outcome, error: str | None) -> None:
                self._finish(run_id, ctx, outcome, error, begun=False)

            return handler.start(ctx, self._clock, finish)
        is_async = inspect.iscoroutinefunction(handler)
        ctx = SyncContext(clock=self._clock, is_async=is_async, **ctx_args)
        self._clock.activity.begin()  # the run is runnable until it finishes or sleeps
        if is_async:
            return self._start_coroutine(run_id, handler, ctx)
        with self._lock:
            waiting = self._idle.pop() if self._idle else None
        if waiting is None:
            inbox: _Inbox = queue.SimpleQueue()
            # Daemon: a handler that never returns must not keep the process alive.
            thread = threading.Thread(target=self._serve, args=(inbox,), daemon=True)
            thread.start()
        else:
            inbox, thread = waiting
        thread.name = f"archibald-sync-{ctx.sync_type}"
        with self._lock:
            self._threads[run_id] = thread
        inbox.put(functools.partial(self._run_blocking, run_id, handler, ctx))
        return ctx.request_stop

    def _serve(self, inbox: _Inbox) -> None:
        """A handler thread: runs what it is handed, and between runs waits for the next."""
        while (run := inbox.get()) is not None:
            run()
            del run  # the finished run's objects go now, not when the next run comes
            with self._lock:
                if self._closed:
                    return
                self._idle.append((inbox, threading.current_thread()))

    def _finish(
        self,
        run_id: int,
        ctx: SyncContext,
        outcome: Outcome,
        error: str | None,
        *,
        result: dict[str, Any] | None = None,
        reason: str | None = None,
        begun: bool = True,
    ) -> None:
        # Progress after the end means nothing; dropping the callback also breaks the cycle
        # job -> stop -> ctx -> progress -> job, so a run's objects go when the job does
        # rather than at the next cyclic collection.
        ctx.detach_progress()
        finished = SyncFinished(run_id, outcome, error, self._clock.now(), result=result, reason=reason)
        self._orchestrator.tell(finished)
        if begun:  # the run held a unit of activity (a timed run never does)
            self._clock.activity.end()

    def _succeeded(self, run_id: int, ctx: SyncContext, returned: object) -> None:
        self._finish(run_id, ctx, "success", None, result=_result(ctx, returned))

    def _needs_login(self, run_id: int, ctx: SyncContext, exc: NeedsLogin) -> None:
        log.info("%s sync of %s skipped: needs login: %s", ctx.sync_type, ctx.agent_id, exc)
        self._finish(run_id, ctx, "skipped", None, reason=str(exc) or "needs login")

    def _run_blocking(self, run_id: int, handler: SyncHandler, ctx: SyncContext) -> None:
        try:
            returned = handler(ctx)
        except SyncCancelledError as exc:
            self._finish(run_id, ctx, "cancelled", str(exc))
        except NeedsLogin as exc:
            self._needs_login(run_id, ctx, exc)
        except Exception as exc:  # a failing handler is recorded, never fatal
            log.warning("%s sync failed: %s", ctx.sync_type, exc, exc_info=True)
            self._finish(run_id, ctx, "failed", f"{type(exc).__name__}: {exc}")
        else:
            self._succeeded(run_id, ctx, returned)
        finally:
            with self._lock:
                self._threads.pop(run_id, None)
                self._abandoned.discard(run_id)

    def abandon(self, run_id: int) -> None:
        """Run ``run_id`` was written off: count its thread as abandoned while it lives on."""
        with self._lock:
            if run_id in self._threads:
                self._abandoned.add(run_id)

    @property
    def abandoned_threads(self) -> int:
        """Handler threads written off (after a timeout or a stop) that are still alive."""
        with self._lock:
            return len(self._abandoned)

    def _start_coroutine(self, run_id: int, handler: SyncHandler, ctx: SyncContext) -> Callable[[], None]:
        loop = self._loop_provider()
        task_box: Future[asyncio.Task[Any]] = Future()

        async def run() -> None:
            try:
                returned = await handler(ctx)
            except (asyncio.CancelledError, SyncCancelledError) as exc:
                self._finish(run_id, ctx, "cancelled", str(exc) or "cancelled")
            except NeedsLogin as exc:
                self._needs_login(run_id, ctx, exc)
            except Exception as exc:  # a failing handler is recorded, never fatal
                log.warning("%s sync failed: %s", ctx.sync_type, exc, exc_info=True)
                self._finish(run_id, ctx, "failed", f"{type(exc).__name__}: {exc}")
            else:
                self._succeeded(run_id, ctx, returned)

        def create() -> None:
            coro: Awaitable[None] = run()
            task_box.set_result(loop.create_task(coro))  # type: ignore[arg-type]

        loop.call_soon_threadsafe(create)

        def stop() -> None:
            ctx.request_stop()

            def cancel(done: Future[asyncio.Task[Any]]) -> None:
                task = done.result()
                loop.call_soon_threadsafe(task.cancel)

            task_box.add_done_callback(cancel)

        return stop

    def join(self, deadline: Deadline) -> None:
        """Wait until ``deadline`` at the latest for handler threads to end; abandon the rest."""
        with self._lock:
            self._closed = True
            threads = dict(self._threads)
            idle, self._idle = self._idle, []
        for inbox, _ in idle:
            inbox.put(None)
        for thread in [*threads.values(), *(thread for _, thread in idle)]:
            thread.join(deadline.left())
        with self._lock:
            self._abandoned.update(run_id for run_id in threads if run_id in self._threads)
            left = len(self._abandoned)
        if left:
            log.warning("%d sync handler thread(s) did not end; abandoned (daemon threads)", left)


def _result(ctx: SyncContext, returned: object) -> dict[str, Any] | None:
    """What a handler returned, if it is a JSON-able dict (the run's ``result``), else None.

    Anything else is logged and dropped: the sync itself succeeded, and failing it for
    its return value would make a working handler read as broken.
    """
    if returned is None:
        return None
    if isinstance(returned, dict):
        try:
            text = json.dumps(returned, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.warning("%s sync returned a dict that is not JSON (%s); no result kept", ctx.sync_type, exc)
            return None
        parsed: dict[str, Any] = json.loads(text)  # a copy the handler can no longer change
        return parsed
    log.warning("%s sync returned %s, not a dict; no result kept", ctx.sync_type, type(returned).__name__)
    return None
