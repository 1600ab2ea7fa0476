"""Retries per type and the service-wide breaker settings: in Python, in the TOML config, and
``service.reset_breakers`` reaching the orchestrator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from archibald_actors import (
    DEFAULT_BREAKERS,
    BlockingCallError,
    BreakerPolicy,
    InvalidValueError,
    ManualClock,
    RetryPolicy,
    ScheduleEntry,
    ServiceStateError,
    SyncService,
    UnknownSyncTypeError,
)
from archibald_actors import service as service_module
from archibald_actors.config import ConfigError, parse_config
from archibald_actors.retry import plan_retry
from archibald_actors.schedule import DEFAULT_SCHEDULE


def test_an_entry_carries_its_retry_policy() -> None:
    entry = ScheduleEntry("orders", 10.0, 0.0, 6)
    assert (entry.retries, entry.retry_backoff) == (2, (60.0, 300.0))
    assert entry.retry_policy == RetryPolicy()
    tuned = ScheduleEntry("orders", 10.0, 0.0, 6, retries=3, retry_backoff=[30, 60, 120])  # type: ignore[arg-type]
    assert tuned.retry_backoff == (30.0, 60.0, 120.0)  # a list is kept as a tuple: the entry stays hashable
    assert hash(tuned) == hash(replace(tuned))
    # The policy is what plan_retry takes: the third retry waits 120 s.
    assert plan_retry("failed", 3, 1000.0, None, tuned.retry_policy) == (1120.0, 4)
    assert plan_retry("failed", 3, 1000.0, None, entry.retry_policy) is None  # two retries by default


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"retries": -1}, "retries", "at least 0"),
        ({"retries": True}, "retries", "whole number"),
        ({"retries": 1.5}, "retries", "whole number"),
        ({"retry_backoff": []}, "retryBackoff", "an empty list"),
        ({"retry_backoff": [30, 0]}, "retryBackoff", "item 2 is 0"),
        ({"retry_backoff": [30, float("inf")]}, "retryBackoff", "item 2"),
        ({"retry_backoff": "60"}, "retryBackoff", "non-empty list"),
    ],
)
def test_bad_retry_fields_are_refused_by_name(changes: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        replace(DEFAULT_SCHEDULE["orders"], **changes)
    assert caught.value.field == field and words in str(caught.value)


def test_the_config_sets_retries_per_type_and_the_breakers() -> None:
    text = """
[sync.orders]
retries = 3
retry_backoff = [30, 60, 120]

[sync.prices]
retries = 0

[breakers]
failures = 4
cooldown_seconds = 600
erp_lanes = 7
"""
    config = parse_config(text, clock=ManualClock())
    orders, prices = config.schedule["orders"], config.schedule["prices"]
    assert (orders.retries, orders.retry_backoff, orders.interval_minutes) == (3, (30.0, 60.0, 120.0), 10.0)
    assert (prices.retries, prices.retry_backoff) == (0, (60.0, 300.0))
    assert config.schedule["ddt"].retry_policy == RetryPolicy()  # left out: the defaults
    assert config.breakers == BreakerPolicy(breaker_failures=4, breaker_cooldown=600.0, erp_breaker_lanes=7)
    assert parse_config("", clock=ManualClock()).breakers == DEFAULT_BREAKERS
    only_one = parse_config("[breakers]\nfailures = 5\n", clock=ManualClock()).breakers
    assert only_one == replace(DEFAULT_BREAKERS, breaker_failures=5)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("[sync.orders]\nretries = -1\n", 2, "sync.orders.retries", "at least 0"),
        ("[sync.orders]\nretries = 1.0\n", 2, "sync.orders.retries", "whole number"),
        ("[sync.orders]\nretry_backoff = [30, 0]\n", 2, "sync.orders.retry_backoff", "item 2 is 0"),
        ("[sync.orders]\nretry_backoff = []\n", 2, "sync.orders.retry_backoff", "empty list"),
        ("[sync.orders]\n\nretry_backoff = 60\n", 3, "sync.orders.retry_backoff", "got 60"),
        ("[breakers]\nfailures = 0\n", 2, "breakers.failures", "at least 1"),
        ("[breakers]\ncooldown_seconds = -5\n", 2, "breakers.cooldown_seconds", "-5"),
        ("[breakers]\nerp_lanes = 2.5\n", 2, "breakers.erp_lanes", "whole number"),
        ("[breakers]\nlanes = 5\n", 2, "breakers.lanes", "expected one of failures, cooldown_seconds"),
        ("breakers = 3\n", 1, "breakers", "must be a table"),
        ("[breaker]\nfailures = 3\n", 1, "breaker", "[breakers]"),
    ],
)
def test_config_errors_name_line_and_field(text: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path="sync.toml", clock=ManualClock())
    assert (caught.value.line, caught.value.field) == (line, field)
    assert words in str(caught.value) and str(caught.value).startswith(f"sync.toml:{line}: {field} ")


def test_the_service_keeps_its_breaker_policy() -> None:
    assert SyncService(clock=ManualClock()).breaker_policy == DEFAULT_BREAKERS
    policy = BreakerPolicy(breaker_failures=5)
    assert SyncService(clock=ManualClock(), breakers=policy).breaker_policy is policy
    with pytest.raises(InvalidValueError) as caught:
        SyncService(clock=ManualClock(), breakers={"breaker_failures": 5})  # type: ignore[arg-type]
    assert caught.value.field == "breakers"


def test_the_actors_are_given_the_breaker_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[BreakerPolicy] = []
    real = service_module.start_actors

    def recording(**kwargs: Any) -> Any:
        given.append(kwargs["breaker_policy"])
        return real(**kwargs)

    monkeypatch.setattr(service_module, "start_actors", recording)
    policy = BreakerPolicy(breaker_failures=7)
    service = SyncService(clock=ManualClock(), breakers=policy)
    service.start()
    try:
        # The orchestrator is the actor the reset talks to: it answers a count.
        assert service.reset_breakers() == 0
        assert service.reset_breakers("orders", "mario") == 0
        assert given == [policy]
    finally:
        service.stop(5.0)


def test_reset_breakers_checks_its_arguments_before_sending() -> None:
    service = SyncService(clock=ManualClock(), schedule={"orders": DEFAULT_SCHEDULE["orders"]})
    with pytest.raises(ServiceStateError):
        service.reset_breakers()
    service.start()
    try:
        with pytest.raises(UnknownSyncTypeError):
            service.reset_breakers("prices")  # a default type this service lacks
        with pytest.raises(InvalidValueError) as caught:
            service.reset_breakers(agent_id="a b")
        assert caught.value.field == "agentId"
        with pytest.raises(InvalidValueError):
            service.reset_breakers_future(agent_id="")

        async def on_the_loop() -> int:
            with pytest.raises(BlockingCallError) as blocked:
                service.reset_breakers()
            assert "reset_breakers_future" in str(blocked.value)
            return await asyncio.wrap_future(service.reset_breakers_future("orders"))

        assert asyncio.run(on_the_loop()) == 0
    finally:
        service.stop(5.0)
