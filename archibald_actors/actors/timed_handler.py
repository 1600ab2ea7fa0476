"""``TimedHandler``: a handler that only takes time, the planning sandbox's simulated runs.

No code of it runs while its run goes on, so the runner needs no thread and no loop for
it: the handler arms the run's end on the clock and reports it when it comes (or at
once, ``cancelled``, when the run is stopped, as a sleeping coroutine would end).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from archibald_actors.clock import Clock
from archibald_actors.domain import Outcome

if TYPE_CHECKING:  # the runner imports this module
    from archibald_actors.actors.runner import SyncContext

__all__ = ["TimedHandler"]

log = logging.getLogger("archibald_actors.runner")

T = TypeVar("T")

#: Reports a run's end once: ``(outcome, error)``.
Finish = Callable[[Outcome, "str | None"], None]


class TimedHandler:
    """A handler whose run ends ``seconds(ctx)`` clock seconds after it starts.

    Args:
        seconds: how long the run takes, asked once as it starts.
        ended: called when the run ends on time (not when it is stopped).
        name: the handler's name in logs and errors.
    """

    def __init__(
        self,
        seconds: Callable[[SyncContext], float],
        ended: Callable[[SyncContext], None] | None = None,
        name: str = "timed_handler",
    ) -> None:
        self.seconds = seconds
        self.ended = ended
        self.__name__ = self.__qualname__ = name

    async def __call__(self, ctx: SyncContext) -> None:
        """Run as an ordinary coroutine handler (outside a ``SyncRunner``): sleep that long."""
        await ctx.sleep(self.seconds(ctx))
        if self.ended is not None:
            self.ended(ctx)

    def start(self, ctx: SyncContext, clock: Clock, finish: Finish) -> Callable[[], None]:
        """Arm the run's end on ``clock``; ``finish`` hears of it once. Return what stops it."""
        seconds, failure = _call(self.seconds, ctx)
        if failure is not None:  # it cannot say how long it takes: it failed at once
            finish("failed", failure)
            return lambda: None
        ended = threading.Lock()  # the clock and a stop may race: the first one ends the run

        def end(stopped: bool) -> None:
            if not ended.acquire(blocking=False):
                return
            wakeup.cancel()
            outcome: Outcome = "cancelled"
            error: str | None = f"{ctx.sync_type} sync was asked to stop"
            if not stopped:
                _, error = _call(self.ended, ctx)
                outcome = "success" if error is None else "failed"
            finish(outcome, error)

        wakeup = clock.call_at(clock.now() + max(0.0, seconds or 0.0), lambda: end(stopped=False))
        return lambda: end(stopped=True)


def _call(hook: Callable[[SyncContext], T] | None, ctx: SyncContext) -> tuple[T | None, str | None]:
    """Call a hook: what it returned, or what it raised as a run's error."""
    try:
        return (None if hook is None else hook(ctx)), None
    except Exception as exc:  # a failing handler is recorded, never fatal
        log.warning("%s sync failed: %s", ctx.sync_type, exc, exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"
