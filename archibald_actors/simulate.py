"""``archibald-sync simulate``: the real actors on a ``ManualClock``, with realistic sync durations.

The work lives in :mod:`archibald_actors.planning`; this module keeps the names the
command line and earlier callers import.
"""

from __future__ import annotations

from archibald_actors.planning import (
    MAX_HOURS,
    SimulatedRun,
    Simulation,
    TypeWaits,
    format_report,
    simulate,
    simulation_json,
)

__all__ = [
    "MAX_HOURS",
    "SimulatedRun",
    "Simulation",
    "TypeWaits",
    "format_report",
    "simulate",
    "simulation_json",
]
