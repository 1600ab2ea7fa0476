"""``RequestQueue.ordered()`` keeps its sorted order across takes, and is always the fresh sort;
``waiting_types()`` always names the types in the order of their first job in it."""

from __future__ import annotations

import random

from archibald_actors.handlers.demo_agents import PER_AGENT_TYPES, agent_split
from archibald_actors.request_queue import PendingRequest, RequestQueue


def test_ordered_and_waiting_types_match_a_fresh_sort_through_takes_merges_restores_and_drops() -> None:
    table = agent_split()
    queue = RequestQueue(table)
    draw = random.Random(5)
    for sync_type in PER_AGENT_TYPES:
        for i in range(60):
            trigger = "manual" if i % 3 else "auto"
            queue.add(sync_type, trigger, None, float(i % 7), agent_id=f"a{i}")
    steps = 0

    def run_order(r: PendingRequest) -> tuple[bool, bool, int, float, int]:
        priority = 0 if r.follow_up else table[r.sync_type].priority  # follow-ups: oldest first
        return (r.follow_up, r.trigger != "manual", -priority, r.requested_at, r.seq)

    while len(queue):
        steps += 1
        expected = sorted(queue.pending(), key=run_order)
        assert queue.ordered() == expected
        assert queue.waiting_types() == list(dict.fromkeys(r.sync_type for r in expected))
        roll = draw.random()
        if roll < 0.15:  # a lane is busy: a later job is taken
            queue.pop_next(lambda r: draw.random() < 0.3)
        elif roll < 0.25:  # a new job, or a merge into a pending one
            queue.add("orders", "manual", None, 0.5, agent_id=f"a{draw.randrange(80)}")
        elif roll < 0.26:  # a shared type's job, or a merge into it
            queue.add("prices", draw.choice(["auto", "manual"]), None, draw.random())
        elif roll < 0.3 and (taken := queue.pop_next()) is not None:
            queue.restore(taken)
        elif roll < 0.32:
            queue.drop(lambda r: r.agent_id != f"a{draw.randrange(60)}")
        elif roll < 0.34:  # a job of a type started: its waiting jobs are follow-ups now
            queue.started(draw.choice(PER_AGENT_TYPES))
        else:
            first = queue.ordered()[0]
            assert queue.pop_next() is first  # the usual case: the first in order runs
    assert steps > 240 and queue.ordered() == []
