"""Reading and validating what clients send: bounded JSON bodies, the retune, agent and run
bodies, query strings.

Every bad input becomes a 400 (413 for an oversized body) whose message names the field;
nothing a client sends can cause a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from archibald_actors.agent import AGENT_ID_PATTERN
from archibald_actors.schedule import SYNC_TYPES
from archibald_actors.validation import JsonNumber, first_error, show
from archibald_actors.web.agent_shapes import (
    AGENT_FIELDS,
    AgentUpdate,
    BreakerResetRequest,
    RunRequest,
)
from archibald_actors.web.error import ApiError
from archibald_actors.web.shapes import (
    SYNC_TYPES_CONTEXT,
    UPDATE_FIELDS,
    ScheduleUpdate,
)

__all__ = [
    "MAX_BODY_BYTES",
    "AgentChange",
    "BreakerScope",
    "HistoryQuery",
    "ScheduleChange",
    "history_limit_max",
    "parse_agent_update",
    "parse_breaker_reset",
    "parse_history_query",
    "parse_json",
    "parse_run_request",
    "parse_schedule_update",
    "read_body",
]

M = TypeVar("M", bound=BaseModel)

#: Largest request body accepted.
MAX_BODY_BYTES = 64 * 1024
#: Runs kept per type in memory (the default ``limit`` of GET /history).
RUNS_PER_TYPE = 100


def history_limit_max(sync_types: Sequence[str]) -> int:
    """Largest ``limit`` of GET /history for a service with ``sync_types`` (100 runs kept per type)."""
    return RUNS_PER_TYPE * len(sync_types)


def _bad(message: str) -> NoReturn:
    raise ApiError(400, message)


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read from the stream so the limit holds whatever the host's ``client_max_size``.

    Raises:
        ApiError: 413 past ``limit`` bytes.
    """
    too_large = ApiError(413, f"request body too large: at most {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)


def _finite_float(text: str) -> float | JsonNumber:
    value = float(text)
    return value if math.isfinite(value) else JsonNumber(text)


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8; ``NaN``, ``Infinity`` and numbers that overflow to infinity stay ``JsonNumber``.

    No JSON value is ever a non-finite float: the field such a number was sent in refuses
    it by name when the body is validated.

    Raises:
        ApiError: 400 naming the problem.
    """
    if not raw.strip():
        _bad("body: a JSON object is required")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=JsonNumber, parse_float=_finite_float)
    except UnicodeDecodeError:
        _bad("body: must be UTF-8 encoded JSON")
    except RecursionError:
        _bad("body: JSON nested too deeply")
    except ValueError as exc:  # JSONDecodeError, int() digit limits
        _bad(f"body: invalid JSON: {exc}")


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """A validated POST /schedule body (None: leave that field as it is)."""

    sync_type: str
    interval_minutes: float | None = None
    start_delay_minutes: float | None = None
    enabled: bool | None = None


def _validate(model: type[M], body: object, fields: str, context: dict[str, Any] | None = None) -> M:
    """``body`` validated as ``model``; ``fields`` lists the known fields for an unknown one's 400."""
    if not isinstance(body, dict):
        _bad("body must be a JSON object")
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        field, problem, kind = first_error(exc.errors(), model)
        if kind == "extra_forbidden":
            _bad(f"{show(field)} is not a known field; expected {fields}")
        _bad(f"{field} {problem}" if field else problem)


def parse_schedule_update(body: object, sync_types: Sequence[str] = SYNC_TYPES) -> ScheduleChange:
    """Validate a POST /schedule body against the model ``ScheduleUpdate``.

    Args:
        body: the decoded JSON body.
        sync_types: the service's types; ``syncType`` must be one of them.

    Raises:
        ApiError: 400 naming the first bad field.
    """
    fields = f"syncType, {', '.join(UPDATE_FIELDS)}"
    update = _validate(ScheduleUpdate, body, fields, {SYNC_TYPES_CONTEXT: sync_types})
    return ScheduleChange(
        update.sync_type,
        update.interval_minutes if "interval_minutes" in update.model_fields_set else None,
        update.start_delay_minutes if "start_delay_minutes" in update.model_fields_set else None,
        update.enabled if "enabled" in update.model_fields_set else None,
    )


@dataclass(frozen=True, slots=True)
class AgentChange:
    """A validated PUT /agents/{agentId} body: the values sent, and the fields left out (kept)."""

    name: str | None
    enabled: bool
    keep: frozenset[str]


def parse_agent_update(raw: bytes) -> AgentChange:
    """Validate a PUT /agents/{agentId} body (``{"name"?, "enabled"?}``; empty means ``{}``).

    Raises:
        ApiError: 400 naming the first bad field (413 is for :func:`read_body`).
    """
    body = parse_json(raw) if raw.strip() else {}
    update = _validate(AgentUpdate, body, ", ".join(AGENT_FIELDS))
    sent = update.model_fields_set
    enabled = update.enabled if "enabled" in sent else True
    return AgentChange(update.name, enabled, frozenset(AGENT_FIELDS) - sent)


def parse_run_request(raw: bytes) -> str | None:
    """The ``agentId`` of an optional POST /{syncType}/run body (``{"agentId"?}``), or None.

    Raises:
        ApiError: 400 naming the bad field.
    """
    if not raw.strip():
        return None
    request = _validate(RunRequest, parse_json(raw), "agentId")
    return request.agent_id if "agent_id" in request.model_fields_set else None


@dataclass(frozen=True, slots=True)
class BreakerScope:
    """A validated POST /breakers/reset body: which breakers to close (None: any)."""

    sync_type: str | None = None
    agent_id: str | None = None


def parse_breaker_reset(raw: bytes, sync_types: Sequence[str] = SYNC_TYPES) -> BreakerScope:
    """Validate an optional POST /breakers/reset body (``{"syncType"?, "agentId"?}``; empty means ``{}``).

    Raises:
        ApiError: 400 naming the first bad field.
    """
    body = parse_json(raw) if raw.strip() else {}
    scope = _validate(BreakerResetRequest, body, "syncType, agentId", {SYNC_TYPES_CONTEXT: sync_types})
    sent = scope.model_fields_set
    return BreakerScope(
        scope.sync_type if "sync_type" in sent else None, scope.agent_id if "agent_id" in sent else None
    )


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A validated GET /history query."""

    sync_type: str | None
    limit: int
    agent_id: str | None = None
    before: datetime | None = None


def parse_history_query(
    request: web.Request, sync_types: Sequence[str] = SYNC_TYPES, default_limit: int = RUNS_PER_TYPE
) -> HistoryQuery:
    """``?syncType=`` (empty means all of ``sync_types``), ``?limit=`` (1 to 100 per type),
    ``?agentId=`` (empty means every agent) and ``?before=`` (an ISO 8601 time with a zone: the
    ``startedAt`` of the last run seen).

    Raises:
        ApiError: 400 naming the bad parameter.
    """
    query = request.query
    unknown = sorted(set(query) - {"syncType", "limit", "agentId", "before"})
    if unknown:
        _bad(f"unknown query parameter {unknown[0][:40]!r}; expected syncType, limit, agentId or before")
    sync_type = query.get("syncType") or None
    if sync_type is not None and sync_type not in sync_types:
        _bad(f"syncType {show(sync_type)} is unknown; expected one of {', '.join(sync_types)}")
    agent_id = query.get("agentId") or None
    if agent_id is not None and AGENT_ID_PATTERN.fullmatch(agent_id) is None:
        _bad(f"agentId must be 1 to 64 letters, digits and . _ @ -, got {show(agent_id)}")
    before = _before(query.get("before") or None)
    most = history_limit_max(sync_types)
    raw_limit = query.get("limit")
    if raw_limit is None or raw_limit == "":
        return HistoryQuery(sync_type, default_limit, agent_id, before)
    if not raw_limit.isascii() or not raw_limit.isdigit() or len(raw_limit) > 6:
        _bad(f"limit must be a whole number from 1 to {most}, got {show(raw_limit)}")
    limit = int(raw_limit)
    if not 1 <= limit <= most:
        _bad(f"limit must be a whole number from 1 to {most}, got {limit}")
    return HistoryQuery(sync_type, limit, agent_id, before)


def _before(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    wanted = "must be an ISO 8601 time with a zone, such as a run's startedAt"
    try:
        moment = datetime.fromisoformat(raw) if raw.isascii() and len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        _bad(f"before {wanted}, got {show(raw)}")
    return moment
