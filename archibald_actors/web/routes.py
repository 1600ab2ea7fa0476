"""The routes of the HTTP API: schedule, status, manual runs, history, events, OpenAPI
(the agents' routes are in :mod:`.agent_routes`).

Paths are relative to the prefix the API is mounted at (see :mod:`.mount`), and each
handler finds its ``SyncApi`` in ``request[API_KEY]``. Handlers reach the actors only
through the ``Bridge``; each JSON answer is ``{"success": true, "data": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from archibald_actors.web.access import check_run_allowed, requires
from archibald_actors.web.auth import PRINCIPAL_KEY
from archibald_actors.web.context import API_KEY
from archibald_actors.web.payload import (
    parse_history_query,
    parse_json,
    parse_run_request,
    parse_schedule_update,
    read_body,
)

__all__ = ["routes"]

routes = web.RouteTableDef()


def encode_ok(data: Any) -> bytes:
    """The JSON bytes of ``{"success": true, "data": data}``."""
    return json.dumps({"success": True, "data": data}).encode()


def ok(data: Any, status: int = 200) -> web.Response:
    """``{"success": true, "data": data}``."""
    return json_body(encode_ok(data), status)


def json_body(body: bytes, status: int = 200) -> web.Response:
    """A JSON response from already encoded ``body``."""
    return web.Response(body=body, status=status, content_type="application/json")


@routes.get("/schedule")
@requires("reader")
async def get_schedule(request: web.Request) -> web.Response:
    """The schedule as the timers hold it, ``nextRunAt`` included: the view the supervisor published.

    A view's rows are encoded once for as long as they hold: until its earliest next run.
    """
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    view = bridge.snapshot(service.schedule_view, "schedule")
    now = service.clock.now()
    body = bridge.encode_once(
        "schedule",
        view,
        lambda v: encode_ok(v.rows(service.clock)),
        now=now,
        until=lambda v: v.fixed_until(now),
    )
    return json_body(body)


@routes.post("/schedule")
@requires("admin")
async def post_schedule(request: web.Request) -> web.Response:
    """Retune one type live; answers the schedule once its timer re-armed."""
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    update = parse_schedule_update(parse_json(await read_body(request)), service.sync_types)
    try:
        schedule = await bridge.call(
            lambda: service.retune_future(
                update.sync_type, update.interval_minutes, update.start_delay_minutes, update.enabled
            ),
            "retune",
        )
    finally:
        bridge.invalidate()  # reads from now on must see the new timing
    return ok(schedule)


@routes.get("/status")
@requires("reader")
async def get_status(request: web.Request) -> web.Response:
    """Running sync, queue, hold, orchestrator state and per-type details."""
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    return json_body(await bridge.read_encoded("status", service.status_future, "status", encode_ok))


@routes.post("/{syncType}/run")
@requires("reader")
async def run_sync(request: web.Request) -> web.Response:
    """Queue a manual run (of one agent's job with a body ``{"agentId"}``); 202 with
    ``{"syncType", "coalesced"}``. A type the service lacks is a 400.

    An admin may run any agent's job or every agent's; an agent's token only its own.
    """
    sync_type = request.match_info["syncType"]
    api = request[API_KEY]
    service, bridge = api.service, api.bridge
    agent_id = parse_run_request(await read_body(request))
    entry = bridge.snapshot(service.schedule_view, "run").entries.get(sync_type)
    per_agent = entry is not None and entry.per_agent
    check_run_allowed(request[PRINCIPAL_KEY], agent_id, per_agent)
    try:
        accepted = await bridge.call(
            lambda: service.request_sync_future(sync_type, "manual", agent_id=agent_id), "run"
        )
    finally:
        bridge.invalidate()
    return ok(accepted, status=202)


@routes.get("/history")
@requires("reader")
async def get_history(request: web.Request) -> web.Response:
    """Finished runs, newest first by start; ``?syncType=`` and ``?agentId=`` narrow them, ``?limit=`` caps
    the count, ``?before=`` (the ``startedAt`` of the last run seen) pages back."""
    api = request[API_KEY]
    service = api.service
    query = parse_history_query(request, service.sync_types)
    body = await api.bridge.read_encoded(
        ("history", query.sync_type, query.limit, query.agent_id, query.before),
        lambda: service.history_future(
            query.sync_type, query.limit, agent_id=query.agent_id, before=query.before
        ),
        "history",
        encode_ok,
    )
    return json_body(body)


@routes.get("/events", allow_head=False)
@requires("reader", query_token=True)
async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of the service; the token may come as ``?token=``."""
    return await request[API_KEY].hub.stream(request)


@routes.get("/openapi.json")
@requires("anyone")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return web.json_response(request[API_KEY].openapi)
