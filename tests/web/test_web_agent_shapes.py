"""Over HTTP: a status with per-agent jobs, progress, agent counts and open breakers, and a
health turned degraded by the ERP-wide breaker, match the OpenAPI document."""

from __future__ import annotations

import asyncio
from typing import Any

from agent_support import per_agent_schedule, set_agents

from archibald_actors.breaker import BreakerPolicy

from .conftest import MakeApi
from .test_web_run_ends import validate

AGENTS = ("a1", "a2", "a3")


async def test_agent_status_and_breaker_health_match_the_document(make_api: MakeApi) -> None:
    erp_down = {"down": False}

    def orders(ctx: Any) -> dict[str, int]:
        if ctx.agent_id == "a1" or erp_down["down"]:
            raise RuntimeError("login refused")
        ctx.progress(3, 10, "rows")
        ctx.sleep(30)
        return {"rows": 10}

    policy = BreakerPolicy(breaker_failures=1, erp_breaker_lanes=2)
    api = await make_api(
        handlers={"orders": orders},
        schedule=per_agent_schedule("orders", enabled=(), retries=0),
        max_concurrent=2,
        breakers=policy,
    )
    await asyncio.to_thread(set_agents, api.service, api.clock, *AGENTS)
    status, body = await api.post("/orders/run")
    assert status == 202
    await api.advance(1)
    status, body = await api.get("/status")
    assert status == 200
    data = body["data"]
    validate("Status", data)
    assert {j["agentId"] for j in data["jobs"]} == {"a2", "a3"}
    assert data["jobs"][0]["progress"]["percentage"] == 30.0
    assert data["types"]["orders"]["agents"]["failed"] == 1
    assert data["breakers"]["pairs"][0]["state"] == "open"
    status, health = await api.call("GET", "/healthz", role=None)
    assert (status, health) == (200, {"status": "ok"})  # one agent's pair: in the status, not a 503
    # Now a2 and a3 fail too: failures on two lanes hold every job (the ERP-wide breaker).
    await api.advance(60)
    erp_down["down"] = True
    assert (await api.post("/orders/run"))[0] == 202
    await api.advance(1)
    status, body = await api.get("/status")
    validate("Status", body["data"])
    assert body["data"]["breakers"]["erp"]["state"] == "open"
    status, health = await api.call("GET", "/healthz", role=None)
    assert status == 503 and health["breakers"][0] == "erp"
    validate("HealthDegraded", health)
