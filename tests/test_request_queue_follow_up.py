"""Follow-ups by type: a request whose type ran since it arrived waits behind those whose type did not.

While one agent's job of a per-agent type runs, the other agents' jobs of that type are
follow-ups too, so a type with more jobs than the budget has lanes cannot keep the others
out. Merged with a request that arrives while its type no longer runs, a follow-up is an
ordinary job again.
"""

from __future__ import annotations

from archibald_actors.handlers.demo_agents import agent_split
from archibald_actors.request_queue import RequestQueue


def test_while_one_agents_job_runs_another_agents_job_of_that_type_ranks_after_other_types() -> None:
    queue = RequestQueue(agent_split())
    # agent-A's orders job runs: agent-B's orders job (priority 6) is a follow-up ...
    queue.add("orders", "auto", 600.0, 600.0, running_types={"orders"}, agent_id="agent-B")
    # ... and a customers job (priority 5), queued later, is not one: it runs first.
    queue.add("customers", "auto", 900.0, 900.0, running_types={"orders"}, agent_id="agent-C")
    assert [(r.sync_type, r.agent_id, r.follow_up) for r in queue.ordered()] == [
        ("customers", "agent-C", False),
        ("orders", "agent-B", True),
    ]
    first = queue.pop_next()
    assert first is not None and first.sync_type == "customers"


def test_a_start_of_its_type_makes_the_other_waiting_jobs_of_the_type_follow_ups() -> None:
    queue = RequestQueue(agent_split())
    for agent in ("agent-1", "agent-2", "agent-3"):  # a fan-out, queued while orders is idle
        queue.add("orders", "auto", 0.0, 0.0, agent_id=agent)
    queue.add("prices", "auto", 0.0, 1.0)  # priority 1, the lowest
    taken = queue.pop_next()
    assert taken is not None and taken.agent_id == "agent-1"
    queue.started("orders")  # agent-1's orders runs: the type had its turn
    assert [(r.sync_type, r.agent_id) for r in queue.ordered()] == [
        ("prices", None),
        ("orders", "agent-2"),
        ("orders", "agent-3"),
    ]


def test_follow_ups_run_oldest_first_whatever_their_priority() -> None:
    queue = RequestQueue(agent_split())
    queue.add("ddt", "auto", 0.0, 0.0, running_types={"ddt"}, agent_id="agent-1")  # priority 4
    queue.add("orders", "auto", 600.0, 600.0, running_types={"orders"}, agent_id="agent-1")  # 6
    assert [r.sync_type for r in queue.ordered()] == ["ddt", "orders"]


def test_a_follow_up_merged_with_a_request_made_while_its_type_is_idle_ranks_as_an_ordinary_job() -> None:
    queue = RequestQueue(agent_split())
    # Slot 1: orders runs (some agent's job), so agent-002's job is a follow-up behind prices.
    queue.add("orders", "auto", 600.0, 600.0, running_types={"orders"}, agent_id="agent-002")
    queue.add("prices", "auto", 600.0, 600.0)
    assert [(r.sync_type, r.follow_up) for r in queue.ordered()] == [("prices", False), ("orders", True)]
    # Slot 2: no orders job runs any more when the next request for agent-002 comes.
    coalesced = queue.add("orders", "auto", 1200.0, 1200.0, agent_id="agent-002")
    queue.add("orders", "auto", 1200.0, 1200.0, agent_id="agent-003")
    assert coalesced
    # No longer a follow-up, the higher priority, and agent-002's the oldest: it runs first.
    assert [(r.sync_type, r.agent_id) for r in queue.ordered()] == [
        ("orders", "agent-002"),
        ("orders", "agent-003"),
        ("prices", None),
    ]


def test_a_follow_up_merged_while_its_type_still_runs_stays_one() -> None:
    queue = RequestQueue(agent_split())
    busy = {"products"}  # a shared type, whose long run is still going
    queue.add("products", "auto", 0.0, 0.0, running_types=busy)
    queue.add("products", "auto", 5400.0, 5400.0, running_types=busy)
    queue.add("prices", "auto", 1800.0, 1800.0)  # lower priority, but not a follow-up
    assert [(r.sync_type, r.follow_up) for r in queue.ordered()] == [("prices", False), ("products", True)]
