"""Retries and circuit breakers on the ManualClock: backoff times, the next-slot bound,
breakers opening, skipping, half-open trials, closing, the admin reset and the ERP-wide wait."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from agent_support import MIN, LaneRecorder, per_agent_schedule, set_agents

from archibald_actors import ManualClock, SyncService
from archibald_actors.actors.supervisor import ORCHESTRATOR
from archibald_actors.breaker import BreakerPolicy
from archibald_actors.messages import ResetBreakers

AGENTS = ("ada", "bob", "cy", "dee", "eve")


def reset(service: SyncService, sync_type: str | None = None, agent_id: str | None = None) -> int:
    reply: Future[Any] = service._send(ORCHESTRATOR, lambda r: ResetBreakers(r, sync_type, agent_id))
    return int(reply.result(5))


def test_a_failed_run_is_retried_after_the_backoff_with_its_attempt_counted(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    tries: list[tuple[float, str, int, float | None]] = []

    def prices(ctx: Any) -> None:
        tries.append((clock.now(), ctx.trigger, ctx.attempt, ctx.scheduled_at))
        if ctx.attempt < 3:
            raise RuntimeError("ERP export timed out")

    schedule = per_agent_schedule(enabled=("prices",))
    service = make_service({"prices": prices}, schedule=schedule)
    clock.advance(30 * MIN)
    slot = 10 * MIN
    assert tries == [(slot, "auto", 1, slot), (slot + 60, "retry", 2, slot), (slot + 360, "retry", 3, slot)]
    outcomes = [(r["attempt"], r["outcome"]) for r in reversed(service.history("prices"))]
    assert outcomes == [(1, "failed"), (2, "failed"), (3, "success")]
    assert service.status()["types"]["prices"]["consecutiveFailures"] == 0


def test_a_retry_never_reaches_the_next_slot(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    def orders(ctx: Any) -> None:
        raise RuntimeError("always")

    # Orders every 5 minutes: the first retry (after 60 s) fits, the second (after 300 s more) not.
    schedule = per_agent_schedule(enabled=("orders",), orders={"interval_minutes": 5.0})
    service = make_service({"orders": orders}, schedule=schedule, breakers=BreakerPolicy(breaker_failures=99))
    clock.advance(5 * MIN - 1)
    runs = [(r["trigger"], r["attempt"]) for r in reversed(service.history("orders"))]
    assert runs == [("auto", 1), ("retry", 2)]
    clock.advance(2 * MIN)  # the slot at 5 runs as a first try of its own
    runs = [(r["trigger"], r["attempt"], r["scheduledAt"]) for r in reversed(service.history("orders"))]
    assert runs[2] == ("auto", 1, "2026-01-01T00:05:00.000Z")


def test_skipped_and_cancelled_runs_are_not_retried(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    from archibald_actors import NeedsLogin  # noqa: PLC0415

    def orders(ctx: Any) -> None:
        if ctx.agent_id == "ada":
            raise NeedsLogin("no password")
        ctx.sleep(120)

    service = make_service({"orders": orders}, schedule=per_agent_schedule("orders"), max_concurrent=2)
    set_agents(service, clock, "ada", "bob")
    clock.advance(10 * MIN + 10)
    with service.exclusive(timeout=5):  # bob's running job is cancelled for the hold
        pass
    clock.advance(15 * MIN)
    rows = service.history("orders")
    assert {(r["agentId"], r["outcome"]) for r in rows} >= {("ada", "skipped"), ("bob", "cancelled")}
    assert not [r for r in rows if r["attempt"] > 1]  # neither is tried again


def test_a_breaker_opens_skips_half_opens_closes_and_resets(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    healthy = {"bob": False}

    def bob_fails(ctx: Any) -> None:
        if ctx.agent_id == "bob" and not healthy["bob"]:
            raise RuntimeError("login refused")

    events: list[dict[str, Any]] = []
    recorder = LaneRecorder(clock, fail=bob_fails)
    policy = BreakerPolicy(breaker_failures=3, breaker_cooldown=30 * MIN)
    schedule = per_agent_schedule("orders", retries=0)
    service = make_service(recorder.handlers(), schedule=schedule, breakers=policy)
    service.events.subscribe(events.append)
    set_agents(service, clock, "ada", "bob")
    clock.advance(35 * MIN)  # slots 10, 20, 30 fail: open until 60
    status = service.status()
    [pair] = status["breakers"]["pairs"]
    assert (pair["syncType"], pair["agentId"], pair["state"]) == ("orders", "bob", "open")
    assert pair["until"] == "2026-01-01T01:00:00.000Z"
    assert service.health()["status"] == "ok"  # one agent's pair: shown in status, not a 503
    assert service.agent("bob")["types"]["orders"]["breaker"]["state"] == "open"
    assert service.agent("ada")["types"]["orders"]["breaker"] is None
    clock.advance(20 * MIN)  # slots 40 and 50: skipped without running
    bobs = [(r["outcome"], r["reason"]) for r in reversed(service.history("orders")) if r["agentId"] == "bob"]
    assert bobs == [("failed", None)] * 3 + [("skipped", "breaker open")] * 2
    assert len(recorder.of("orders", "bob")) == 3 and len(recorder.of("orders", "ada")) == 5
    clock.advance(5 * MIN)  # 60: half-open; its slot is the trial, and fails again
    assert service.status()["breakers"]["pairs"][0]["state"] == "open"
    healthy["bob"] = True
    clock.advance(30 * MIN)  # 90: the next trial succeeds and closes it
    assert service.status()["breakers"]["pairs"] == []
    kinds = [e["type"] for e in events if e["type"].startswith("breaker.")]
    assert kinds == [
        "breaker.opened", "breaker.half_open", "breaker.opened", "breaker.half_open", "breaker.closed"
    ]
    # An admin closes an open breaker early.
    healthy["bob"] = False
    clock.advance(30 * MIN)
    assert service.status()["breakers"]["pairs"][0]["state"] == "open"
    assert reset(service, "orders", "bob") == 1
    assert service.status()["breakers"]["pairs"] == []
    clock.advance(10 * MIN)
    assert recorder.of("orders", "bob")[-1].scheduled_at == 130 * MIN  # runs again at its next slot


def test_failures_on_many_lanes_hold_every_job_for_the_erp_wait(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    erp_down = {"down": True}

    def orders(ctx: Any) -> None:
        if erp_down["down"]:
            raise RuntimeError("ERP unreachable")

    events: list[dict[str, Any]] = []
    recorder = LaneRecorder(clock)
    handlers = {**recorder.handlers(), "orders": orders}
    later = {"start_delay_minutes": 12.0}
    schedule = per_agent_schedule("orders", enabled=("orders", "prices"), retries=0, prices=later)
    service = make_service(handlers, schedule=schedule, max_concurrent=2)
    service.events.subscribe(events.append)
    set_agents(service, clock, *AGENTS)
    clock.advance(10 * MIN + 1)  # five lanes fail at 10: the ERP-wide breaker opens until 25
    erp = service.status()["breakers"]["erp"]
    assert erp["state"] == "open" and erp["until"] == "2026-01-01T00:25:00.000Z"
    health = service.health()
    assert health["status"] == "degraded" and "erp" in health["breakers"]
    erp_down["down"] = False
    clock.advance(14 * MIN)  # 24: prices (due at 12) and the orders slot at 20 wait, none runs
    assert not recorder.of("prices")
    assert service.history("orders", limit=100)[0]["scheduledAt"] == "2026-01-01T00:10:00.000Z"
    clock.advance(2 * MIN)  # 26: the wait is over; everything waiting runs
    assert recorder.of("prices")[0].started == 25 * MIN
    assert [e["scope"] for e in events if e["type"] == "breaker.closed"] == ["erp"]
    assert service.wait_idle(timeout=5)
    assert service.health()["status"] == "ok"
