"""``suggest``: start delays that keep every interval and cut the waits, highest priority first.

The search is a coordinate descent over whole-minute start delays: one type at a time,
highest priority first, it tries delays for that type with the others fixed, and keeps a
table if a real simulation of it (the sandbox, same workload and seed) scores better.
Scores compare the mean waits priority level by priority level (a lower level only
breaks ties of the levels above), then the number of collisions, then how far the delays
moved from the current ones. Sweeps repeat until one changes nothing, within a time budget.

Trying every delay of every type costs a simulation each (235 for the default table), so
each type's candidates are first ranked by slot-grid arithmetic: how much room a delay
leaves between its slots and the others' (each slot needing the type's longest run
before the next). That ranking only chooses what to simulate; the simulation decides.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import combinations

from archibald_actors.planning.sandbox import Scenario
from archibald_actors.planning.simulation import Simulation, run
from archibald_actors.schedule import ScheduleEntry

__all__ = ["SUGGEST_HOURS", "Suggestion", "suggest"]

#: Simulated hours a candidate is scored over by default (the default table repeats every 90 minutes).
SUGGEST_HOURS = 3.0
#: Largest start delay a suggestion may set, in minutes (the rule of ``startDelayMinutes``).
MAX_DELAY_MINUTES = 180
#: Candidate delays simulated per type and sweep, besides the one in place.
CANDIDATES_PER_TYPE = 8
#: Sweeps over every type at most.
MAX_SWEEPS = 3


@dataclass(frozen=True)
class Suggestion:
    """A suggested stagger and what it changes.

    Attributes:
        before: the simulation of the current table.
        after: the simulation of the suggested one (the same as ``before`` if nothing is better).
        searched: how many tables were simulated.
        complete: the search ended by itself (False: the time budget cut it short).
        unavoidable: pairs of types whose slots meet whatever their whole-minute delays
            (their intervals share no divisor above one minute).
    """

    before: Simulation
    after: Simulation
    searched: int
    complete: bool
    unavoidable: tuple[tuple[str, str], ...] = ()

    @property
    def delays(self) -> dict[str, tuple[float, float]]:
        """Per type, ``(current, suggested)`` start delay in minutes."""
        old, new = self.before.schedule, self.after.schedule
        return {t: (old[t].start_delay_minutes, new[t].start_delay_minutes) for t in old}

    @property
    def collision_free(self) -> bool:
        """True if the suggested table's simulation has no collision left."""
        return not self.after.collision_groups()

    def message(self) -> str:
        """One honest sentence on the outcome."""
        changed = [t for t, (a, b) in self.delays.items() if a != b]
        left = self.after.collision_groups()
        budget = "" if self.complete else " (the search ran out of time: a better one may exist)"
        if not changed:
            found = "No stagger found is better than the current one"
        else:
            found = f"Moving {', '.join(changed)} lowers the waits"
        if not left:
            return f"{found}; no two types meet any more in {self.after.hours:g} h{budget}."
        first = left[0]
        meets = " and ".join(first.types) if len(first.types) > 1 else first.types[0]
        why = ""
        if self.unavoidable:
            a, b = self.unavoidable[0]
            why = f"; {a} and {b} meet whatever their delays (their intervals share no divisor above 1 min)"
        return (
            f"{found}, but no stagger found avoids every collision: the best one still has "
            f"{len(left)} in {self.after.hours:g} h (first: {meets} at "
            f"T+{self.after.minutes_after_epoch(first.at):g}){why}{budget}."
        )


def _score(sim: Simulation, origin: Mapping[str, ScheduleEntry]) -> tuple[float, ...]:
    """Mean wait per priority level (highest first), then collisions, then minutes moved."""
    waits = {w.sync_type: w.mean_wait for w in sim.waits()}
    levels = sorted({e.priority for e in sim.schedule.values()}, reverse=True)
    by_level = [
        round(sum(waits[t] for t, e in sim.schedule.items() if e.priority == level), 1) for level in levels
    ]
    moved = sum(abs(e.start_delay_minutes - origin[t].start_delay_minutes) for t, e in sim.schedule.items())
    return (*by_level, len(sim.collision_groups()), moved)


def _allowed(entry: ScheduleEntry) -> list[int]:
    """Whole-minute delays below the interval (a later one repeats an earlier grid), at most 180."""
    return [d for d in range(0, MAX_DELAY_MINUTES + 1) if d < entry.interval_minutes]


def _room(delay: float, sync_type: str, table: Mapping[str, ScheduleEntry], scenario: Scenario) -> float:
    """Least slack, in minutes, between the type's slots at ``delay`` and the others' slots.

    A slot of A at ``a`` and one of B at ``b >= a`` have ``b - a - longest(A)`` of slack.
    """
    horizon = scenario.hours * 60.0
    entry = table[sync_type]
    longest = {t: scenario.workload.range_of(t)[1] / 60.0 for t in table}

    def slots(start: float, interval: float) -> list[float]:
        return [start + k * interval for k in range(int(horizon // interval) + 2)]

    mine = slots(delay, entry.interval_minutes)
    least = math.inf
    for other, e in table.items():
        if other == sync_type or not e.enabled:
            continue
        for b in slots(e.start_delay_minutes, e.interval_minutes):
            for a in mine:
                slack = b - a - longest[sync_type] if b >= a else a - b - longest[other]
                least = min(least, slack)
    return least


def _candidates(sync_type: str, table: Mapping[str, ScheduleEntry], scenario: Scenario) -> list[int]:
    entry = table[sync_type]
    current = entry.start_delay_minutes
    options = [d for d in _allowed(entry) if d != current]
    options.sort(key=lambda d: (-_room(d, sync_type, table, scenario), abs(d - current), d))
    return options[:CANDIDATES_PER_TYPE]


def unavoidable_pairs(table: Mapping[str, ScheduleEntry]) -> tuple[tuple[str, str], ...]:
    """Pairs of enabled types that meet at some instant whatever their whole-minute delays."""
    pairs = []
    for (a, x), (b, y) in combinations(table.items(), 2):
        whole = x.interval_minutes.is_integer() and y.interval_minutes.is_integer()
        if not (x.enabled and y.enabled and whole):
            continue
        if math.gcd(int(x.interval_minutes), int(y.interval_minutes)) == 1:
            pairs.append((a, b))
    return tuple(pairs)


def suggest(
    scenario: Scenario, *, budget_seconds: float = 20.0, cancel: threading.Event | None = None
) -> Suggestion:
    """Search start delays for ``scenario``'s table (same intervals) that lower the waits.

    Args:
        scenario: the table, workload, agents and span each candidate is simulated with.
        budget_seconds: real seconds the search may take (one more simulation may overrun it).
        cancel: set it to stop the search (raises ``SimulationCancelledError``).
    """
    deadline = time.monotonic() + budget_seconds
    origin = dict(scenario.schedule)
    before = run(scenario, cancel)
    best, best_score, searched = before, _score(before, origin), 1
    order = sorted((t for t, e in origin.items() if e.enabled), key=lambda t: -origin[t].priority)
    complete = False
    for _ in range(MAX_SWEEPS):
        improved = False
        for sync_type in order:
            table = dict(best.schedule)
            for delay in _candidates(sync_type, table, scenario):
                if time.monotonic() > deadline:
                    return Suggestion(before, best, searched, False, unavoidable_pairs(origin))
                trial = {**table, sync_type: replace(table[sync_type], start_delay_minutes=float(delay))}
                sim = run(replace(scenario, schedule=trial), cancel)
                searched += 1
                score = _score(sim, origin)
                if score < best_score:
                    best, best_score, improved = sim, score, True
        if not improved:
            complete = True
            break
    return Suggestion(before, best, searched, complete, unavoidable_pairs(origin))
