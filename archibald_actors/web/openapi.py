"""The OpenAPI 3.1 document of the API, built for the prefix it is mounted at."""

from __future__ import annotations

from typing import Any

from archibald_actors.schedule import INTERVAL_RANGE, START_DELAY_RANGE, SYNC_TYPES
from archibald_actors.web.payload import HISTORY_LIMIT_MAX, MAX_BODY_BYTES

__all__ = ["build_openapi"]

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], *, closed: bool = False) -> Schema:
    """Every property required; core-built shapes stay open to additions."""
    schema: Schema = {"type": "object", "properties": properties, "required": list(properties)}
    if closed:
        schema["additionalProperties"] = False
    return schema


_TIME: Schema = {"type": "string", "format": "date-time"}
_COUNT: Schema = {"type": "integer", "minimum": 0}

_SCHEMAS: dict[str, Schema] = {
    "SyncType": {"type": "string", "enum": list(SYNC_TYPES)},
    "Trigger": {"type": "string", "enum": ["auto", "manual", "retry"]},
    "Error": _object({"success": {"const": False}, "error": {"type": "string"}}, closed=True),
    "ScheduleEntry": _object(
        {
            "interval": {"type": "number", "minimum": INTERVAL_RANGE[0], "maximum": INTERVAL_RANGE[1]},
            "startDelay": {
                "type": "number",
                "minimum": START_DELAY_RANGE[0],
                "maximum": START_DELAY_RANGE[1],
            },
            "unit": {"const": "minutes"},
            "enabled": {"type": "boolean"},
            "nextRunAt": _nullable(_TIME),
        }
    ),
    "Schedule": {
        "type": "object",
        "properties": {t: _ref("ScheduleEntry") for t in SYNC_TYPES},
        "additionalProperties": False,
    },
    "ScheduleUpdate": {
        "type": "object",
        "properties": {
            "syncType": _ref("SyncType"),
            "intervalMinutes": {"type": "number", "minimum": INTERVAL_RANGE[0], "maximum": INTERVAL_RANGE[1]},
            "startDelayMinutes": {
                "type": "number",
                "minimum": START_DELAY_RANGE[0],
                "maximum": START_DELAY_RANGE[1],
            },
            "enabled": {"type": "boolean"},
        },
        "required": ["syncType"],
        "anyOf": [{"required": [f]} for f in ("intervalMinutes", "startDelayMinutes", "enabled")],
        "additionalProperties": False,
    },
    "Run": _object(
        {
            "syncType": _ref("SyncType"),
            "trigger": _ref("Trigger"),
            "scheduledAt": _nullable(_TIME),
            "requestedAt": _TIME,
            "startedAt": _TIME,
            "finishedAt": _TIME,
            "durationMs": _COUNT,
            "outcome": {"type": "string", "enum": ["success", "failed", "timeout", "cancelled"]},
            "error": _nullable({"type": "string"}),
        }
    ),
    "RunningSync": _object(
        {
            "syncType": _ref("SyncType"),
            "trigger": _ref("Trigger"),
            "scheduledAt": _nullable(_TIME),
            "startedAt": _TIME,
        }
    ),
    "QueuedRequest": _object(
        {"syncType": _ref("SyncType"), "trigger": _ref("Trigger"), "requestedAt": _TIME}
    ),
    "TypeStatus": _object(
        {
            "state": {"type": "string", "enum": ["running", "queued", "idle"]},
            "lastRun": _nullable(_ref("Run")),
            "nextRunAt": _nullable(_TIME),
            "runs": _COUNT,
            "failures": _COUNT,
            "missed": _COUNT,
            "coalesced": _COUNT,
            "timer": {"type": "string", "enum": ["running", "restarting", "paused", "failed"]},
            "restarts": _COUNT,
        }
    ),
    "Status": _object(
        {
            "running": _nullable(_ref("RunningSync")),
            "queue": {"type": "array", "items": _ref("QueuedRequest")},
            "held": {"type": "boolean"},
            "orchestrator": {"type": "string", "enum": ["running", "restarting", "failed"]},
            "abandonedThreads": _COUNT,
            "types": {
                "type": "object",
                "properties": {t: _ref("TypeStatus") for t in SYNC_TYPES},
                "additionalProperties": False,
            },
        }
    ),
    "RunAccepted": _object({"syncType": _ref("SyncType"), "coalesced": {"type": "boolean"}}, closed=True),
    "Health": {
        "oneOf": [
            _object({"status": {"const": "ok"}}, closed=True),
            {
                "type": "object",
                "properties": {
                    "status": {"const": "degraded"},
                    "failed": {"type": "array", "items": {"type": "string"}},
                    "stale": {"type": "array", "items": {"type": "string"}},
                    "abandonedThreads": _COUNT,
                    "children": {
                        "type": "object",
                        "additionalProperties": {"enum": ["running", "restarting", "failed"]},
                    },
                    "error": {"type": "string"},
                },
                "required": ["status"],
                "additionalProperties": False,
            },
        ]
    },
}


# Optional in the contract: false once a type has not synced successfully for too long.
_SCHEMAS["TypeStatus"]["properties"]["fresh"] = {"type": "boolean"}
# Optional: this node's part in cluster mode (for example "leader" or "standby").
_SCHEMAS["Status"]["properties"]["role"] = {"type": "string"}


def _ok(schema: Schema) -> Schema:
    return _object({"success": {"const": True}, "data": schema}, closed=True)


def _json(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": ("invalid input; the message names the field", None),
    "401": ("missing, malformed, badly signed or expired token (with WWW-Authenticate: Bearer)", None),
    "403": ("a valid token whose role is not admin", None),
    "413": (f"request body past {MAX_BODY_BYTES} bytes", None),
    "503": ("the sync service is not running or is unavailable", None),
    "504": ("the actors did not answer in time", None),
}


def _operation(
    summary: str, tag: str, responses: dict[str, Schema], *, errors: tuple[str, ...], secured: bool = True
) -> Schema:
    operation: Schema = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    for code in errors:
        operation["responses"][code] = _json(_ERRORS[code][0], _ref("Error"))
    if not secured:
        operation["security"] = []
    return operation


def build_openapi(
    prefix: str = "/api/sync", *, healthz: str | None = "/healthz", metrics: str | None = "/metrics"
) -> Schema:
    """The OpenAPI 3.1 document for the API mounted at ``prefix`` (and the root routes given)."""
    p = prefix.rstrip("/")
    reads = ("401", "503", "504")
    paths: dict[str, Schema] = {
        f"{p}/schedule": {
            "get": _operation(
                "The schedule as the timers hold it",
                "schedule",
                {"200": _json("the schedule", _ok(_ref("Schedule")))},
                errors=reads,
            ),
            "post": {
                **_operation(
                    "Retune one type live (admin)",
                    "schedule",
                    {"200": _json("the schedule after the timer re-armed", _ok(_ref("Schedule")))},
                    errors=("400", "401", "403", "413", "503", "504"),
                ),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ScheduleUpdate")}},
                },
            },
        },
        f"{p}/status": {
            "get": _operation(
                "Running sync, queue, hold and per-type state",
                "status",
                {"200": _json("the status", _ok(_ref("Status")))},
                errors=reads,
            )
        },
        f"{p}/{{syncType}}/run": {
            "post": {
                **_operation(
                    "Queue a manual run",
                    "runs",
                    {"202": _json("accepted (coalesced if one was pending)", _ok(_ref("RunAccepted")))},
                    errors=("400", *reads),
                ),
                "parameters": [
                    {"name": "syncType", "in": "path", "required": True, "schema": _ref("SyncType")}
                ],
            }
        },
        f"{p}/history": {
            "get": {
                **_operation(
                    "Finished runs, newest first",
                    "runs",
                    {"200": _json("the runs", _ok({"type": "array", "items": _ref("Run")}))},
                    errors=("400", *reads),
                ),
                "parameters": [
                    {
                        "name": "syncType",
                        "in": "query",
                        "required": False,
                        "description": "one type; empty or absent means all types",
                        "allowEmptyValue": True,
                        "schema": {"anyOf": [_ref("SyncType"), {"const": ""}]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "how many runs at most; empty or absent means 100",
                        "allowEmptyValue": True,
                        "schema": {
                            "anyOf": [
                                {"type": "integer", "minimum": 1, "maximum": HISTORY_LIMIT_MAX},
                                {"const": ""},
                            ],
                            "default": 100,
                        },
                    },
                ],
            }
        },
        f"{p}/events": {
            "get": {
                **_operation(
                    "Server-Sent Events: sync.started, sync.completed, sync.failed, queue.changed, "
                    "schedule.changed, child.restarted, child.failed, hold.taken, hold.released",
                    "events",
                    {
                        "200": {
                            "description": "an event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
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
    if healthz:
        paths[healthz] = {
            "get": _operation(
                "Health of the actors",
                "meta",
                {
                    "200": _json("every actor is up", _ref("Health")),
                    "503": _json("an actor failed for good, or the service does not answer", _ref("Health")),
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
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }
