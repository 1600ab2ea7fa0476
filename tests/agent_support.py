"""Helpers of the agent tests: per-agent schedules, announcing agents, handlers that record lanes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, ScheduleEntry, SyncService

MIN = 60.0


def per_agent_schedule(
    *per_agent: str, enabled: tuple[str, ...] | None = None, retries: int = 2, **changes: Any
) -> dict[str, ScheduleEntry]:
    """The default table with ``per_agent`` types per agent; only ``enabled`` types (default:
    the per-agent ones) keep their timers; every type has ``retries``."""
    on = set(per_agent if enabled is None else enabled)
    table = {}
    for sync_type, entry in DEFAULT_SCHEDULE.items():
        scope = "per_agent" if sync_type in per_agent else "shared"
        table[sync_type] = replace(
            entry, scope=scope, enabled=sync_type in on, retries=retries, **changes.get(sync_type, {})
        )
    return table


def set_agents(service: SyncService, clock: ManualClock, *ids: str, disabled: tuple[str, ...] = ()) -> None:
    """Make ``ids`` the service's agents (``disabled`` among them off), through its agent calls."""
    for agent in service.agents():
        if agent["agentId"] not in ids:
            service.remove_agent(agent["agentId"])
    for agent_id in ids:
        service.put_agent(agent_id, enabled=agent_id not in disabled)
    clock.run_due()


@dataclass
class Job:
    """One handler execution as the handler saw it."""

    sync_type: str
    agent_id: str | None
    trigger: str
    scheduled_at: float | None
    attempt: int
    started: float
    finished: float | None = None


@dataclass
class LaneRecorder:
    """Handlers that record every job and the most jobs ever running at once, overall and per lane."""

    clock: ManualClock
    duration: Callable[[str, str | None], float] = lambda sync_type, agent: 0.0
    fail: Callable[[Any], None] = lambda ctx: None
    jobs: list[Job] = field(default_factory=list)
    most_at_once: int = 0
    most_per_lane: int = 0
    _active: dict[str | None, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, sync_type: str) -> Callable[[Any], Any]:
        def handle(ctx: Any) -> Any:
            job = self._enter(ctx)
            try:
                self.fail(ctx)
                seconds = self.duration(sync_type, ctx.agent_id)
                if seconds:
                    ctx.sleep(seconds)
                return {"rows": 1}
            finally:
                self._leave(job)

        return handle

    def handlers(self) -> dict[str, Callable[[Any], Any]]:
        return {t: self.handler(t) for t in DEFAULT_SCHEDULE}

    def _enter(self, ctx: Any) -> Job:
        with self._lock:
            lane = ctx.agent_id
            self._active[lane] = self._active.get(lane, 0) + 1
            self.most_per_lane = max(self.most_per_lane, self._active[lane])
            self.most_at_once = max(self.most_at_once, sum(self._active.values()))
            now = self.clock.now()
            job = Job(ctx.sync_type, ctx.agent_id, ctx.trigger, ctx.scheduled_at, ctx.attempt, now)
            self.jobs.append(job)
            return job

    def _leave(self, job: Job) -> None:
        with self._lock:
            self._active[job.agent_id] -= 1
            job.finished = self.clock.now()

    def of(self, sync_type: str, agent_id: str | None = None) -> list[Job]:
        jobs = [j for j in self.jobs if j.sync_type == sync_type]
        return [j for j in jobs if agent_id is None or j.agent_id == agent_id]
