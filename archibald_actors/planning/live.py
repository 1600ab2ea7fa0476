"""Previews and suggestions for a running service: its live state copied into a sandbox.

``preview`` answers "what would the next hours look like under this retune?" without
applying anything: the service's table with the changes applied, its epoch, the slots it
served, its stored requests, recent runs and agents are copied into a ``Scenario`` (only
reads of the service's store and one status query), which a sandboxed service then runs
from the live clock's now. Durations are each type's median over its latest runs (the
demo's for a type that has none). A run in progress delays the sandbox's start by what it
probably has left: nothing else can start before it ends, and the slots that fall
meanwhile are fired together when it does, as the live service would queue them.

Call these on a worker thread: they block on the store and on the actors.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from archibald_actors.domain import iso
from archibald_actors.errors import ServiceUnavailableError
from archibald_actors.planning.report import simulation_json, suggestion_json
from archibald_actors.planning.sandbox import Scenario
from archibald_actors.planning.simulation import run
from archibald_actors.planning.suggest import suggest
from archibald_actors.planning.workload import HISTORY_RUNS, Workload, history_durations
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.service import SyncService

__all__ = ["TableChange", "changed_table", "live_scenario", "preview", "suggest_live"]


class TableChange(Protocol):
    """One retune, as POST /schedule takes it (None leaves a field as it is)."""

    @property
    def sync_type(self) -> str: ...
    @property
    def interval_minutes(self) -> float | None: ...
    @property
    def start_delay_minutes(self) -> float | None: ...
    @property
    def enabled(self) -> bool | None: ...


@dataclass(frozen=True)
class LiveRun:
    """A run in progress on the live service, and when it probably ends."""

    sync_type: str
    agent_id: str | None
    started_at: datetime
    expected_end: datetime

    def to_json(self) -> dict[str, Any]:
        """``{syncType, agentId, startedAt, expectedEndAt}``."""
        return {
            "syncType": self.sync_type,
            "agentId": self.agent_id,
            "startedAt": iso(self.started_at),
            "expectedEndAt": iso(self.expected_end),
        }


def changed_table(
    entries: Mapping[str, ScheduleEntry], changes: Sequence[TableChange]
) -> dict[str, ScheduleEntry]:
    """``entries`` with each change applied in turn, as the service's retune applies one.

    Raises:
        InvalidValueError: a value the entry refuses (names the field).
    """
    table = dict(entries)
    for change in changes:
        table[change.sync_type] = table[change.sync_type].retuned(
            interval_minutes=change.interval_minutes,
            start_delay_minutes=change.start_delay_minutes,
            enabled=change.enabled,
        )
    return table


def _running(
    status: Mapping[str, Any], workload: Workload, table: Mapping[str, ScheduleEntry], now: datetime
) -> list[LiveRun]:
    """The live runs in progress (``jobs`` where the service runs several, else ``running``)."""
    jobs = status.get("jobs")
    if not isinstance(jobs, list):
        jobs = [status["running"]] if status.get("running") else []
    found = []
    for job in jobs:
        sync_type = job["syncType"]
        started = datetime.fromisoformat(job["startedAt"])
        low, high = workload.range_of(sync_type)
        limit = table[sync_type].timeout_seconds if sync_type in table else high
        seconds = min((low + high) / 2, limit)
        # One that has run past its usual time may end any moment.
        expected = max(now, started + timedelta(seconds=seconds))
        found.append(LiveRun(sync_type, job.get("agentId"), started, expected))
    return found


def live_scenario(
    service: SyncService, changes: Sequence[TableChange], hours: float
) -> tuple[Scenario, list[LiveRun]]:
    """The service's state now, with ``changes`` applied, as a scenario of ``hours`` from now.

    Raises:
        ServiceStateError: the service is not running.
        ServiceUnavailableError: its store has not been read yet, or its actors do not answer.
        StoreError: its store failed.
        InvalidValueError: a change the entry refuses.
    """
    view = service.schedule_view()
    table = changed_table(view.entries, changes)
    if service.epoch is None:
        raise ServiceUnavailableError("the service has not read its store yet: no epoch to count slots from")
    clock = service.clock
    now = clock.wall()
    epoch = clock.wall(service.epoch)
    store = service.store
    stored = store.load()
    recent = sorted(
        (r for t in table for r in store.runs(t, HISTORY_RUNS)),
        key=lambda r: (r.finished_at, r.started_at),
        reverse=True,
    )
    workload = Workload(history_durations(recent), sessions=False)
    running = _running(service.status(), workload, table, now)
    busy = max((r.expected_end for r in running), default=now)
    scenario = Scenario(
        table,
        hours,
        workload,
        agents=tuple(store.agents()),
        max_concurrent=service.max_concurrent,
        breakers=service.breaker_policy,
        origin=now,
        epoch=epoch,
        served=dict(stored.served),
        requests=tuple(store.requests()),
        runs=tuple(recent),
        busy_seconds=(busy - now).total_seconds(),
    )
    return scenario, running


def preview(
    service: SyncService,
    changes: Sequence[TableChange],
    hours: float,
    cancel: threading.Event | None = None,
    budget_seconds: float | None = None,
) -> dict[str, Any]:
    """The next ``hours`` of ``service`` under ``changes``, simulated; applies nothing.

    Returns the simulation's JSON document plus ``running``: the live runs in progress.
    Past ``budget_seconds`` of real time the simulation ends where it got to
    (``complete`` false, ``until`` says where).
    """
    scenario, running = live_scenario(service, changes, hours)
    document = simulation_json(run(scenario, cancel, budget_seconds))
    return {**document, "running": [r.to_json() for r in running]}


def suggest_live(
    service: SyncService, hours: float, budget_seconds: float, cancel: threading.Event | None = None
) -> dict[str, Any]:
    """A stagger for ``service``'s table, with its recent durations and agents, from a fresh epoch."""
    scenario, _ = live_scenario(service, (), hours)
    fresh = Scenario(
        scenario.schedule,
        hours,
        scenario.workload,
        agents=scenario.agents,
        max_concurrent=scenario.max_concurrent,
        breakers=scenario.breakers,
        origin=scenario.origin,
    )
    return suggestion_json(suggest(fresh, budget_seconds=budget_seconds, cancel=cancel))
