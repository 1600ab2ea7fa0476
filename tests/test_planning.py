"""The planning sandbox: the real service on a ManualClock, started from a stored state."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from archibald_actors import DEFAULT_SCHEDULE, ScheduleEntry
from archibald_actors.agent import Agent
from archibald_actors.domain import RunRecord
from archibald_actors.handlers.demo_agents import agent_split
from archibald_actors.planning import Scenario, SimulationCancelledError, Workload, simulate
from archibald_actors.planning.runs import SimulatedRun, with_blockers
from archibald_actors.planning.sandbox import run_scenario
from archibald_actors.planning.simulation import run
from archibald_actors.planning.workload import history_durations
from archibald_actors.store.base import PendingRequest

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def actor_threads() -> list[str]:
    names = ("archibald-", "SupervisorActor-", "TimerActor-", "OrchestratorActor-")
    return [t.name for t in threading.enumerate() if t.name.startswith(names)]


def test_types_due_at_the_start_run_by_priority_every_time() -> None:
    table = {
        "low": ScheduleEntry("low", 30, 0, 1),
        "high": ScheduleEntry("high", 30, 0, 9),
        "mid": ScheduleEntry("mid", 30, 0, 5),
    }
    for seed in range(5):
        runs = simulate(0.5, schedule=table, seed=seed).runs
        assert [r.sync_type for r in runs[:3]] == ["high", "mid", "low"]
        assert runs[1].behind == ("high",) and set(runs[2].behind) == {"high", "mid"}
    assert not actor_threads()


def test_a_stored_state_is_where_the_sandbox_starts() -> None:
    # The epoch an hour and 3 minutes back: orders (every 10 min) served its slot of T+60,
    # prices (T+10, every 30) did not serve T+40: it fires at once, 23 minutes late.
    epoch = T0 - timedelta(minutes=63)
    table = {"orders": DEFAULT_SCHEDULE["orders"], "prices": DEFAULT_SCHEDULE["prices"]}
    manual = PendingRequest(1, "orders", "manual", T0 - timedelta(seconds=5))
    scenario = Scenario(
        table,
        1.0,
        Workload({"orders": (20, 20), "prices": (30, 30)}, sessions=False),
        origin=T0,
        epoch=epoch,
        served={"orders": 3600.0, "prices": 20 * 60.0},
        requests=(manual,),
    )
    sim = run(scenario)
    first, second = sim.runs[0], sim.runs[1]
    assert (first.sync_type, first.trigger, first.started) == ("orders", "manual", 0.0)
    assert (second.sync_type, second.slot, second.started) == ("prices", -23 * 60.0, 20.0)
    orders = [r for r in sim.runs if r.sync_type == "orders" and r.trigger == "auto"]
    assert [round(sim.minutes_after_epoch(r.slot or 0)) for r in orders][:2] == [70, 80]
    assert sim.epoch == epoch


def test_a_run_in_progress_delays_the_start() -> None:
    table = {"orders": DEFAULT_SCHEDULE["orders"]}
    busy = Scenario(table, 1.0, Workload({"orders": (10, 10)}, sessions=False), busy_seconds=150.0)
    runs = run(busy).runs
    # The slot of T+0 waited for the live run to end; the later ones did not.
    assert (runs[0].slot, runs[0].started) == (0.0, 150.0)
    assert all(r.waited == 0 for r in runs[1:])


def test_a_cancelled_simulation_stops_and_leaves_no_thread() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(SimulationCancelledError):
        simulate(24.0, cancel=cancel)
    assert not actor_threads()


def test_history_durations_are_medians_of_the_latest_timed_runs() -> None:
    def record(sync_type: str, seconds: float, outcome: str = "success", age: int = 0) -> RunRecord:
        start = T0 - timedelta(hours=age)
        end = start + timedelta(seconds=seconds)
        return RunRecord(sync_type, "auto", start, start, start, end, outcome)  # type: ignore[arg-type]

    runs = [
        record("orders", 40, age=1),
        record("orders", 10, "cancelled", age=2),
        record("orders", 60, age=3),
        record("orders", 50, "failed", age=4),
        record("orders", 500, age=5),  # older than the 3 latest timed runs
        record("prices", 80),
    ]
    assert history_durations(runs, per_type=3) == {"orders": (50, 50), "prices": (80, 80)}


def test_a_timeout_shorter_than_the_runs_is_the_services_own() -> None:
    table = {"orders": replace(DEFAULT_SCHEDULE["orders"], timeout_seconds=30.0)}
    sim = simulate(0.5, schedule=table, durations={"orders": (100, 100)})
    # Every run that ran was stopped after 30 s (where the service retries or opens a
    # breaker, those are its own rules too: a skipped run did not run).
    ran = [r for r in sim.runs if r.outcome not in ("skipped", "running")]
    assert len(ran) >= 3 and {r.outcome for r in ran} == {"timeout"}
    assert all(r.duration == pytest.approx(30.0) for r in ran)


def blockers_by_definition(runs: list[SimulatedRun]) -> list[tuple[str, ...]]:
    """For each run that waited for its slot, the types of the runs that started before it
    and were still running at its slot, in the order of each type's first such run."""
    found = []
    for waiting in runs:
        behind: list[str] = []
        if waiting.slot is not None and waiting.waited > 0:
            for other in runs:
                running_at_slot = other.finished is None or other.finished > waiting.slot
                if other.started < waiting.started and running_at_slot and other.sync_type not in behind:
                    behind.append(other.sync_type)
        found.append(tuple(behind))
    return found


def test_what_each_run_waited_behind_is_the_definitions_answer() -> None:
    draw = random.Random(11)
    runs = []
    for _ in range(400):  # overlapping runs of five types on a grid (ends meet slots), a few still going
        started = draw.randrange(200) * 100.0
        finished = None if draw.random() < 0.02 else started + draw.choice([100.0, 600.0, 900.0, 4000.0])
        slot = None if draw.random() < 0.2 else started - draw.choice([0.0, 100.0, 600.0, 5000.0])
        sync_type = draw.choice(["orders", "customers", "prices", "ddt", "products"])
        runs.append(SimulatedRun(sync_type, "auto", slot, started, finished, "success", agent_id=None))
    runs.sort(key=lambda r: (r.started, r.sync_type))
    expected = blockers_by_definition(runs)
    assert [r.behind for r in with_blockers(runs)] == expected
    assert sum(len(b) > 1 for b in expected) > 50  # the orders among several types were checked


def test_a_simulated_day_of_agents_names_what_each_run_waited_behind() -> None:
    table = agent_split(DEFAULT_SCHEDULE)
    agents = tuple(Agent(f"agent-{i:02d}") for i in range(12))
    runs = list(run_scenario(Scenario(table, 12.0, Workload(seed=1), agents=agents, max_concurrent=2)).runs)
    assert [r.behind for r in runs] == blockers_by_definition(runs)
    assert sum(1 for r in runs if r.behind) > 100
