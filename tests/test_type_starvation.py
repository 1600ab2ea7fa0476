"""No starvation across types under a budget too small for the load (the real per-agent split).

With 30 agents whose orders take 60 s each, orders alone needs 30 clock minutes of a
single lane per 10-minute slot. Every other type must still run, for every agent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, SyncService
from archibald_actors.handlers.demo_agents import agent_split, demo_agent_ids
from archibald_actors.store import MemoryStore

AGENTS = 30
MIN = 60.0
DAY = 24 * 60 * MIN
SECONDS = {"orders": 60.0, "customers": 30.0, "invoices": 30.0, "ddt": 30.0, "prices": 60.0, "products": 60.0}


@pytest.mark.parametrize("max_concurrent", [1, 2])
def test_every_type_runs_for_every_agent_while_orders_alone_would_fill_the_budget(
    max_concurrent: int,
) -> None:
    clock = ManualClock()
    table = agent_split(DEFAULT_SCHEDULE)
    store = MemoryStore()
    agents = demo_agent_ids(AGENTS)
    for agent_id in agents:
        store.put_agent(agent_id)
    done: set[tuple[str, str | None]] = set()
    lock = threading.Lock()

    def handler(seconds: float) -> Callable[[Any], Coroutine[Any, Any, None]]:
        async def handle(ctx: Any) -> None:
            await ctx.sleep(seconds)
            with lock:
                done.add((ctx.sync_type, ctx.agent_id))

        return handle

    handlers = {t: handler(SECONDS[t]) for t in table}
    with SyncService(handlers, clock=clock, schedule=table, store=store, max_concurrent=max_concurrent):
        while clock.now() < DAY:
            clock.advance(10 * MIN)
    for sync_type, entry in table.items():
        owners = agents if entry.per_agent else [None]
        missing = [a for a in owners if (sync_type, a) not in done]
        assert not missing, f"{sync_type} never ran for {len(missing)} of {len(owners)}"
