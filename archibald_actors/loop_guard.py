"""Refusing blocking calls on the thread of a running asyncio event loop.

A blocking ``SyncService`` method called from a coroutine holds the loop until the actors
answer, and when the answer itself needs that loop (a coroutine handler being stopped for
``exclusive()``, or cancelled by ``stop()``), it waits for its full timeout while the whole
host stands still. Failing at once, naming the awaitable form, turns that hang into a
traceback that says what to write instead.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from archibald_actors.errors import BlockingCallError

__all__ = ["blocking", "refuse_on_loop"]

P = ParamSpec("P")
R = TypeVar("R")


def refuse_on_loop(call: str, instead: str) -> None:
    """Raise if the calling thread runs an asyncio event loop right now.

    Args:
        call: what was called, as the user wrote it (``service.status()``).
        instead: the form that does not block the loop.

    Raises:
        BlockingCallError: called on the thread of a running event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # no loop on this thread: blocking is fine
    raise BlockingCallError(
        f"{call} blocks and was called on the thread of a running asyncio event loop, "
        f"which it would freeze; use {instead} instead"
    )


def blocking(call: str, instead: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a blocking method so that it refuses to run on an event loop's thread.

    Args:
        call: the call as a user writes it, for the message.
        instead: the awaitable form to use on the loop, for the message.
    """

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            refuse_on_loop(call, instead)
            return method(*args, **kwargs)

        return guarded

    return decorate
