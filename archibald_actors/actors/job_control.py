"""``JobControl``: how the orchestrator stops, holds and drains the jobs running on its lanes.

A hold of every lane (``exclusive()``) stops every running job and keeps new ones from
starting; a hold of one agent's lane does that to that lane only, and the other lanes go
on. A job stopped for a hold is queued again for its own slot. A drain (at shutdown)
starts nothing new and waits for every job to end; a timeout stops one job and gives it a
grace period before it is written off. What a running job says of its progress is kept
for the status and published. Mixed into ``OrchestratorActor``; runs on its thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from archibald_actors.actors.base import Address
from archibald_actors.actors.orchestrator_state import OrchestratorState, Running
from archibald_actors.clock import Clock
from archibald_actors.events import EventBus
from archibald_actors.messages import GraceExpired, Reply, answer
from archibald_actors.status import iso_at

__all__ = ["STOP_GRACE_SECONDS", "JobControl"]

log = logging.getLogger("archibald_actors.orchestrator")

#: Clock seconds a stopped run gets to end before it is abandoned.
STOP_GRACE_SECONDS = 30.0


class JobControl:
    """Holds, drains, timeouts, stepping down and progress, over the set of running jobs."""

    _state: OrchestratorState
    _clock: Clock
    _events: EventBus
    _sv_address: Address

    def _schedule_pick(self) -> None:
        raise NotImplementedError  # the actor's

    def _progress_of(self, running: Running) -> Callable[[dict[str, Any], bool], None]:
        """What a job's ``ctx.progress`` calls (on the handler's thread): keep it, maybe publish it."""
        events, clock = self._events, self._clock

        def progress(report: dict[str, Any], publish: bool) -> None:
            done, total = report["done"], report["total"]
            percentage = None if not total else round(100.0 * done / total, 1)
            running.progress = {**report, "percentage": percentage}  # one swap: the status reads it
            if publish:
                events.publish(
                    "sync.progress",
                    syncType=running.sync_type,
                    agentId=running.agent_id,
                    startedAt=iso_at(clock, running.started_at),
                    **running.progress,
                )

        return progress

    def _held_jobs(self, agent_id: str | None) -> list[Running]:
        jobs = self._state.jobs.values()
        return list(jobs) if agent_id is None else [j for j in jobs if j.lane == agent_id]

    def _hold(self, reply: Reply, agent_id: str | None) -> None:
        """Take a hold of every lane (``agent_id`` None) or of one agent's; stop what runs there."""
        state = self._state
        if agent_id is None:
            state.holds += 1
            first = state.holds == 1
        else:
            state.lane_holds[agent_id] = state.lane_holds.get(agent_id, 0) + 1
            first = state.lane_holds[agent_id] == 1
        if first:
            self._events.publish("hold.taken", agentId=agent_id)
        jobs = self._held_jobs(agent_id)
        if not jobs:
            answer(reply, True)
            return
        for job in jobs:
            job.stopped_for_hold = True
            job.stop()
        state.hold_waiters.append((reply, agent_id))

    def _release(self, agent_id: str | None) -> None:
        """Give back one hold; the last one of its lane(s) lets the jobs waiting there start."""
        state = self._state
        if agent_id is None:
            state.holds = max(0, state.holds - 1)
            released = state.holds == 0
        else:
            left = state.lane_holds.get(agent_id, 0) - 1
            released = left <= 0
            if released:
                state.lane_holds.pop(agent_id, None)
            else:
                state.lane_holds[agent_id] = left
        if released:
            self._events.publish("hold.released", agentId=agent_id)
            self._schedule_pick()

    def _answer_waiters(self) -> None:
        """Answer the holds whose lanes are quiet now, and the drains once nothing runs."""
        state = self._state
        if state.hold_waiters:
            lanes = {job.lane for job in state.jobs.values()}
            waiting = []
            for reply, agent_id in state.hold_waiters:
                quiet = not lanes if agent_id is None else agent_id not in lanes
                if quiet:
                    answer(reply, True)
                else:
                    waiting.append((reply, agent_id))
            state.hold_waiters = waiting
        if state.drain_waiters and not state.jobs and not state.claiming:
            for reply in state.drain_waiters:
                answer(reply, True)
            state.drain_waiters.clear()

    def _drain(self, reply: Reply, stop_running: bool) -> None:
        state = self._state
        state.draining = True
        state.drain_stops = state.drain_stops or stop_running
        if not state.jobs and not state.claiming:
            answer(reply, True)
            return
        if stop_running:
            self._stop_all()
        state.drain_waiters.append(reply)

    def _timed_out(self, run_id: int) -> None:
        running = self._state.jobs.get(run_id)
        if running is None or running.timed_out:
            return
        running.timed_out = True
        log.warning("%s sync%s timed out; stopping it", running.sync_type, _of(running))
        running.stop()
        address = self._sv_address
        running.deadline = self._clock.call_at(
            self._clock.now() + STOP_GRACE_SECONDS, lambda: address.tell(GraceExpired(run_id))
        )

    def _stop_all(self) -> None:
        """Ask every running job to stop (stepping down, shutting down)."""
        for job in self._state.jobs.values():
            job.stop()


def _of(job: Running) -> str:
    return "" if job.agent_id is None else f" of agent {job.agent_id}"
