"""The agents part of the ``Store`` contract, over every backend (memory, SQLite, PostgreSQL).

Agents as durable data, runs recorded per agent (with try, result and skip reason), slot
claims per (type, agent, slot), history filtered by agent and paged by start time, and
manual requests for one agent, cancelled when the agent is removed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from archibald_actors.agent import Agent, check_agent_id
from archibald_actors.domain import RunRecord
from archibald_actors.errors import InvalidValueError
from archibald_actors.store import Store
from archibald_actors.store.base import PendingRequest

from .support import T0, Backend

MakeRun = Callable[..., RunRecord]

VALID_IDS = ["a", "x" * 64, "mario.rossi@example.com", "A-1_b", "007", "..."]
INVALID_IDS: list[Any] = ["", "x" * 65, "mario rossi", "a/b", "ä", "a\n", "a;drop", None, 7]


@pytest.mark.parametrize("agent_id", VALID_IDS)
def test_valid_agent_ids(agent_id: str) -> None:
    assert check_agent_id(agent_id) == agent_id
    assert Agent(agent_id).to_json() == {"agentId": agent_id, "name": None, "enabled": True}


@pytest.mark.parametrize("agent_id", INVALID_IDS)
def test_invalid_agent_ids_name_the_field(agent_id: Any) -> None:
    with pytest.raises(InvalidValueError, match="agentId") as caught:
        check_agent_id(agent_id)
    assert isinstance(caught.value, ValueError) and caught.value.field == "agentId"


def test_agents_round_trip_in_id_order(backend: Backend) -> None:
    store = backend.open()
    store.load()
    assert store.agents() == []
    assert store.put_agent("b") == Agent("b", None, True)
    store.put_agent("a.z", name="Anna Zeta", enabled=False)
    store.put_agent("Z", name="Zorro")
    store.put_agent("a-z")
    store.put_agent("A")
    reopened = backend.open()
    assert [a.agent_id for a in reopened.agents()] == ["A", "Z", "a-z", "a.z", "b"]  # code point order
    assert reopened.agents()[3] == Agent("a.z", "Anna Zeta", False)
    assert [a.to_json() for a in reopened.agents()][1] == {"agentId": "Z", "name": "Zorro", "enabled": True}


def test_put_agent_replaces_name_and_flag(backend: Backend) -> None:
    store = backend.open()
    store.load()
    store.put_agent("mario", name="Mario", enabled=True)
    assert store.put_agent("mario", name="Mario Rossi", enabled=False) == Agent("mario", "Mario Rossi", False)
    assert backend.open().agents() == [Agent("mario", "Mario Rossi", False)]
    assert store.put_agent("mario") == Agent("mario", None, True)  # a put is the whole agent
    assert backend.open().agents() == [Agent("mario", None, True)]


def test_remove_agent_answers_whether_it_existed(backend: Backend) -> None:
    store = backend.open()
    store.load()
    store.put_agent("mario")
    store.put_agent("luigi")
    assert store.remove_agent("mario") is True
    assert store.remove_agent("mario") is False
    assert store.remove_agent("nobody") is False
    assert backend.open().agents() == [Agent("luigi")]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put_agent("mario rossi"), "agentId"),
        (lambda s: s.put_agent("mario", name=42), "name"),
        (lambda s: s.put_agent("mario", enabled="yes"), "enabled"),
        (lambda s: s.remove_agent("a/b"), "agentId"),
        (lambda s: s.claim_slot("orders", 600.0, "a b"), "agentId"),
        (lambda s: s.add_request("orders", "manual", T0, "x" * 65), "agentId"),
        (lambda s: s.runs(agent_id=""), "agentId"),
        (lambda s: s.runs(before=datetime(2026, 3, 1)), "before"),
    ],
)
def test_bad_agent_input_is_refused_naming_the_field(
    backend: Backend, call: Callable[[Any], object], field: str
) -> None:
    store = backend.open()
    store.load()
    with pytest.raises(InvalidValueError, match=field):
        call(store)
    assert store.agents() == []
    assert store.requests() == []
    assert store.claim_slot("orders", 600.0, "mario") is True  # nothing was claimed either


# --- runs --------------------------------------------------------------------------------


def test_runs_round_trip_agent_attempt_result_and_reason(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    result = {"rows": 42, "pages": [1, 2.5, None], "note": "già fatto", "nested": {"ok": True}}
    records = [
        make_run("orders", 10.0, agent_id="mario", result=result),
        make_run("orders", 20.0, trigger="retry", agent_id="luigi", attempt=3, outcome="failed", error="x"),
        make_run("customers", 30.0, agent_id="mario", outcome="skipped", reason="needs login"),
        make_run("prices", 40.0),
    ]
    for record in records:
        store.append_run(record)
    loaded = backend.open().runs()
    assert loaded == records[::-1]
    assert [r.to_json()["agentId"] for r in loaded] == [None, "mario", "luigi", "mario"]
    assert loaded[3].to_json()["result"] == result
    assert {k: loaded[1].to_json()[k] for k in ("outcome", "reason", "attempt")} == {
        "outcome": "skipped",
        "reason": "needs login",
        "attempt": 1,
    }
    assert loaded[2].attempt == 3 and loaded[0].result is None and loaded[0].reason is None


def test_the_stored_result_is_a_copy(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    result: dict[str, Any] = {"rows": [1, 2]}
    store.append_run(make_run(agent_id="mario", result=result))
    result["rows"].append(3)  # the handler keeps using its dict
    assert backend.open().runs()[0].result == {"rows": [1, 2]}


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"rows": math.nan}, "JSON-able"),
        ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, "JSON-able"),
        ([1, 2, 3], "dict"),
        ({"text": "a\x00b"}, "NUL"),
    ],
)
def test_a_result_that_is_not_a_json_object_is_refused(
    backend: Backend, make_run: MakeRun, result: Any, problem: str
) -> None:
    store = backend.open()
    store.load()
    with pytest.raises(InvalidValueError, match=problem) as caught:
        store.append_run(make_run(result=result))
    assert caught.value.field == "result"
    assert store.runs() == []


def test_a_bad_attempt_or_agent_on_a_record_is_refused(durable_backend: Backend, make_run: MakeRun) -> None:
    store = durable_backend.open()
    with pytest.raises(InvalidValueError, match="attempt"):
        store.append_run(make_run(attempt=0))
    with pytest.raises(InvalidValueError, match="agentId"):
        store.append_run(make_run(agent_id="no spaces"))
    assert store.runs() == []


def test_runs_of_one_agent(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    for finished in (10.0, 20.0, 30.0):
        store.append_run(make_run("orders", finished, agent_id="mario"))
        store.append_run(make_run("orders", finished + 1, agent_id="luigi"))
        store.append_run(make_run("customers", finished + 2, agent_id="mario"))
        store.append_run(make_run("prices", finished + 3))

    def seen(runs: list[RunRecord]) -> list[tuple[str, str | None, float]]:
        return [(r.sync_type, r.agent_id, (r.finished_at - T0).total_seconds()) for r in runs]

    assert seen(store.runs(agent_id="mario")) == [
        ("customers", "mario", 32.0),
        ("orders", "mario", 30.0),
        ("customers", "mario", 22.0),
        ("orders", "mario", 20.0),
        ("customers", "mario", 12.0),
        ("orders", "mario", 10.0),
    ]
    assert seen(store.runs("orders", agent_id="mario", limit=2)) == [
        ("orders", "mario", 30.0),
        ("orders", "mario", 20.0),
    ]
    assert seen(store.runs("orders", 1)) == [("orders", "luigi", 31.0)]  # positional forms still work
    assert len(store.runs()) == 12 and len(store.runs("prices")) == 3
    assert store.runs(agent_id="nobody") == []


def test_runs_before_pages_back_by_start_time(backend: Backend, make_run: MakeRun) -> None:
    store = backend.open()
    store.load()
    for finished in range(10, 110, 10):  # 10 runs of 5 s each, 10 s apart
        store.append_run(make_run("orders", float(finished), duration=5.0, agent_id="mario"))
        store.append_run(make_run("orders", float(finished), duration=5.0, agent_id="luigi"))
    pages: list[list[float]] = []
    before: datetime | None = None
    for _ in range(5):  # bounded: a filter that ignored ``before`` would page forever
        page = store.runs("orders", 4, agent_id="mario", before=before)
        if not page:
            break
        pages.append([(r.started_at - T0).total_seconds() for r in page])
        before = page[-1].started_at
    assert pages == [[95.0, 85.0, 75.0, 65.0], [55.0, 45.0, 35.0, 25.0], [15.0, 5.0]]
    cut = T0 + timedelta(seconds=45)
    starts = [(r.started_at - T0).total_seconds() for r in store.runs(before=cut, limit=3)]
    assert starts == [35.0, 35.0]  # a third would split the two runs that started at 25 s
    starts = [(r.started_at - T0).total_seconds() for r in store.runs(before=cut, limit=4)]
    assert starts == [35.0, 35.0, 25.0, 25.0]
    assert store.runs(before=T0 + timedelta(seconds=5)) == []  # strictly before: the first start is excluded
    aware_elsewhere = (T0 + timedelta(seconds=15, microseconds=1)).astimezone(timezone(timedelta(hours=-5)))
    assert len(store.runs(before=aware_elsewhere)) == 4  # compared as instants


def key(run: RunRecord) -> tuple[datetime, str]:
    return (run.started_at, run.agent_id or "")


def test_paging_back_sees_every_run_once_when_runs_overlap(backend: Backend, make_run: MakeRun) -> None:
    """Several lanes: a run that started earlier may finish later, and starts share a millisecond.

    The reader pages as the HTTP API's readers do, with the ``startedAt`` it was shown,
    which is printed to the millisecond.
    """
    store = backend.open()
    store.load()
    written: list[RunRecord] = []
    for i in range(40):
        # Long and short runs interleave (starts 7 s apart, lasting 3 to 33 s); every fourth
        # pair starts 300 microseconds apart, inside one millisecond.
        start = 7.0 * (i // 2) + (0.0003 if i % 2 and i % 4 == 1 else 0.1 * (i % 2))
        duration = 3.0 + 30.0 * ((i * 7) % 3 == 0)
        record = make_run("orders", start + duration, duration=duration, agent_id=f"agent-{i % 2}")
        store.append_run(record)
        written.append(record)
    for limit in (1, 2, 3, 5):
        seen: list[RunRecord] = []
        before: datetime | None = None
        for _ in range(len(written) + 1):  # bounded
            page = store.runs(limit=limit, before=before)
            if not page:
                break
            assert len(page) <= max(limit, 2)  # two runs started in one millisecond
            seen.extend(page)
            shown = page[-1].started_at  # what a reader is shown: to the millisecond
            before = shown.replace(microsecond=shown.microsecond // 1000 * 1000)
        assert sorted(seen, key=key) == sorted(written, key=key), f"limit {limit}"
        assert [r.started_at for r in seen] == sorted((r.started_at for r in seen), reverse=True)


# --- slot claims -------------------------------------------------------------------------


def test_claims_are_per_type_agent_and_slot(backend: Backend) -> None:
    node_a, node_b = backend.open(), backend.open()
    node_a.load()
    assert node_a.claim_slot("orders", 600.0) is True  # the shared key, as before
    assert node_a.claim_slot("orders", 600.0, "mario") is True
    assert node_b.claim_slot("orders", 600.0, "mario") is False
    assert node_b.claim_slot("orders", 600.0000000001, "mario") is False  # to the millisecond
    assert node_b.claim_slot("orders", 600.0, "luigi") is True
    assert node_b.claim_slot("customers", 600.0, "mario") is True
    assert node_b.claim_slot("orders", 1200.0, "mario") is True
    assert node_b.claim_slot("orders", 600.0) is False
    assert node_b.claim_slot("orders", 600.0, agent_id=None) is False
    assert backend.open().claim_slot("orders", 1200.0, "mario") is False  # claims outlive the object


def test_agent_claim_race_has_one_winner_per_agent(backend: Backend) -> None:
    nodes = [backend.open() for _ in range(6)]
    for node in nodes:
        node.load()
    agents = ["mario", "luigi", "peach"]
    barrier = threading.Barrier(len(nodes))
    won: list[str] = []
    errors: list[BaseException] = []

    def contend(node: Store) -> None:
        try:
            barrier.wait(timeout=10)
            won.extend(agent for agent in agents if node.claim_slot("ddt", 300.0, agent))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(won) == sorted(agents)


def test_prune_claims_forgets_agent_claims_too(durable_backend: Backend) -> None:
    store: Any = durable_backend.open()
    assert store.claim_slot("orders", 600.0) is True
    assert store.claim_slot("orders", 600.0, "mario") is True
    assert store.claim_slot("orders", 600.0, "luigi") is True
    assert store.prune_claims(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.prune_claims(datetime.now(UTC) + timedelta(hours=1)) == 3
    assert store.claim_slot("orders", 600.0, "mario") is True


# --- manual requests ---------------------------------------------------------------------


def test_requests_carry_their_agent(backend: Backend) -> None:
    store = backend.open()
    store.load()
    shared = store.add_request("prices", "manual", T0)
    every = store.add_request("orders", "manual", T0 + timedelta(seconds=1))
    mario = store.add_request("orders", "manual", T0 + timedelta(seconds=2), "mario")
    luigi = store.add_request("customers", "manual", T0 + timedelta(seconds=3), agent_id="luigi")
    assert backend.open().requests() == [
        PendingRequest(shared, "prices", "manual", T0, None),
        PendingRequest(every, "orders", "manual", T0 + timedelta(seconds=1), None),
        PendingRequest(mario, "orders", "manual", T0 + timedelta(seconds=2), "mario"),
        PendingRequest(luigi, "customers", "manual", T0 + timedelta(seconds=3), "luigi"),
    ]
    # The earlier shape stays for the callers that read it.
    assert store.pending_requests()[2] == (mario, "orders", "manual", T0 + timedelta(seconds=2))


def test_removing_an_agent_cancels_its_requests_never_its_history(
    backend: Backend, make_run: MakeRun
) -> None:
    store = backend.open()
    store.load()
    store.put_agent("mario")
    store.put_agent("luigi")
    store.append_run(make_run("orders", 10.0, agent_id="mario"))
    store.append_run(make_run("orders", 11.0, agent_id="luigi"))
    shared = store.add_request("orders", "manual", T0)
    for offset in (1, 2):
        store.add_request("orders", "manual", T0 + timedelta(seconds=offset), "mario")
    luigi = store.add_request("customers", "manual", T0 + timedelta(seconds=3), "luigi")
    assert store.remove_agent("mario") is True
    reopened = backend.open()
    assert [r.request_id for r in reopened.requests()] == [shared, luigi]
    assert [r.agent_id for r in reopened.runs()] == ["luigi", "mario"]
    assert reopened.agents() == [Agent("luigi")]
    assert store.remove_agent("mario") is False  # and a removed agent's requests stay gone
    assert [r.request_id for r in reopened.requests()] == [shared, luigi]
