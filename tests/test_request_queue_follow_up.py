"""A follow-up ranks last only while its own job runs: merged with a later request, it is an ordinary job."""

from __future__ import annotations

from archibald_actors.handlers.demo_agents import agent_split
from archibald_actors.request_queue import RequestQueue


def test_a_follow_up_merged_with_a_request_made_while_its_key_is_idle_ranks_as_an_ordinary_job() -> None:
    queue = RequestQueue(agent_split())
    late = ("orders", "agent-002")
    # Slot 1: agent-002's orders still runs, so its job is a follow-up behind agent-001's.
    queue.add("orders", "auto", 600.0, 600.0, running={late}, agent_id="agent-002")
    queue.add("orders", "auto", 600.0, 600.0, agent_id="agent-001")
    assert [r.agent_id for r in queue.ordered()] == ["agent-001", "agent-002"]
    assert queue.get(late) is not None and queue.get(late).follow_up  # type: ignore[union-attr]
    assert queue.pop_next() is not None  # agent-001 starts; agent-002's job keeps waiting
    # Slot 2: agent-002's earlier job has ended; fresh jobs of other agents arrive.
    coalesced = queue.add("orders", "auto", 1200.0, 1200.0, agent_id="agent-002")
    queue.add("orders", "auto", 1200.0, 1200.0, agent_id="agent-003")
    assert coalesced
    # No longer a follow-up, and the oldest: it runs first instead of waiting for good.
    assert [r.agent_id for r in queue.ordered()] == ["agent-002", "agent-003"]


def test_a_follow_up_merged_while_its_key_still_runs_stays_one() -> None:
    queue = RequestQueue(agent_split())
    busy = ("products", None)  # a shared type, whose long run is still going
    queue.add("products", "auto", 0.0, 0.0, running={busy})
    queue.add("products", "auto", 5400.0, 5400.0, running={busy})
    queue.add("prices", "auto", 1800.0, 1800.0)  # lower priority, but not a follow-up
    assert [(r.sync_type, r.follow_up) for r in queue.ordered()] == [("prices", False), ("products", True)]
