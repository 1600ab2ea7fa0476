"""``ExclusiveHold``: the reference-counted hold of ``SyncService.exclusive()``."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any

from archibald_actors.actors.supervisor import ORCHESTRATOR
from archibald_actors.loop_guard import refuse_on_loop
from archibald_actors.messages import Hold, Release

if TYPE_CHECKING:
    from archibald_actors.service_calls import ServiceCalls

__all__ = ["ExclusiveHold"]


class ExclusiveHold:
    """A reference-counted hold of every lane, or of one agent's (see ``SyncService.exclusive``).

    ``with`` blocks the calling thread and is refused on an event loop's thread
    (``BlockingCallError``); ``async with`` waits without blocking the loop.
    """

    def __init__(self, service: ServiceCalls, timeout: float | None, agent_id: str | None = None) -> None:
        self._service = service
        self._timeout = timeout
        self._agent_id = agent_id
        self._held = False

    def _take(self) -> Future[Any]:
        self._held = True
        agent_id = self._agent_id
        return self._service._send(ORCHESTRATOR, lambda reply: Hold(reply, agent_id))

    def _release(self) -> None:
        if self._held:
            self._held = False
            self._service._tell(ORCHESTRATOR, Release(self._agent_id))

    def __enter__(self) -> ExclusiveHold:
        # On a loop's thread this would wait for a coroutine handler that needs this loop.
        refuse_on_loop("`with service.exclusive()`", "`async with service.exclusive()`")
        reply = self._take()
        try:
            reply.result(self._timeout)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    async def __aenter__(self) -> ExclusiveHold:
        reply = self._take()
        try:
            await asyncio.wait_for(asyncio.wrap_future(reply), self._timeout)
        except BaseException:
            self._release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()
