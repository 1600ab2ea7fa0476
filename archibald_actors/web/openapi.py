"""The OpenAPI 3.1 document of the API, built for the prefix it is mounted at."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from archibald_actors.agent import AGENT_ID_PATTERN
from archibald_actors.schedule import SYNC_TYPES
from archibald_actors.web.agent_shapes import (
    AGENT_ANSWER_MODELS,
    AgentUpdate,
    BreakerResetRequest,
    RunRequest,
)
from archibald_actors.web.payload import MAX_BODY_BYTES, history_limit_max
from archibald_actors.web.plan_openapi import planning_paths
from archibald_actors.web.plan_shapes import PLANNING_MODELS
from archibald_actors.web.shapes import (
    ANSWER_MODELS,
    SERVICE_REF,
    UPDATE_FIELDS,
    ScheduleUpdate,
    ref,
)

__all__ = ["build_openapi", "component_schemas"]

Schema = dict[str, Any]
#: Keys pydantic writes that say nothing to a client: a title per field, and the
#: placeholder default of a key an answer may leave out (it is absent, never null).
_NOISE = frozenset({"title", "default"})


def _clean(schema: Any) -> Any:
    """The schema without ``_NOISE``, its per-service references made real."""
    if isinstance(schema, dict) and SERVICE_REF in schema:
        return {**ref(schema[SERVICE_REF]), **_clean({k: v for k, v in schema.items() if k != SERVICE_REF})}
    if isinstance(schema, dict):
        return {
            k: (_clean(v) if k != "properties" else {p: _clean(s) for p, s in v.items()})
            for k, v in schema.items()
            if k not in _NOISE
        }
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    return schema


@cache
def _model_schemas() -> dict[str, Schema]:
    """The schemas generated from the models of :mod:`.shapes` (the same for every service)."""
    shapes: list[type[BaseModel]] = [
        ScheduleUpdate,
        AgentUpdate,
        RunRequest,
        BreakerResetRequest,
        *ANSWER_MODELS,
        *AGENT_ANSWER_MODELS,
        *PLANNING_MODELS,
    ]
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "validation") for model in shapes]
    _, document = models_json_schema(models, by_alias=True, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Schema] = _clean(document["$defs"])
    # "at least one of" is the model's own check (a validator), stated here for clients.
    schemas["ScheduleUpdate"]["anyOf"] = [{"required": [f]} for f in UPDATE_FIELDS]
    return schemas


def component_schemas(sync_types: Iterable[str] = SYNC_TYPES) -> dict[str, Schema]:
    """Every schema of the document for a service with ``sync_types``."""
    types = list(sync_types)

    def per_type(name: str) -> Schema:
        return {
            "type": "object",
            "properties": {t: ref(name) for t in types},
            "required": types,
            "additionalProperties": False,
        }

    return {
        **copy.deepcopy(_model_schemas()),  # each document its own: a caller may edit it
        "SyncType": {"type": "string", "enum": types},
        "Schedule": per_type("ScheduleRow"),
        "TypeStatuses": per_type("TypeStatus"),
    }


def _ok(schema: Schema) -> Schema:
    """``{"success": true, "data": schema}``."""
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "data": schema},
        "required": ["success", "data"],
        "additionalProperties": False,
    }


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": "invalid input; the message names the field",
    "401": "missing, malformed, badly signed or expired token (with WWW-Authenticate: Bearer)",
    "403": "a valid token that may not do this: not an admin, or an agent's token asking about another agent",
    "404": "no agent has that id",
    "413": f"request body past {MAX_BODY_BYTES} bytes",
    "503": "the sync service is not running or is unavailable",
    "504": "the actors did not answer in time",
}


def _operation(
    summary: str, tag: str, responses: dict[str, Schema], *, errors: tuple[str, ...], secured: bool = True
) -> Schema:
    operation: Schema = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    for code in errors:
        operation["responses"][code] = _json(_ERRORS[code], ref("ErrorBody"))
    if not secured:
        operation["security"] = []
    return operation


#: An agent id as a path or query parameter.
_AGENT_ID = {"type": "string", "pattern": f"^{AGENT_ID_PATTERN.pattern}$"}


def _agent_paths(p: str, reads: tuple[str, ...]) -> dict[str, Schema]:
    """The agents' paths (and the breakers' reset) under prefix ``p``."""
    agent_id = [{"name": "agentId", "in": "path", "required": True, "schema": _AGENT_ID}]
    return {
        f"{p}/agents": {
            "get": _operation(
                "Every agent in id order (an agent's token: only its own)",
                "agents",
                {"200": _json("the agents", _ok({"type": "array", "items": ref("Agent")}))},
                errors=reads,
            )
        },
        f"{p}/agents/{{agentId}}": {
            "get": {
                **_operation(
                    "One agent's state per type: last run, next run, freshness, breaker",
                    "agents",
                    {"200": _json("the agent", _ok(ref("AgentDetail")))},
                    errors=("400", "403", "404", *reads),
                ),
                "parameters": agent_id,
            },
            "put": {
                **_operation(
                    "Add or change an agent (admin); fields left out keep their stored value",
                    "agents",
                    {"200": _json("the agent as stored", _ok(ref("Agent")))},
                    errors=("400", "401", "403", "413", "503", "504"),
                ),
                "parameters": agent_id,
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": ref("AgentUpdate")}},
                },
            },
            "delete": {
                **_operation(
                    "Remove an agent and its pending jobs, never its runs (admin)",
                    "agents",
                    {"200": _json("the agent was removed", _ok(ref("AgentRemoved")))},
                    errors=("400", "401", "403", "404", "503", "504"),
                ),
                "parameters": agent_id,
            },
        },
        f"{p}/breakers/reset": {
            "post": {
                **_operation(
                    "Close circuit breakers early (admin): of a type, an agent, a pair, or all",
                    "agents",
                    {"200": _json("how many breakers were closed", _ok(ref("BreakerReset")))},
                    errors=("400", "401", "403", "413", "503", "504"),
                ),
                "requestBody": {
                    "required": False,
                    "description": "left out or {}: every breaker, the ERP-wide one too",
                    "content": {"application/json": {"schema": ref("BreakerResetRequest")}},
                },
            }
        },
    }


def build_openapi(
    prefix: str = "/api/sync",
    *,
    healthz: str | None = "/healthz",
    metrics: str | None = "/metrics",
    sync_types: Iterable[str] = SYNC_TYPES,
) -> Schema:
    """The OpenAPI 3.1 document for the API mounted at ``prefix`` (and the root routes given).

    Args:
        prefix: where the API is mounted.
        healthz: the path of the health route, None if it is not mounted.
        metrics: the path of the metrics route, None if it is not mounted.
        sync_types: the service's types (the enums and the per-type objects list them).
    """
    p = prefix.rstrip("/")
    types = tuple(sync_types)
    reads = ("401", "503", "504")
    paths: dict[str, Schema] = {
        f"{p}/schedule": {
            "get": _operation(
                "The schedule as the timers hold it",
                "schedule",
                {"200": _json("the schedule", _ok(ref("Schedule")))},
                errors=reads,
            ),
            "post": {
                **_operation(
                    "Retune one type live (admin)",
                    "schedule",
                    {"200": _json("the schedule after the timer re-armed", _ok(ref("Schedule")))},
                    errors=("400", "401", "403", "413", "503", "504"),
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("ScheduleUpdate")}},
                },
            },
        },
        f"{p}/status": {
            "get": _operation(
                "Running sync, queue, hold and per-type state",
                "status",
                {"200": _json("the status", _ok(ref("Status")))},
                errors=reads,
            )
        },
        f"{p}/{{syncType}}/run": {
            "post": {
                **_operation(
                    "Queue a manual run",
                    "runs",
                    {"202": _json("accepted (coalesced if one was pending)", _ok(ref("RunAccepted")))},
                    errors=("400", "403", "404", "413", *reads),
                ),
                "parameters": [
                    {"name": "syncType", "in": "path", "required": True, "schema": ref("SyncType")}
                ],
                "requestBody": {
                    "required": False,
                    "description": "one agent's job; without it every agent's (admin only, per-agent types)",
                    "content": {"application/json": {"schema": ref("RunRequest")}},
                },
            }
        },
        f"{p}/history": {
            "get": {
                **_operation(
                    "Finished runs, newest first by start",
                    "runs",
                    {"200": _json("the runs", _ok({"type": "array", "items": ref("Run")}))},
                    errors=("400", *reads),
                ),
                "parameters": [
                    {
                        "name": "syncType",
                        "in": "query",
                        "required": False,
                        "description": "one type; empty or absent means all types",
                        "allowEmptyValue": True,
                        "schema": {"anyOf": [ref("SyncType"), {"const": ""}]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "how many runs at most; empty or absent means 100",
                        "allowEmptyValue": True,
                        "schema": {
                            "anyOf": [
                                {"type": "integer", "minimum": 1, "maximum": history_limit_max(types)},
                                {"const": ""},
                            ],
                            "default": 100,
                        },
                    },
                    {
                        "name": "agentId",
                        "in": "query",
                        "required": False,
                        "description": "one agent's runs; empty or absent means every run",
                        "allowEmptyValue": True,
                        "schema": {"anyOf": [_AGENT_ID, {"const": ""}]},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "required": False,
                        "description": "only runs that started before it: the startedAt of the last run seen",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                ],
            }
        },
        **_agent_paths(p, reads),
        f"{p}/events": {
            "get": {
                **_operation(
                    "Server-Sent Events: each message's event is an Event's type, its data the Event",
                    "events",
                    {
                        "200": {
                            "description": "an event stream",
                            "content": {
                                "text/event-stream": {
                                    "schema": {"type": "string", "description": "see the Event schema"}
                                }
                            },
                        }
                    },
                    errors=("401",),
                ),
                "security": [{"bearer": []}, {"queryToken": []}],
            }
        },
        f"{p}/openapi.json": {
            "get": _operation(
                "This document",
                "meta",
                {"200": _json("the OpenAPI document", {"type": "object"})},
                errors=(),
                secured=False,
            )
        },
    }
    paths.update(planning_paths(p, _operation, _json, _ok))
    if healthz:
        paths[healthz] = {
            "get": _operation(
                "Health of the actors",
                "meta",
                {
                    "200": _json("every actor is up", ref("HealthOk")),
                    "503": _json(
                        "an actor failed for good, a type is stale or failing, the store is unavailable, "
                        "or the service does not answer",
                        ref("HealthDegraded"),
                    ),
                },
                errors=(),
                secured=False,
            )
        }
    if metrics:
        paths[metrics] = {
            "get": _operation(
                "Prometheus metrics",
                "meta",
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                errors=(),
                secured=False,
            )
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "archibald-sync",
            "version": "1.0.0",
            "description": "Staggered, serialized, supervised ERP syncs: schedule, status, runs and events.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": component_schemas(types),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }
