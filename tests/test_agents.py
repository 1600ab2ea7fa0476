"""Agents through the service: put, list, remove, one agent's state, history by agent,
refusals while the store hangs, and agents that survive a restart on SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from stuck_store import until_stuck

from archibald_actors import (
    DEFAULT_SCHEDULE,
    InvalidValueError,
    ManualClock,
    NeedsLogin,
    StoreError,
    SyncService,
    UnknownAgentError,
)
from archibald_actors.domain import RunRecord
from archibald_actors.store import MemoryStore, SqliteStore

MIN = 60.0
#: What the issue promises while the database hangs.
ANSWER_WITHIN = 0.05
PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
PER_AGENT = ("orders", "customers", "ddt", "invoices")


class Events:
    """The agent events a service published."""

    def __init__(self, service: SyncService) -> None:
        self.seen: list[dict[str, Any]] = []
        service.events.subscribe(self._seen)

    def _seen(self, event: Any) -> None:
        if event["type"].startswith("agent."):
            self.seen.append(dict(event))

    def kinds(self) -> list[tuple[str, str]]:
        return [(e["type"], e["agentId"]) for e in self.seen]


def test_put_list_and_remove_agents(make_service: Callable[..., SyncService]) -> None:
    service = make_service(schedule=PAUSED)
    events = Events(service)
    assert service.agents() == []
    assert service.put_agent("mario", name="Mario Rossi") == {
        "agentId": "mario",
        "name": "Mario Rossi",
        "enabled": True,
    }
    service.put_agent("anna", enabled=False)
    assert [a["agentId"] for a in service.agents()] == ["anna", "mario"]
    assert service.agents()[0] == {"agentId": "anna", "name": None, "enabled": False}
    assert service.store.agents()[1].name == "Mario Rossi"  # stored before it was answered

    assert service.remove_agent("anna") == {"agentId": "anna", "removed": True}
    assert [a["agentId"] for a in service.agents()] == ["mario"]
    with pytest.raises(UnknownAgentError, match="anna") as caught:
        service.remove_agent("anna")
    assert isinstance(caught.value, LookupError)
    changed, removed = "agent.changed", "agent.removed"
    assert events.kinds() == [(changed, "mario"), (changed, "anna"), (removed, "anna")]
    assert events.seen[0]["name"] == "Mario Rossi"


def test_a_put_replaces_unless_told_to_keep_fields(make_service: Callable[..., SyncService]) -> None:
    service = make_service(schedule=PAUSED)
    events = Events(service)
    service.put_agent("mario", name="Mario", enabled=False)
    assert service.put_agent("mario", name="Mario R.", keep={"enabled"}) == {
        "agentId": "mario",
        "name": "Mario R.",
        "enabled": False,
    }
    assert service.put_agent("mario", enabled=True, keep={"name"})["name"] == "Mario R."
    assert service.put_agent("mario") == {"agentId": "mario", "name": None, "enabled": True}
    # A new agent keeps the defaults for the fields it keeps.
    assert service.put_agent("luigi", keep={"name", "enabled"}) == {
        "agentId": "luigi",
        "name": None,
        "enabled": True,
    }
    assert len(events.seen) == 5
    service.put_agent("luigi")  # the same agent again: nothing changed, nothing published
    assert len(events.seen) == 5


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put_agent("mario rossi"), "agentId"),
        (lambda s: s.put_agent("x" * 65), "agentId"),
        (lambda s: s.put_agent("mario", name=7), "name"),
        (lambda s: s.put_agent("mario", enabled="yes"), "enabled"),
        (lambda s: s.put_agent("mario", keep={"role"}), "keep"),
        (lambda s: s.remove_agent("a/b"), "agentId"),
        (lambda s: s.agent(""), "agentId"),
        (lambda s: s.history(agent_id="a b"), "agentId"),
        (lambda s: s.history(before=datetime(2026, 1, 1)), "before"),  # naive
        (lambda s: s.history(before="2026-01-01T00:00:00Z"), "before"),
        (lambda s: s.request_sync("orders", agent_id="a;b"), "agentId"),
    ],
)
def test_bad_arguments_name_the_field(
    make_service: Callable[..., SyncService], call: Callable[[SyncService], Any], field: str
) -> None:
    service = make_service(schedule=PAUSED)
    with pytest.raises(InvalidValueError, match=field) as caught:
        call(service)
    assert caught.value.field == field
    assert service.agents() == []


def _run(
    sync_type: str, agent_id: str | None, started: datetime, outcome: str = "success", **kw: Any
) -> RunRecord:
    return RunRecord(
        sync_type,
        "auto",
        started,
        started,
        started,
        started + timedelta(seconds=30),
        outcome,  # type: ignore[arg-type]
        agent_id=agent_id,
        **kw,
    )


def test_one_agents_state_per_type(clock: ManualClock, make_service: Callable[..., SyncService]) -> None:
    store = MemoryStore()
    # The real split: orders, customers, ddt and invoices per agent; every timer runs.
    split = {t: replace(e, scope="per_agent") if t in PER_AGENT else e for t, e in DEFAULT_SCHEDULE.items()}
    def ddt(ctx: Any) -> None:
        raise NeedsLogin("needs a login")  # so mario's ddt jobs never succeed

    service = make_service({"ddt": ddt}, store=store, schedule=split)
    service.put_agent("mario", name="Mario")
    service.put_agent("anna", enabled=False)
    now = clock.wall()
    store.append_run(_run("orders", "mario", now - timedelta(hours=3)))
    store.append_run(_run("orders", "mario", now - timedelta(hours=2), "failed", error="ERP down"))
    store.append_run(_run("orders", "luigi", now - timedelta(minutes=1)))  # another agent's
    store.append_run(_run("ddt", "mario", now - timedelta(minutes=5), "skipped", reason="needs a login"))

    mario = service.agent("mario")
    assert (mario["agentId"], mario["name"], mario["enabled"]) == ("mario", "Mario", True)
    orders = mario["types"]["orders"]
    assert orders["lastRun"]["outcome"] == "failed" and orders["lastRun"]["agentId"] == "mario"
    assert orders["lastSuccessAt"] == _iso(now - timedelta(hours=3) + timedelta(seconds=30))
    assert orders["fresh"] is False  # orders reads stale after an hour without a success
    assert orders["nextRunAt"] == service.schedule()["orders"]["nextRunAt"]
    assert orders["breaker"] is None
    assert mario["types"]["ddt"]["lastRun"]["reason"] == "needs a login"
    assert mario["types"]["ddt"]["fresh"] is True  # no success yet, but known for less than 3 h
    assert "products" not in mario["types"]  # a shared type: no agent's runs
    assert mario["types"]["invoices"]["lastRun"] is None
    anna = service.agent("anna")
    assert all(t["nextRunAt"] is None for t in anna["types"].values())  # disabled: nothing is due
    with pytest.raises(UnknownAgentError):
        service.agent("luigi")  # runs in the ledger, but no such agent
    clock.advance(4 * 60 * MIN)
    assert service.agent("mario")["types"]["ddt"]["fresh"] is False


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_history_of_one_agent_pages_back_by_start(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = MemoryStore()
    service = make_service(store=store, schedule=PAUSED)
    now = clock.wall()
    for minutes in range(10, 0, -1):
        store.append_run(_run("orders", "mario", now - timedelta(minutes=minutes)))
        store.append_run(_run("orders", "anna", now - timedelta(minutes=minutes)))
    store.append_run(_run("prices", None, now))
    page = service.history(agent_id="mario", limit=4)
    assert [r["agentId"] for r in page] == ["mario"] * 4
    assert page[0]["startedAt"] == _iso(now - timedelta(minutes=1))
    last = datetime.fromisoformat(page[-1]["startedAt"])
    older = service.history(agent_id="mario", limit=4, before=last)
    assert [r["startedAt"] for r in older] == [_iso(now - timedelta(minutes=m)) for m in (5, 6, 7, 8)]
    assert len(service.history(sync_type="orders", before=last)) == 12  # both agents, 6 each
    assert [r["syncType"] for r in service.history(limit=1)] == ["prices"]


class HangingStore(MemoryStore):
    """A memory store whose writes of requests hang, once ``hanging``, until released."""

    answers_at_once = False  # its calls may hang: they must run on the store worker

    def __init__(self) -> None:
        super().__init__()
        self.hanging = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()

    def add_request(self, *args: Any, **kwargs: Any) -> int:
        if self.hanging.is_set():
            self.entered.set()
            assert self.release.wait(10), "the test never released the store"
        return super().add_request(*args, **kwargs)


def test_agent_changes_are_refused_at_once_while_the_store_hangs(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = HangingStore()
    service = make_service(store=store, schedule=PAUSED)
    service.put_agent("mario")
    store.hanging.set()
    request = service.request_sync_future("orders")  # its write hangs in the store
    assert store.entered.wait(5)
    until_stuck(service)
    for change in (lambda: service.put_agent("anna"), lambda: service.remove_agent("mario")):
        began = time.monotonic()
        with pytest.raises(StoreError, match="not answering"):
            change()
        assert time.monotonic() - began < ANSWER_WITHIN
    assert [a["agentId"] for a in service.agents()] == ["mario"]  # answered from memory
    store.release.set()
    assert request.result(5)["syncType"] == "orders"
    clock.run_due()
    assert [a.agent_id for a in store.agents()] == ["mario"]  # nothing half-applied
    assert service.put_agent("anna")["agentId"] == "anna"


def test_a_put_the_store_fails_changes_nothing(make_service: Callable[..., SyncService]) -> None:
    class NoAgents(MemoryStore):
        def put_agent(self, agent_id: str, name: str | None = None, enabled: bool = True) -> Any:
            raise StoreError("disk full")

    service = make_service(store=NoAgents(), schedule=PAUSED)
    events = Events(service)
    with pytest.raises(StoreError, match="disk full"):
        service.put_agent("mario")
    assert service.agents() == []
    assert events.seen == []


def test_agents_survive_a_restart_on_sqlite(tmp_path: Path, clock: ManualClock) -> None:
    db = tmp_path / "sync.db"
    service = SyncService(clock=clock, schedule=PAUSED, store=SqliteStore(db))
    service.start()
    try:
        service.put_agent("mario", name="Mario Rossi")
        service.put_agent("anna.b@example.com", enabled=False)
        service.put_agent("luigi")
        service.remove_agent("luigi")
        before = service.agents()
    finally:
        service.stop(5.0)
    again = SyncService(clock=clock, schedule=PAUSED, store=SqliteStore(db))
    again.start()
    try:
        assert again.agents() == before
        assert [a["agentId"] for a in before] == ["anna.b@example.com", "mario"]
        assert again.agent("mario")["name"] == "Mario Rossi"
    finally:
        again.stop(5.0)
