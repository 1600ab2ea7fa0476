"""Running a serial computation spread over threads on one CPU, as batch work.

A simulation is one serial computation passed from thread to thread: the clock's
advancing ends a run and wakes the orchestrator, whose next start arms the clock and
lets the advancing go on. Only one of them works at a time. Spread over several CPUs,
every hand-off also moves the GIL and the objects just touched from one CPU's cache to
another's; kept on one CPU, a hand-off is a context switch. On the 2-core VM the project
is measured on, a simulated day of 60 agents took 3.8-4.0 s on one CPU and 4.4-8.1 s
spread over two (interleaved runs; the spread depends on where the host places the
VM's CPUs).

The threads are also marked as batch work (``SCHED_BATCH``): a thread woken by another
then waits for the waker to block instead of preempting it, only to find the GIL held
and switch back. That takes a hand-off from three context switches to two; a simulated
day at mc 4 took 1.48-1.63 s instead of 1.59-1.77 s (six interleaved pairs).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["on_one_cpu"]

T = TypeVar("T")

log = logging.getLogger("archibald_actors.planning")

#: Which of the allowed CPUs the next call runs on: computations at once take turns.
_NEXT_CPU = itertools.count()


def on_one_cpu(work: Callable[[], T]) -> T:
    """Run ``work`` on a new thread confined to one CPU, wait for it, and return its result.

    The threads ``work`` starts inherit the confinement and the batch policy; the
    caller's thread keeps its own. An exception ``work`` raises is raised here. Where
    threads cannot be confined (not Linux), ``work`` runs on the caller's thread; where
    confining fails, unconfined.
    """
    if not hasattr(os, "sched_setaffinity"):
        return work()
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[next(_NEXT_CPU) % len(cpus)]
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            try:
                os.sched_setaffinity(0, {cpu})  # 0: the calling thread (Linux)
            except OSError as exc:  # a CPU taken away meanwhile, say: slower, not wrong
                log.debug("cannot confine to CPU %d (%s); running unconfined", cpu, exc)
            _as_batch()
            result.append(work())
        except BaseException as exc:  # handed to the caller as it is
            failure.append(exc)

    # Named after the caller: log filters that go by the thread's name still apply.
    thread = threading.Thread(target=run, name=f"{threading.current_thread().name}-cpu{cpu}", daemon=True)
    thread.start()
    thread.join()  # as long as the work: its own guards bound it (a sandbox: the clock's quiet
    # timeout per step, the caller's budget and cancel flag), as when it ran on this thread
    if failure:
        raise failure[0]
    return result[0]


def _as_batch() -> None:
    """Mark the calling thread (and the threads it starts) as batch work, if the OS lets it."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # 0: the calling thread
    except (AttributeError, OSError) as exc:  # no such policy here: slower, not wrong
        log.debug("cannot run as batch work (%s)", exc)
