"""``simulate``: a table run in the sandbox, and what its runs say: waits per type, collisions."""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from archibald_actors.agent import Agent
from archibald_actors.handlers.demo_agents import demo_agent_ids
from archibald_actors.planning.runs import SimulatedRun
from archibald_actors.planning.sandbox import Scenario, run_scenario
from archibald_actors.planning.workload import Workload
from archibald_actors.schedule import DEFAULT_SCHEDULE, ScheduleEntry

__all__ = ["Collision", "Simulation", "TypeWaits", "demo_agents", "simulate"]


@dataclass(frozen=True)
class TypeWaits:
    """Per-type totals: runs that served a slot, and the wait between slot and start (seconds).

    ``coalesced`` counts requests merged into one already waiting (a slot that fired while
    the type's previous slot still waited: its own wait is not in the others).
    """

    sync_type: str
    runs: int
    collided: int
    mean_wait: float
    max_wait: float
    p99_wait: float = 0.0
    coalesced: int = 0


@dataclass(frozen=True)
class Collision:
    """An instant where two or more types were due together, or a run waited behind another type.

    Attributes:
        at: the instant, in seconds after the simulation's start.
        types: the types with a run for a slot at that instant, in start order.
        waited: the runs of that instant that waited behind another type.
    """

    at: float
    types: tuple[str, ...]
    waited: tuple[SimulatedRun, ...]


@dataclass(frozen=True)
class Simulation:
    """What a simulation did: its scenario, and every run in start order."""

    scenario: Scenario
    runs: tuple[SimulatedRun, ...]
    epoch: datetime
    queued_at_end: int = 0
    coalesced: Mapping[str, int] = field(default_factory=dict)
    #: Seconds after the start the simulation reached (short of ``hours`` if its budget ran out).
    reached: float | None = None

    @property
    def complete(self) -> bool:
        """True if the simulation covered every hour asked for."""
        return self.reached is None or self.reached >= self.scenario.hours * 3600.0

    @property
    def hours(self) -> float:
        """Simulated hours."""
        return self.scenario.hours

    @property
    def seed(self) -> int:
        """Seed of the durations."""
        return self.scenario.workload.seed

    @property
    def schedule(self) -> Mapping[str, ScheduleEntry]:
        """The table simulated."""
        return self.scenario.schedule

    @property
    def origin(self) -> datetime:
        """Wall time of the start (run times count from it)."""
        return self.scenario.origin

    def wall(self, seconds: float) -> datetime:
        """Wall time of ``seconds`` after the start."""
        return self.origin + timedelta(seconds=seconds)

    def minutes_after_epoch(self, seconds: float) -> float:
        """``seconds`` after the start, as minutes after the epoch (the T+ of the slot grid)."""
        return (self.wall(seconds) - self.epoch).total_seconds() / 60.0

    def waits(self) -> list[TypeWaits]:
        """Per type (in schedule order): runs that served a slot, collided runs, mean/max/p99 wait."""
        result = []
        for sync_type in self.schedule:
            runs = [r for r in self.runs if r.sync_type == sync_type and _served_slot(r)]
            waits = sorted(r.waited for r in runs) or [0.0]
            p99 = waits[max(0, math.ceil(0.99 * len(waits)) - 1)]
            result.append(
                TypeWaits(
                    sync_type,
                    len(runs),
                    sum(1 for r in runs if r.waited > 0),
                    statistics.fmean(waits),
                    waits[-1],
                    p99,
                    self.coalesced.get(sync_type, 0),
                )
            )
        return result

    def collisions(self) -> list[SimulatedRun]:
        """Runs that started later than their slot because another sync was running."""
        return [r for r in self.runs if r.waited > 0]

    def collision_groups(self) -> list[Collision]:
        """The instants where types met: two or more due together, or one waiting behind another."""
        by_slot: dict[float, list[SimulatedRun]] = {}
        for run in self.runs:
            if run.slot is not None:
                by_slot.setdefault(round(run.slot, 3), []).append(run)
        groups = []
        for at in sorted(by_slot):
            runs = by_slot[at]
            types = tuple(dict.fromkeys(r.sync_type for r in runs))
            waited = tuple(r for r in runs if r.waited > 0 and any(b != r.sync_type for b in r.behind))
            if len(types) >= 2 or waited:
                groups.append(Collision(at, types, waited))
        return groups


def _served_slot(run: SimulatedRun) -> bool:
    """A run that served a slot and ran (a skip did not run; its wait says nothing)."""
    return run.slot is not None and run.outcome != "skipped"


def demo_agents(count: int) -> tuple[Agent, ...]:
    """``count`` enabled agents ``agent-001``, ``agent-002``, ... (the ids of ``serve --demo-agents``)."""
    return tuple(Agent(agent_id) for agent_id in demo_agent_ids(count))


def simulate(
    hours: float,
    *,
    seed: int = 0,
    schedule: Mapping[str, ScheduleEntry] | None = None,
    durations: Mapping[str, tuple[float, float]] | None = None,
    agents: int | Sequence[Agent] = 0,
    max_concurrent: int = 1,
    cancel: threading.Event | None = None,
) -> Simulation:
    """Run the real service on a ``ManualClock`` for ``hours`` simulated hours from a first start.

    Args:
        hours: simulated time, more than 0 and at most ``MAX_HOURS``.
        seed: seed of the durations.
        schedule: the table to simulate, any types; ``DEFAULT_SCHEDULE`` by default.
        durations: per type ``(shortest, longest)`` seconds; the demo's for a type not given.
        agents: how many demo agents (or which agents) the store holds.
        max_concurrent: jobs that may run at once, never two on one lane.
        cancel: set it to stop the simulation early.

    Raises:
        ValueError: ``hours`` out of range.
        SimulationCancelledError: ``cancel`` was set.
    """
    members = demo_agents(agents) if isinstance(agents, int) else tuple(agents)
    scenario = Scenario(
        dict(schedule or DEFAULT_SCHEDULE),
        hours,
        Workload(dict(durations or {}), seed),
        agents=members,
        max_concurrent=max_concurrent,
    )
    return run(scenario, cancel)


def run(
    scenario: Scenario, cancel: threading.Event | None = None, budget_seconds: float | None = None
) -> Simulation:
    """Run ``scenario`` in the sandbox and wrap what it did as a ``Simulation``."""
    result = run_scenario(scenario, cancel, budget_seconds)
    return Simulation(
        scenario, result.runs, result.epoch, result.queued_at_end, result.coalesced, result.reached
    )
