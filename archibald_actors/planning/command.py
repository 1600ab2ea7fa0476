"""``archibald-sync simulate``: run a table (the default one, or a ``--config`` file's) and print it.

Text by default; ``--json`` prints one JSON document (see docs/cli.md). ``--suggest``
searches start delays instead and prints them with the waits before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator

from archibald_actors.breaker import DEFAULT_BREAKERS
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
    schedule, durations, max_concurrent, breakers = dict(DEFAULT_SCHEDULE), {}, 1, DEFAULT_BREAKERS
    if args.config:
        try:
            config = load_config(args.config, clock=ManualClock())
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        schedule, durations, breakers = dict(config.schedule), dict(config.durations), config.breakers
        max_concurrent = config.max_concurrent or max_concurrent
    if args.max_concurrent is not None:  # the command line wins over the file, as for serve
        max_concurrent = int(args.max_concurrent)
    return Scenario(
        schedule,
        args.hours,
        Workload(durations, args.seed),
        agents=demo_agents(args.agents),
        max_concurrent=max_concurrent,
        breakers=breakers,
    )


@contextlib.contextmanager
def _quiet_actors() -> Iterator[None]:
    """The simulated service's warnings (a simulated run timed out) are in the report, not on stderr."""
    logger = logging.getLogger("archibald_actors")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def simulate_command(args: argparse.Namespace) -> int:
    """Run ``simulate`` with parsed ``args``; print the report, the JSON or the suggestion."""
    scenario = scenario_from_args(args)
    with _quiet_actors():
        return _simulate(args, scenario)


def _simulate(args: argparse.Namespace, scenario: Scenario) -> int:
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
