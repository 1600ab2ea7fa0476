"""``serve --demo-agents N`` as a real process: agents listed, per-agent runs, a needs-login agent skipped."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import call, launch_serve, stop

from archibald_actors import ManualClock, SyncService
from archibald_actors.handlers.demo_agents import (
    PER_AGENT_TYPES,
    DemoAgents,
    agent_split,
    demo_agent_ids,
)
from archibald_actors.serve import _add_demo_agents
from archibald_actors.web.auth import make_token

#: Real seconds the test waits for the runs it needs (at 2000x, an orders slot every 0.3 s).
RUN_TIMEOUT = 60.0


def read_run_ends(url: str, token: str, enough: Any, timeout: float) -> list[dict[str, Any]]:
    """Run-end events from the SSE stream at ``url`` until ``enough(events)`` holds."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(request, timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if event.get("type", "").startswith("sync.") and "outcome" in event:
                    events.append(event)
                if enough(events):
                    return events
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"not enough runs in {timeout} s: {events}")


@pytest.fixture
def server(tmp_path: Path, jwt_secret: str) -> Iterator[tuple[str, str]]:
    args = ["--port", "0", "--db", str(tmp_path / "sync.db"), "--speed", "2000", "--demo-agents", "5"]
    args += ["--seed", "0", "--max-concurrent", "4"]
    proc, lines, base = launch_serve(args, secret=jwt_secret, stderr_path=tmp_path / "serve.stderr")
    try:
        assert any(line.startswith("demo agents: 5 (agent-001 to agent-005)") for line in lines.seen)
        yield base, make_token(jwt_secret, role="admin", sub="admin", ttl=600)
    finally:
        stop(proc)


def test_demo_agents_are_created_with_the_real_split(server: tuple[str, str]) -> None:
    base, token = server
    status, body = call("GET", f"{base}/api/sync/agents", token)
    assert status == 200
    assert [a["agentId"] for a in body["data"]] == demo_agent_ids(5)
    assert all(a["name"] and a["enabled"] for a in body["data"])
    types = call("GET", f"{base}/api/sync/status", token)[1]["data"]["types"]
    per_agent = {t for t, e in agent_split().items() if e.per_agent}
    assert per_agent == set(PER_AGENT_TYPES)
    # A per-agent type's status counts its agents; a shared one's has none.
    assert {t for t, entry in types.items() if entry["agents"] is not None} == per_agent
    assert types["orders"]["agents"]["total"] == 5


def test_per_agent_runs_and_a_needs_login_agent_skipped(server: tuple[str, str]) -> None:
    base, token = server
    demo = DemoAgents(5, seed=0)  # the server's choice, by the same seed
    (locked,) = demo.needs_login
    healthy = sorted(set(demo.ids) - demo.needs_login - demo.flaky)

    def enough(events: list[dict[str, Any]]) -> bool:
        done = {e["agentId"] for e in events if e["syncType"] == "orders" and e["outcome"] == "success"}
        skipped = any(e.get("agentId") == locked and e["outcome"] == "skipped" for e in events)
        return skipped and set(healthy) <= done

    read_run_ends(f"{base}/api/sync/events", token, enough, RUN_TIMEOUT)

    status, body = call("GET", f"{base}/api/sync/history?agentId={locked}&limit=20", token)
    assert status == 200 and body["data"]
    assert {run["outcome"] for run in body["data"]} == {"skipped"}
    assert all(run["agentId"] == locked and "log in" in run["reason"] for run in body["data"])
    assert {run["syncType"] for run in body["data"]} <= set(PER_AGENT_TYPES)

    status, body = call("GET", f"{base}/api/sync/history?agentId={healthy[0]}&syncType=orders", token)
    assert status == 200
    assert any(run["outcome"] == "success" and run["agentId"] == healthy[0] for run in body["data"])
    status_body = call("GET", f"{base}/api/sync/status", token)[1]["data"]
    counts = status_body["types"]["orders"]["agents"]
    assert counts["total"] == 5 and counts["skipped"] >= 1


def test_choice_of_flawed_agents_follows_the_seed() -> None:
    a, b = DemoAgents(100, seed=7), DemoAgents(100, seed=7)
    assert (a.needs_login, a.flaky) == (b.needs_login, b.flaky)
    assert len(a.needs_login) == len(a.flaky) == 5 and not a.needs_login & a.flaky
    assert DemoAgents(100, seed=8).needs_login != a.needs_login
    assert not DemoAgents(100, flawed=False).needs_login | DemoAgents(100, flawed=False).flaky
    assert demo_agent_ids(1000)[:2] == ["agent-0001", "agent-0002"]
    with pytest.raises(ValueError, match="count"):
        DemoAgents(1001)


def test_agents_already_stored_are_kept() -> None:
    service = SyncService(clock=ManualClock(), schedule=agent_split())
    service.start()
    try:
        service.put_agent("agent-002", "Kept", enabled=False)
        _add_demo_agents(service, DemoAgents(3))
        agents = {a["agentId"]: a for a in service.agents()}
        assert sorted(agents) == demo_agent_ids(3)
        assert agents["agent-002"] == {"agentId": "agent-002", "name": "Kept", "enabled": False}
        assert agents["agent-001"]["name"] and agents["agent-003"]["enabled"]
    finally:
        service.stop()
