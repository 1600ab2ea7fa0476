"""``archibald-sync simulate``: run a table (the default one, or a ``--config`` file's) and print it.

Text by default; ``--json`` prints one JSON document (see docs/cli.md). ``--suggest``
searches start delays instead and prints them with the waits before and after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from archibald_actors.cli import EXIT_OK, CliError
from archibald_actors.clock import ManualClock
from archibald_actors.config import ConfigError, load_config
from archibald_actors.planning.report import (
    format_report,
    format_suggestion,
    simulation_json,
    suggestion_json,
)
from archibald_actors.planning.sandbox import Scenario
from archibald_actors.planning.simulation import demo_agents, run
from archibald_actors.planning.suggest import suggest
from archibald_actors.planning.workload import Workload
from archibald_actors.schedule import DEFAULT_SCHEDULE

__all__ = ["SUGGEST_BUDGET", "simulate_command"]

#: Real seconds ``--suggest`` searches for at most.
SUGGEST_BUDGET = 30.0


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario the command line describes: table, durations and concurrency of ``--config``."""
    schedule, durations, max_concurrent = dict(DEFAULT_SCHEDULE), {}, None
    if args.config:
        try:
            config = load_config(args.config, clock=ManualClock())
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        schedule, durations = dict(config.schedule), dict(config.durations)
        # Set by configs that run several jobs at once (the agents' lanes), None otherwise.
        max_concurrent = getattr(config, "max_concurrent", None)
    return Scenario(
        schedule,
        args.hours,
        Workload(durations, args.seed),
        agents=demo_agents(args.agents),
        max_concurrent=max_concurrent,
    )


def simulate_command(args: argparse.Namespace) -> int:
    """Run ``simulate`` with parsed ``args``; print the report, the JSON or the suggestion."""
    scenario = scenario_from_args(args)
    if args.suggest:
        began = time.monotonic()
        suggestion = suggest(scenario, budget_seconds=SUGGEST_BUDGET)
        if args.json:
            json.dump(suggestion_json(suggestion), sys.stdout)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(format_suggestion(suggestion, time.monotonic() - began))
        return EXIT_OK
    simulation = run(scenario)
    if args.json:
        json.dump(simulation_json(simulation), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_report(simulation))
    return EXIT_OK
