"""How long a simulated run takes: per-type duration ranges, and the handlers that take that long.

A simulation's handlers are ``TimedHandler``s: a run only takes time on the service clock
(the runner arms its end; no thread or loop is involved); the scheduling is the real
service's. Each run's duration is drawn by hashing the seed, the type, the agent and
the clock time the run starts, so a simulation repeats exactly whatever order the runs
of one instant start in, and a run that starts at the same time under two schedules
takes as long in both. With ``sessions`` the ERP login is modelled as the demo handlers
do it: a full login on a session's first use or after it
sat idle, a quick reuse otherwise (one session per agent, one shared by the shared types).
"""

from __future__ import annotations

import hashlib
import statistics
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from archibald_actors.actors.runner import SyncContext, SyncHandler
from archibald_actors.actors.timed_handler import TimedHandler
from archibald_actors.clock import Clock
from archibald_actors.domain import RunRecord
from archibald_actors.handlers.demo import (
    DEFAULT_DEMO_DURATION,
    DEMO_DURATIONS,
    LOGIN_SECONDS,
    SESSION_IDLE_SECONDS,
    SESSION_REUSE_SECONDS,
)

__all__ = ["HISTORY_RUNS", "Workload", "history_durations"]

#: Runs of a type whose median duration a preview takes.
HISTORY_RUNS = 20
#: Outcomes whose duration says how long the type's work takes (a skip did none, a
#: cancelled run was cut short).
_TIMED_OUTCOMES = ("success", "failed", "timeout")


@dataclass(frozen=True)
class Workload:
    """Per-type duration ranges (seconds) a simulation's handlers sleep for.

    Attributes:
        durations: per type ``(shortest, longest)``; a type not listed takes the demo's range.
        seed: seeds every draw.
        sessions: add the demo's ERP login cost (a full login or a session reuse) to each run.
    """

    durations: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    seed: int = 0
    sessions: bool = True

    def range_of(self, sync_type: str) -> tuple[float, float]:
        """``(shortest, longest)`` seconds of a run of ``sync_type``."""
        if sync_type in self.durations:
            return self.durations[sync_type]
        return DEMO_DURATIONS.get(sync_type, DEFAULT_DEMO_DURATION)

    def handlers(self, sync_types: Iterable[str], clock: Clock) -> dict[str, SyncHandler]:
        """A handler per type whose runs take a drawn duration on ``clock``."""
        sessions = _Sessions(clock) if self.sessions else None
        return {t: self._handler(t, clock, sessions) for t in sync_types}

    def _handler(self, sync_type: str, clock: Clock, sessions: _Sessions | None) -> SyncHandler:
        low, high = self.range_of(sync_type)
        seed = self.seed

        def seconds(ctx: SyncContext) -> float:
            agent = ctx.agent_id
            started = clock.now()
            taken = round(_uniform(f"{seed}/{sync_type}/{agent}/{round(started * 1000)}", low, high), 1)
            if sessions is not None:
                taken += sessions.open(agent, started)
            return taken

        def ended(ctx: SyncContext) -> None:
            if sessions is not None:
                sessions.used(ctx.agent_id, clock.now())

        return TimedHandler(seconds, ended, name=f"simulated_{sync_type}_sync")


def _uniform(key: str, low: float, high: float) -> float:
    """A uniform draw in ``[low, high)`` fixed by ``key`` (a seeded hash: cheaper than a generator)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return low + (high - low) * int.from_bytes(digest) / 2**64


class _Sessions:
    """When each ERP session (one per agent, None for the service account) was last used."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[str | None, float] = {}

    def open(self, agent: str | None, now: float) -> float:
        """Seconds opening the session costs now, and mark it in use."""
        with self._lock:
            last = self._used.get(agent)
            self._used[agent] = now
        if last is None or now - last > SESSION_IDLE_SECONDS:
            return LOGIN_SECONDS
        return SESSION_REUSE_SECONDS

    def used(self, agent: str | None, now: float) -> None:
        with self._lock:
            self._used[agent] = now


def history_durations(
    runs: Iterable[RunRecord], per_type: int = HISTORY_RUNS
) -> dict[str, tuple[float, float]]:
    """Per type, the median duration of its latest ``per_type`` timed runs, as a ``(m, m)`` range.

    Args:
        runs: a ledger's runs, newest first (a type without any is left out).
        per_type: how many of each type's latest runs count.
    """
    seconds: dict[str, list[float]] = {}
    for run in runs:
        if run.outcome not in _TIMED_OUTCOMES:
            continue
        taken = seconds.setdefault(run.sync_type, [])
        if len(taken) < per_type:
            taken.append((run.finished_at - run.started_at).total_seconds())
    medians = {t: round(statistics.median(s), 3) for t, s in seconds.items() if s}
    return {t: (m, m) for t, m in medians.items()}
