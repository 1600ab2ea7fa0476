"""The store worker: calls in order off the caller's thread, refusals once the store is stuck, chains."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from archibald_actors.actors.store_worker import Chain, StoreWorker
from archibald_actors.clock import Activity
from archibald_actors.errors import StoreError
from archibald_actors.store import MemoryStore
from archibald_actors.store_messages import (
    StoreResult,
)


@pytest.fixture
def activity() -> Activity:
    return Activity()


#: A short patience keeps these tests quick; the service's is ``STUCK_AFTER``.
PATIENCE = 0.2


class SlowStore(MemoryStore):
    """A store whose calls may block (these tests' calls do): they go to the worker's thread."""

    answers_at_once = False


@pytest.fixture
def worker(activity: Activity) -> Iterator[StoreWorker]:
    worker = StoreWorker(SlowStore(), activity, patience=PATIENCE)
    yield worker
    worker.close(5.0)


def collect() -> tuple[queue.SimpleQueue[tuple[str, StoreResult[Any]]], Callable[[str], Any]]:
    results: queue.SimpleQueue[tuple[str, StoreResult[Any]]] = queue.SimpleQueue()

    def to(name: str) -> Callable[[StoreResult[Any]], None]:
        return lambda result: results.put((name, result))

    return results, to


def hang(entered: threading.Event, release: threading.Event) -> Callable[[Any], str]:
    def call(store: Any) -> str:
        entered.set()
        assert release.wait(10)
        return "late"

    return call


def test_calls_run_in_order_and_count_as_activity_until_answered(
    worker: StoreWorker, activity: Activity
) -> None:
    results, to = collect()
    release = threading.Event()
    worker.submit(lambda store: release.wait(10), to("first"))
    for n in range(5):
        worker.submit(lambda store, n=n: n, to(f"call{n}"))
    assert activity.count == 6
    release.set()
    assert [results.get(timeout=5)[0] for _ in range(6)] == ["first", *(f"call{n}" for n in range(5))]
    assert activity.wait_quiet(5)


def test_a_callers_call_behind_a_hung_one_is_refused_in_time_and_never_runs(worker: StoreWorker) -> None:
    results, to = collect()
    entered, release, ran = threading.Event(), threading.Event(), threading.Event()
    worker.submit(hang(entered, release), to("hung"))
    assert entered.wait(5)
    worker.submit(lambda store: ran.set(), to("caller"), for_caller=True)
    name, result = results.get(timeout=5)  # answered while the first call still hangs
    assert name == "caller" and isinstance(result.error, StoreError)
    assert "not answering" in str(result.error)
    assert not worker.available
    release.set()
    assert results.get(timeout=5)[0] == "hung"
    worker.close(5.0)
    assert not ran.is_set()  # withdrawn: it changed nothing


def test_once_the_store_is_stuck_a_caller_is_refused_at_submit(worker: StoreWorker) -> None:
    results, to = collect()
    entered, release = threading.Event(), threading.Event()
    worker.submit(hang(entered, release), to("hung"))
    assert entered.wait(5)
    worker.submit(lambda store: None, to("first"), for_caller=True)
    assert results.get(timeout=5)[0] == "first"  # refused once the patience ran out
    assert not worker.available
    worker.submit(lambda store: None, to("second"), for_caller=True)
    # Refused on the submitting thread itself: nothing to wait for.
    assert results.get_nowait()[0] == "second"
    release.set()
    assert results.get(timeout=5)[0] == "hung"


def test_a_bounded_read_is_answered_while_it_runs_and_its_late_result_dropped(worker: StoreWorker) -> None:
    results, to = collect()
    entered, release = threading.Event(), threading.Event()
    worker.submit(hang(entered, release), to("read"), for_caller=True, bounded=True)
    name, result = results.get(timeout=5)
    assert entered.is_set() and name == "read" and isinstance(result.error, StoreError)
    release.set()
    worker.close(5.0)
    assert results.empty()


def test_a_chain_stops_at_its_first_failure(worker: StoreWorker) -> None:
    results, to = collect()
    chain, written = Chain(), []

    def fail(store: Any) -> None:
        raise StoreError("disk full")

    worker.submit(lambda store: written.append(1), to("one"), chain=chain)
    worker.submit(fail, to("two"), chain=chain)
    worker.submit(lambda store: written.append(3), to("three"), chain=chain)
    worker.submit(lambda store: written.append(4), to("other"))
    outcomes = {name: result for name, result in (results.get(timeout=5) for _ in range(4))}
    assert outcomes["one"].error is None and outcomes["other"].error is None
    assert str(outcomes["two"].error) == "disk full"
    assert "was not stored" in str(outcomes["three"].error)
    assert written == [1, 4]


def test_close_runs_what_was_submitted_then_refuses(worker: StoreWorker) -> None:
    results, to = collect()
    worker.submit(lambda store: "last run", to("record"))
    worker.close(5.0)
    assert results.get(timeout=5)[1].value == "last run"
    worker.submit(lambda store: "too late", to("after"))
    assert isinstance(results.get(timeout=5)[1].error, StoreError)


def test_a_busy_worker_refuses_nobody_only_a_stuck_call_does(activity: Activity) -> None:
    worker = StoreWorker(MemoryStore(), activity, patience=0.2)
    results, to = collect()
    pause = threading.Event()  # never set: each call takes 5 ms, far below the patience
    try:
        for n in range(120):  # 600 ms of quick calls, three times the caller's patience
            worker.submit(lambda store: pause.wait(0.005), to(f"call{n}"))
        worker.submit(lambda store: "answered", to("caller"), for_caller=True)
        outcomes = dict(results.get(timeout=5) for _ in range(121))
    finally:
        worker.close(5.0)
    assert outcomes["caller"].value == "answered"
    assert worker.available


def test_a_store_that_answers_at_once_is_called_in_place_in_order(activity: Activity) -> None:
    worker = StoreWorker(MemoryStore(), activity, patience=PATIENCE)
    try:
        assert not [t for t in threading.enumerate() if t.name.startswith("archibald-store")]
        seen: list[tuple[str, Any, str]] = []

        def to(name: str) -> Callable[[StoreResult[Any]], None]:
            return lambda result: seen.append((name, result.value, threading.current_thread().name))

        worker.submit(lambda store: store.claim_slot("orders", 0.0), to("first"))
        worker.submit(lambda store: store.claim_slot("orders", 0.0), to("again"))
        here = threading.current_thread().name
        # Answered before submit returned, on this thread, in order: the second claim lost.
        assert seen == [("first", True, here), ("again", False, here)]
        assert activity.count == 0 and worker.available

        def fail(store: Any) -> None:
            raise StoreError("disk full")

        errors: list[StoreResult[None]] = []
        worker.submit(fail, errors.append)
        assert isinstance(errors[0].error, StoreError) and not worker.available
        worker.submit(lambda store: None, errors.append)
        assert errors[1].error is None and worker.available  # it answers again
    finally:
        worker.close(1.0)
    closed: list[StoreResult[None]] = []
    worker.submit(lambda store: None, closed.append)
    assert isinstance(closed[0].error, StoreError) and "closed" in str(closed[0].error)
