"""Per-agent jobs on the ManualClock: fan-out, isolation, lanes and budget, manual runs, holds."""

from __future__ import annotations

import gc
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from agent_support import MIN, LaneRecorder, per_agent_schedule, set_agents

from archibald_actors import (
    InvalidValueError,
    ManualClock,
    NeedsLogin,
    SyncService,
    UnknownAgentError,
)
from archibald_actors.store import MemoryStore

AGENTS = ("ada", "bob", "cy", "dee", "eve")


def by_agent(rows: list[dict[str, Any]]) -> dict[str | None, Counter[str]]:
    counts: dict[str | None, Counter[str]] = {}
    for row in rows:
        counts.setdefault(row["agentId"], Counter())[row["outcome"]] += 1
    return counts


def test_one_agent_raising_every_time_never_skips_or_delays_another(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    def bob_breaks(ctx: Any) -> None:
        if ctx.agent_id == "bob":
            raise RuntimeError("session expired because the server restarted")

    recorder = LaneRecorder(clock, duration=lambda t, a: 20.0, fail=bob_breaks)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"))
    set_agents(service, clock, *AGENTS)  # after the slot at T+0: the agents' first slot is T+10
    clock.advance(65 * MIN)  # slots at 10, 20, ..., 60 minutes
    rows = service.history("orders", limit=100)
    counts = by_agent(rows)
    # bob: his slot at 10 and its two retries fail, which opens his breaker: his later
    # slots are skipped; nobody else is touched
    bobs = [(r["trigger"], r["attempt"], r["outcome"]) for r in reversed(rows) if r["agentId"] == "bob"]
    assert bobs[:3] == [("auto", 1, "failed"), ("retry", 2, "failed"), ("retry", 3, "failed")]
    assert {o for _, _, o in bobs[3:]} == {"skipped"}
    assert counts.pop("bob") == Counter(failed=3, skipped=len(bobs) - 3)
    assert counts == {a: Counter(success=6) for a in AGENTS if a != "bob"}
    # one row per (agent, slot) for the others, each slot served once per agent
    slots = Counter((r["agentId"], r["scheduledAt"]) for r in rows if r["agentId"] != "bob")
    assert set(slots.values()) == {1} and len(slots) == 24
    # one at a time by default: bob's failures cost only his own turn
    assert recorder.most_at_once == 1
    status = service.status()
    counts = {"total": 5, "ok": 4, "failed": 0, "skipped": 1, "running": 0}
    assert status["types"]["orders"]["agents"] == counts
    assert status["types"]["prices"]["agents"] is None  # a shared type has no agents


def test_needs_login_is_skipped_with_its_reason_and_is_no_failure(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    def cy_needs_login(ctx: Any) -> None:
        if ctx.agent_id == "cy":
            raise NeedsLogin("no cached password for cy")

    events: list[dict[str, Any]] = []
    recorder = LaneRecorder(clock, fail=cy_needs_login)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"))
    service.events.subscribe(events.append)
    set_agents(service, clock, *AGENTS)
    clock.advance(25 * MIN)
    rows = [r for r in service.history("orders") if r["agentId"] == "cy"]
    assert [r["outcome"] for r in rows] == ["skipped"] * 2  # slots 10 and 20
    assert rows[0]["reason"] == "no cached password for cy" and rows[0]["error"] is None
    orders = service.status()["types"]["orders"]
    assert orders["consecutiveFailures"] == 0 and orders["failures"] == 0
    assert orders["agents"]["skipped"] == 1 and orders["agents"]["ok"] == 4
    skipped = [e for e in events if e["type"] == "sync.skipped"]
    assert len(skipped) == 2 and {e["agentId"] for e in skipped} == {"cy"}
    assert service.health()["status"] == "ok"


@pytest.mark.parametrize("budget", [1, 3])
def test_lanes_never_overlap_and_the_budget_holds(
    clock: ManualClock, make_service: Callable[..., SyncService], budget: int
) -> None:
    # Four per-agent types and two shared ones, slots colliding, jobs of varied lengths.
    recorder = LaneRecorder(clock, duration=lambda t, a: 10.0 + 3 * len(t) + (11 if a == "eve" else 0))
    schedule = per_agent_schedule(
        "orders", "customers", "ddt", "invoices", enabled=tuple(per_agent_schedule()), orders={"priority": 6}
    )
    service = make_service(recorder.handlers(), schedule=schedule, max_concurrent=budget)
    set_agents(service, clock, *AGENTS)
    peak = 0
    for _ in range(60 * 4):
        clock.advance(MIN / 4)
        peak = max(peak, len(service.status()["jobs"]))
    assert recorder.most_per_lane == 1
    assert recorder.most_at_once == budget
    assert peak == budget
    per_type = Counter(j.sync_type for j in recorder.jobs)
    assert per_type["prices"] >= 1 and per_type["orders"] >= len(AGENTS)


def test_fairness_fifty_agents_two_at_a_time_over_a_day(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    """Rotating the start of every fan-out spreads the waiting evenly over the agents."""
    agents = [f"agent{i:02d}" for i in range(50)]
    recorder = LaneRecorder(clock, duration=lambda t, a: 20.0 if t == "orders" else 15.0)
    schedule = per_agent_schedule(
        "orders", "customers", orders={"interval_minutes": 30.0}, customers={"interval_minutes": 60.0}
    )
    service = make_service(recorder.handlers(), schedule=schedule, max_concurrent=2)
    set_agents(service, clock, *agents)
    clock.advance(24 * 60 * MIN - 1)
    waits: dict[str, list[float]] = {a: [] for a in agents}
    for job in recorder.jobs:
        assert job.agent_id is not None and job.scheduled_at is not None
        waits[job.agent_id].append(job.started - job.scheduled_at)
    assert all(len(w) == 47 + 24 for w in waits.values())  # nobody lost a slot (from T+30)
    means = {a: sum(w) / len(w) for a, w in waits.items()}
    average = sum(means.values()) / len(means)
    assert average > 0  # the budget made jobs wait
    worst = max(means, key=lambda a: means[a])
    assert means[worst] <= 1.5 * average, f"{worst} waited {means[worst]:.0f} s, average {average:.0f} s"
    assert recorder.most_at_once == 2 and recorder.most_per_lane == 1


def test_manual_runs_for_one_agent_or_all_and_the_refusals(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = LaneRecorder(clock, duration=lambda t, a: 5.0)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders", enabled=()))
    set_agents(service, clock, *AGENTS, disabled=("eve",))
    assert service.request_sync("orders", agent_id="bob") == {"syncType": "orders", "coalesced": False}
    clock.advance(MIN)
    assert [(j.agent_id, j.trigger) for j in recorder.jobs] == [("bob", "manual")]
    service.request_sync("orders")  # every enabled agent
    clock.advance(MIN)
    assert sorted(j.agent_id or "" for j in recorder.jobs[1:]) == ["ada", "bob", "cy", "dee"]
    with pytest.raises(InvalidValueError, match="agentId"):
        service.request_sync("prices", agent_id="bob")  # a shared type
    with pytest.raises(UnknownAgentError, match="zed"):
        service.request_sync("orders", agent_id="zed")
    with pytest.raises(InvalidValueError, match="disabled"):
        service.request_sync("orders", agent_id="eve")
    with pytest.raises(InvalidValueError, match="agentId"):
        service.request_sync("orders", agent_id="no spaces")
    service.request_sync("prices")
    clock.advance(MIN)
    assert recorder.jobs[-1].sync_type == "prices" and recorder.jobs[-1].agent_id is None
    assert service.wait_idle(timeout=5)


def test_a_hold_of_one_agent_stops_only_its_lane(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = LaneRecorder(clock, duration=lambda t, a: 60.0)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"), max_concurrent=5)
    set_agents(service, clock, *AGENTS)
    clock.advance(10 * MIN + 10.0)
    assert {j["agentId"] for j in service.status()["jobs"]} == set(AGENTS)
    held = threading.Event()
    release = threading.Event()

    def hold_bob() -> None:
        with service.exclusive(timeout=5, agent_id="bob"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_bob)
    holder.start()
    try:
        assert held.wait(5)
        clock.run_due()
        status = service.status()
        assert {j["agentId"] for j in status["jobs"]} == {"ada", "cy", "dee", "eve"}
        assert status["heldAgents"] == ["bob"] and status["held"] is False
        service.request_sync("orders", agent_id="bob")
        clock.advance(10 * MIN)  # the others finish and run their next slot; bob waits
        bobs = recorder.of("orders", "bob")
        assert len(bobs) == 1
        assert len(recorder.of("orders", "ada")) == 2  # slots 10 and 20
    finally:
        release.set()
        holder.join(5)
    clock.advance(5 * MIN)
    bobs = recorder.of("orders", "bob")
    assert len(bobs) >= 2  # bob's stopped job resumed for its slot after the hold
    outcomes = [r["outcome"] for r in service.history("orders") if r["agentId"] == "bob"]
    assert "cancelled" in outcomes and "success" in outcomes


def test_a_removed_agent_loses_its_pending_jobs_not_its_history(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = LaneRecorder(clock, duration=lambda t, a: 60.0)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"))
    set_agents(service, clock, *AGENTS)
    clock.advance(12 * MIN)  # from the slot at 10, one a minute: two ran, one runs, two wait
    queued = {q["agentId"] for q in service.status()["queue"]}
    assert len(queued) == 2
    gone = sorted(queued)[0]
    ran = recorder.jobs[0].agent_id
    set_agents(service, clock, *(a for a in AGENTS if a not in (gone, ran)))
    assert {q["agentId"] for q in service.status()["queue"]} == queued - {gone}
    clock.advance(5 * MIN)
    assert not recorder.of("orders", gone)
    assert [r["agentId"] for r in service.history("orders")].count(ran) == 1  # history kept


def test_claims_are_per_type_agent_and_slot(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    store = MemoryStore()
    recorder = LaneRecorder(clock)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"), store=store)
    set_agents(service, clock, *AGENTS)
    assert store.claim_slot("orders", 10 * MIN, "cy")  # say another replica ran cy's next slot
    clock.advance(10 * MIN)
    second = [j.agent_id for j in recorder.jobs if j.scheduled_at == 10 * MIN]
    assert sorted(a or "" for a in second) == ["ada", "bob", "dee", "eve"]
    assert service.status()["types"]["orders"]["duplicates"] == 1
    assert not store.claim_slot("orders", 10 * MIN, "ada")  # claimed once per agent


def test_the_handler_context_result_and_progress(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    seen: list[tuple[str | None, int]] = []
    started = threading.Event()

    def orders(ctx: Any) -> Any:
        seen.append((ctx.agent_id, ctx.attempt))
        for row in range(500):
            ctx.progress(row, 1000, "rows")
        started.set()
        ctx.sleep(30)
        ctx.progress(1000, 1000)
        return {"rows": 1000}

    def prices(ctx: Any) -> Any:
        return ["not", "a", "dict"]

    events: list[dict[str, Any]] = []
    schedule = per_agent_schedule("orders", enabled=())
    service = make_service({"orders": orders, "prices": prices}, schedule=schedule)
    service.events.subscribe(events.append)
    set_agents(service, clock, "ada")
    service.request_sync("orders")
    clock.run_due()
    assert started.wait(5)
    job = service.status()["jobs"][0]
    assert job["agentId"] == "ada" and job["attempt"] == 1
    assert job["progress"] == {"done": 499, "total": 1000, "message": "rows", "percentage": 49.9}
    clock.advance(MIN)
    progress = [e for e in events if e["type"] == "sync.progress"]
    # 501 calls: the first of the instant and the last (done == total) are published
    assert [(e["done"], e["agentId"]) for e in progress] == [(0, "ada"), (1000, "ada")]
    assert seen == [("ada", 1)]
    service.request_sync("prices")
    clock.advance(MIN)
    runs = {r["syncType"]: r for r in service.history()}
    assert runs["orders"]["result"] == {"rows": 1000} and runs["orders"]["agentId"] == "ada"
    assert runs["prices"]["outcome"] == "success" and runs["prices"]["result"] is None


def test_status_lists_every_job_and_running_stays_the_longest(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    recorder = LaneRecorder(clock, duration=lambda t, a: 120.0 if t == "prices" else 30.0)
    schedule = per_agent_schedule("orders", enabled=())
    service = make_service(recorder.handlers(), schedule=schedule, max_concurrent=2)
    set_agents(service, clock, "ada", "bob")
    service.request_sync("prices")
    clock.advance(10.0)
    service.request_sync("orders")
    clock.run_due()
    status = service.status()
    assert [(j["syncType"], j["agentId"]) for j in status["jobs"]] == [("prices", None), ("orders", "ada")]
    assert status["running"]["syncType"] == "prices" and set(status["running"]) == {
        "syncType", "trigger", "scheduledAt", "startedAt"
    }
    assert [(q["syncType"], q["agentId"]) for q in status["queue"]] == [("orders", "bob")]
    assert status["types"]["orders"]["state"] == "running"
    assert status["types"]["orders"]["agents"]["running"] == 1
    assert status["maxConcurrent"] == 2


def test_max_concurrent_is_checked(make_service: Callable[..., SyncService]) -> None:
    for bad in (0, 65, 1.5, True, "2"):
        with pytest.raises(InvalidValueError, match="max_concurrent"):
            make_service(start=False, max_concurrent=bad)


def test_scope_is_checked_and_the_command_line_takes_a_budget() -> None:
    from archibald_actors import ScheduleEntry  # noqa: PLC0415
    from archibald_actors.__main__ import build_parser  # noqa: PLC0415

    with pytest.raises(InvalidValueError, match="scope") as caught:
        ScheduleEntry("refunds", 15, 0, 1, scope="agents")  # type: ignore[arg-type]
    assert caught.value.field == "scope"
    assert ScheduleEntry("refunds", 15, 0, 1, scope="per_agent").per_agent
    assert build_parser().parse_args(["serve", "--max-concurrent", "3"]).max_concurrent == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-concurrent", "0"])


@pytest.mark.parametrize("budget", [1, 2])
def test_a_hung_agent_costs_the_others_only_its_lane_or_its_timeout(
    clock: ManualClock, make_service: Callable[..., SyncService], budget: int
) -> None:
    def hang_for_bob(ctx: Any) -> None:
        if ctx.agent_id == "bob":
            while True:
                ctx.sleep(3600)

    recorder = LaneRecorder(clock, duration=lambda t, a: 10.0, fail=hang_for_bob)
    schedule = per_agent_schedule("orders", orders={"timeout_seconds": 120.0})
    service = make_service(recorder.handlers(), schedule=schedule, max_concurrent=budget)
    set_agents(service, clock, *AGENTS)
    clock.advance(19 * MIN)  # the slot at 10 minutes
    rows = {r["agentId"]: r for r in service.history("orders")}
    assert rows["bob"]["outcome"] == "timeout"
    assert all(rows[a]["outcome"] == "success" for a in AGENTS if a != "bob")
    finished = {j.agent_id: j.finished for j in recorder.jobs if j.agent_id != "bob"}
    if budget == 1:  # one at a time: bob's hang holds the others up to its timeout, no longer
        assert max(f or 0 for f in finished.values()) <= 10 * MIN + 120 + 4 * 10
    else:  # bob's lane hangs, the others share the second place of the budget
        assert max(f or 0 for f in finished.values()) <= 10 * MIN + 4 * 10


def test_a_restart_mid_fan_out_runs_the_agents_not_claimed_yet_and_no_one_twice(
    tmp_path: Any, clock: ManualClock
) -> None:
    from archibald_actors.store import SqliteStore  # noqa: PLC0415

    db = tmp_path / "sync.db"
    recorder = LaneRecorder(clock, duration=lambda t, a: 60.0)
    schedule = per_agent_schedule("orders")
    service = SyncService(recorder.handlers(), clock=clock, schedule=schedule, store=SqliteStore(db))
    service.start()
    try:
        set_agents(service, clock, *AGENTS)
        clock.advance(10 * MIN + 90)  # the slot at 10: one agent ran, the second runs
    finally:
        service.stop(timeout=5)
    before = {j.agent_id for j in recorder.jobs}
    assert len(before) == 2
    again = SyncService(recorder.handlers(), clock=clock, schedule=schedule, store=SqliteStore(db))
    again.start()
    try:
        clock.advance(5 * MIN)  # the agents survived the restart; the slot at 10 is caught up
        at_ten = Counter(j.agent_id for j in recorder.jobs if j.scheduled_at == 10 * MIN)
        assert set(at_ten) == set(AGENTS)  # the three not claimed before ran after it
        assert set(at_ten.values()) == {1}  # and none ran twice
        assert again.status()["types"]["orders"]["duplicates"] == 2
    finally:
        again.stop(timeout=5)


def test_a_finished_runs_context_reports_no_more_progress_and_is_freed_without_the_cycle_collector(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    contexts: list[weakref.ref[Any]] = []
    kept: list[Any] = []

    def orders(ctx: Any) -> None:
        contexts.append(weakref.ref(ctx))
        kept.append(ctx)
        ctx.progress(1, 2)
        ctx.sleep(30)

    events: list[dict[str, Any]] = []
    schedule = per_agent_schedule("orders", enabled=())
    service = make_service({"orders": orders, "prices": orders}, schedule=schedule)
    service.events.subscribe(events.append)
    set_agents(service, clock, "ada")
    gc.disable()
    try:
        service.request_sync("orders")
        clock.advance(MIN)
        assert [r["outcome"] for r in service.history(sync_type="orders")] == ["success"]
        kept.pop().progress(2, 2)  # after its end: published nowhere, kept nowhere
        assert [e["done"] for e in events if e["type"] == "sync.progress"] == [1]
        assert contexts[0]() is None  # no reference cycle holds the finished run's objects
    finally:
        gc.enable()


def test_paging_back_through_overlapping_runs_sees_every_run_once(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    # Three lanes at once and runs of 1 to 9 minutes: a run that started earlier often ends
    # later, and the jobs of one pick start at the same instant (one millisecond).
    minutes = {"ada": 1, "bob": 9, "cy": 4, "dee": 7, "eve": 2}
    recorder = LaneRecorder(clock, duration=lambda t, agent: 60.0 * minutes[agent or "ada"])
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"), max_concurrent=3)
    set_agents(service, clock, *AGENTS)
    clock.advance(2 * 60 * MIN)
    everything = service.history(limit=600)
    ends = sorted(everything, key=lambda r: r["finishedAt"], reverse=True)
    assert len(everything) > 30 and everything != ends  # the order by start is not the order by end
    for limit in (1, 2, 5):
        seen: list[dict[str, Any]] = []
        before: datetime | None = None
        for _ in range(len(everything) + 1):  # bounded
            page = service.history(limit=limit, before=before)
            if not page:
                break
            seen.extend(page)
            before = datetime.fromisoformat(page[-1]["startedAt"])  # as a reader is shown it
        assert sorted(seen, key=_job) == sorted(everything, key=_job), f"limit {limit}"


def _job(row: dict[str, Any]) -> tuple[str, str, int]:
    return (row["agentId"], row["scheduledAt"], row["attempt"])


def test_events_name_each_waiting_type_once_and_count_the_jobs(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    events: list[dict[str, Any]] = []
    recorder = LaneRecorder(clock, duration=lambda t, agent: 60.0)
    service = make_service(recorder.handlers(), schedule=per_agent_schedule("orders"))
    set_agents(service, clock, *AGENTS)
    service.events.subscribe(events.append)
    clock.advance(15 * MIN)  # the agents' slot at T+10: five jobs, one after another
    fanned = next(e for e in events if e["type"] == "queue.changed")
    assert (fanned["jobs"], fanned["queued"], fanned["queue"]) == (5, 5, ["orders"])  # one name, not five
    starts = [(e["queued"], e["queue"]) for e in events if e["type"] == "sync.started"]
    assert starts == [(4, ["orders"]), (3, ["orders"]), (2, ["orders"]), (1, ["orders"]), (0, [])]
