"""``LoopThread``: a private asyncio loop for coroutine handlers when the host gives none."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout

__all__ = ["LoopThread"]

log = logging.getLogger("archibald_actors")


class LoopThread:
    """A private asyncio loop on its own thread, for coroutine handlers when no loop is given."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="archibald-loop", daemon=True)
        self._thread.start()

    def close(self, timeout: float) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout)
        except (FutureTimeout, RuntimeError):
            log.warning("coroutine handlers did not finish cancelling within %s s", timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()
