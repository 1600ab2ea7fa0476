"""The agents' routes: list, read, add or change, remove; and the admin's reset of the
circuit breakers (per type and agent).

Any valid token reads the agents, except that a token of role ``agent`` sees only its own
agent (the one whose id is its ``userId``/``sub``); only an admin changes them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from archibald_actors.web.access import only_own_agent, requires
from archibald_actors.web.auth import AGENT, PRINCIPAL_KEY
from archibald_actors.web.context import API_KEY
from archibald_actors.web.payload import parse_agent_update, parse_breaker_reset, read_body
from archibald_actors.web.routes import ok

__all__ = ["agent_routes"]

agent_routes = web.RouteTableDef()


@agent_routes.get("/agents")
@requires("reader")
async def get_agents(request: web.Request) -> web.Response:
    """Every agent in id order; an agent's token gets only its own (or none)."""
    api = request[API_KEY]
    service = api.service
    agents: list[dict[str, Any]] = await api.bridge.read("agents", service.agents_future, "agents")
    principal = request[PRINCIPAL_KEY]
    if principal.role == AGENT:
        agents = [a for a in agents if a["agentId"] == principal.user_id]
    return ok(agents)


@agent_routes.get("/agents/{agentId}")
@requires("reader")
async def get_agent(request: web.Request) -> web.Response:
    """One agent with, per type, its last run, next run, freshness and breaker; 404 if unknown."""
    agent_id = request.match_info["agentId"]
    only_own_agent(request[PRINCIPAL_KEY], agent_id)
    api = request[API_KEY]
    service = api.service
    return ok(await api.bridge.call(lambda: service.agent_future(agent_id), "agent"))


@agent_routes.put("/agents/{agentId}")
@requires("admin")
async def put_agent(request: web.Request) -> web.Response:
    """Add an agent or change it: the fields the body leaves out keep their stored value."""
    agent_id = request.match_info["agentId"]
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    change = parse_agent_update(await read_body(request))
    try:
        agent = await bridge.call(
            lambda: service.put_agent_future(agent_id, change.name, change.enabled, keep=change.keep),
            "put agent",
        )
    finally:
        bridge.invalidate()  # reads from now on must see the change
    return ok(agent)


@agent_routes.delete("/agents/{agentId}")
@requires("admin")
async def delete_agent(request: web.Request) -> web.Response:
    """Remove an agent and its pending jobs (never its runs); 404 if unknown."""
    agent_id = request.match_info["agentId"]
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    try:
        removed = await bridge.call(lambda: service.remove_agent_future(agent_id), "remove agent")
    finally:
        bridge.invalidate()
    return ok(removed)


@agent_routes.post("/breakers/reset")
@requires("admin")
async def reset_breakers(request: web.Request) -> web.Response:
    """Close circuit breakers early: of one type, one agent, one pair, or (empty body) all of
    them, the ERP-wide one too; answers ``{"reset": n}``, the count closed."""
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    scope = parse_breaker_reset(await read_body(request), service.sync_types)
    try:
        count = await bridge.call(
            lambda: service.reset_breakers_future(scope.sync_type, scope.agent_id), "reset breakers"
        )
    finally:
        bridge.invalidate()  # the status read next must show the breakers closed
    return ok({"reset": count})
