"""A simulation runs on one CPU, as batch work: its threads hand off to each other, never across CPUs.

Linux (where the service is deployed and CI runs) confines threads; elsewhere ``on_one_cpu``
runs the work unconfined, which these tests do not cover.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from archibald_actors import DEFAULT_SCHEDULE
from archibald_actors.actors.runner import SyncHandler
from archibald_actors.clock import Clock
from archibald_actors.planning import Scenario, Workload
from archibald_actors.planning.cpu import on_one_cpu
from archibald_actors.planning.sandbox import run_scenario


def test_work_runs_confined_to_one_cpu_as_batch_work_and_so_do_the_threads_it_starts() -> None:
    caller = (os.sched_getaffinity(0), os.sched_getscheduler(0))

    def where() -> tuple[set[int], int]:
        return os.sched_getaffinity(0), os.sched_getscheduler(0)

    def work() -> tuple[tuple[set[int], int], tuple[set[int], int]]:
        seen: list[tuple[set[int], int]] = []
        child = threading.Thread(target=lambda: seen.append(where()))
        child.start()
        child.join(5)
        return where(), seen[0]

    own, child = on_one_cpu(work)
    assert len(own[0]) == 1 and own[0] <= caller[0]
    assert own[1] == os.SCHED_BATCH
    assert child == own
    assert where() == caller  # the caller's thread is left as it was


def test_calls_take_turns_over_the_allowed_cpus() -> None:
    cpus = {next(iter(on_one_cpu(lambda: os.sched_getaffinity(0)))) for _ in range(8)}
    assert cpus == os.sched_getaffinity(0)


def test_an_exception_in_the_work_is_raised_to_the_caller() -> None:
    class BoomError(Exception):
        pass

    def work() -> None:
        raise BoomError("from the confined thread")

    with pytest.raises(BoomError, match="from the confined thread"):
        on_one_cpu(work)


@dataclass(frozen=True)
class RecordingWorkload(Workload):
    """The usual handlers, each first noting the CPUs its thread may run on."""

    seen: list[set[int]] | None = None

    def handlers(self, sync_types: Iterable[str], clock: Clock) -> dict[str, SyncHandler]:
        inner = super().handlers(sync_types, clock)
        seen = self.seen
        assert seen is not None

        def wrap(handler: SyncHandler) -> SyncHandler:
            async def noting(ctx: Any) -> None:
                seen.append(os.sched_getaffinity(0))
                await handler(ctx)

            return noting

        return {t: wrap(h) for t, h in inner.items()}


def test_a_sandboxs_handlers_run_on_one_cpu_while_the_caller_keeps_its_own() -> None:
    caller = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    scenario = Scenario(DEFAULT_SCHEDULE, 2.0, RecordingWorkload(seen=seen))
    result = run_scenario(scenario)
    assert len(result.runs) == len(seen) > 10
    assert len({frozenset(s) for s in seen}) == 1 and len(seen[0]) == 1
    assert os.sched_getaffinity(0) == caller


def test_work_still_runs_when_neither_cpu_nor_policy_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, cpus: Iterable[int]) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    monkeypatch.setattr(os, "sched_setscheduler", lambda *args: refuse(0, ()))
    assert on_one_cpu(lambda: "ran") == "ran"
