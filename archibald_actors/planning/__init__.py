"""Planning: simulate any table on the real actors, preview a retune, suggest a stagger.

Every simulation runs a real ``SyncService`` on a ``ManualClock`` (see :mod:`.sandbox`):
the timers, the orchestrator's queue and its rules are the service's own, never a second
model of them.
"""

from archibald_actors.planning.report import format_report, simulation_json
from archibald_actors.planning.runs import SimulatedRun
from archibald_actors.planning.sandbox import MAX_HOURS, Scenario, SimulationCancelledError
from archibald_actors.planning.simulation import Collision, Simulation, TypeWaits, simulate
from archibald_actors.planning.workload import Workload

__all__ = [
    "MAX_HOURS",
    "Collision",
    "Scenario",
    "SimulatedRun",
    "Simulation",
    "SimulationCancelledError",
    "TypeWaits",
    "Workload",
    "format_report",
    "simulate",
    "simulation_json",
]
