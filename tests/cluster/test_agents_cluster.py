"""Agents on a cluster: a change on one replica reaches the others through the store's announcements."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pg_server import PG_DSN

from archibald_actors import DEFAULT_SCHEDULE, ScaledClock, SyncService
from archibald_actors.store import PostgresStore

from .support import Watch

PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}


@pytest.fixture
def replica(schema: str) -> Iterator[Callable[[], tuple[SyncService, Watch]]]:
    services: list[SyncService] = []

    def make() -> tuple[SyncService, Watch]:
        service = SyncService(clock=ScaledClock(600.0), schedule=PAUSED, store=PostgresStore(PG_DSN, schema))
        watch = Watch(service)
        services.append(service)
        service.start()
        return service, watch

    yield make
    for service in services:
        service.stop(timeout=10)


def test_agent_changes_reach_the_other_replica(replica: Callable[[], tuple[SyncService, Watch]]) -> None:
    leader, leader_events = replica()
    leader_events.wait_for(lambda e: e["type"] == "leadership.changed" and e["role"] == "leader")
    leader.put_agent("mario", name="Mario")
    follower, follower_events = replica()
    assert follower.status()["role"] == "follower"
    assert follower.agents() == [{"agentId": "mario", "name": "Mario", "enabled": True}]  # read at start

    # Put on the follower: the leader hears of it within a second.
    leader_events.mark()
    follower.put_agent("anna", enabled=False)
    changed = leader_events.wait_for(lambda e: e["type"] == "agent.changed", timeout=1.0)
    assert (changed["agentId"], changed["enabled"]) == ("anna", False)
    assert [a["agentId"] for a in leader.agents()] == ["anna", "mario"]

    # Merged on the leader with what the follower stored; removed on the leader.
    follower_events.mark()
    assert leader.put_agent("anna", name="Anna", keep={"enabled"})["enabled"] is False
    follower_events.wait_for(lambda e: e["type"] == "agent.changed" and e["name"] == "Anna", timeout=1.0)
    leader.remove_agent("mario")
    follower_events.wait_for(lambda e: e["type"] == "agent.removed", timeout=1.0)
    assert follower.agents() == [{"agentId": "anna", "name": "Anna", "enabled": False}]
