"""``WorkerPool``: threads that run plain sync handlers, reused from one run to the next.

Starting a thread per run costs a few hundred microseconds on the path from a slot to
its handler; an idle worker takes the next job at once. A handler that hangs keeps its
worker busy for good, so the next run simply gets another worker: a hung sync never
blocks the pool.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable

__all__ = ["WorkerPool"]

log = logging.getLogger("archibald_actors.workers")

Job = Callable[[], None]


class WorkerPool:
    """Runs jobs on daemon threads named ``archibald-worker-N``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Job | None]] = []
        self._threads: set[threading.Thread] = set()
        self._names = itertools.count(1)
        self._closed = False

    def submit(self, job: Job) -> None:
        """Run ``job`` on an idle worker, or on a new one."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            if self._idle:
                self._idle.pop().put(job)
                return
            inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
            inbox.put(job)
            thread = threading.Thread(
                target=self._work, args=(inbox,), name=f"archibald-worker-{next(self._names)}", daemon=True
            )
            self._threads.add(thread)
        thread.start()

    def _work(self, inbox: queue.SimpleQueue[Job | None]) -> None:
        try:
            while (job := inbox.get()) is not None:
                try:
                    job()
                except Exception:  # jobs report their own outcome; this is a last resort
                    log.exception("a worker job failed")
                with self._lock:
                    if self._closed:
                        return
                    self._idle.append(inbox)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def close(self, timeout: float) -> None:
        """Let idle workers end and wait up to ``timeout`` for busy ones."""
        with self._lock:
            self._closed = True
            for inbox in self._idle:
                inbox.put(None)
            self._idle.clear()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
