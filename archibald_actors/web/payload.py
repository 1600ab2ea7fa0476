"""Reading and validating what clients send: bounded JSON bodies, the retune body, query strings.

Every bad input becomes a 400 (413 for an oversized body) whose message names the field;
nothing a client sends can cause a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import web
from pydantic import ValidationError

from archibald_actors.schedule import SYNC_TYPES
from archibald_actors.validation import JsonNumber, first_error, show
from archibald_actors.web.error import ApiError
from archibald_actors.web.shapes import SYNC_TYPES_CONTEXT, UPDATE_FIELDS, ScheduleUpdate

__all__ = [
    "MAX_BODY_BYTES",
    "HistoryQuery",
    "ScheduleChange",
    "history_limit_max",
    "parse_history_query",
    "parse_json",
    "parse_schedule_update",
    "read_body",
]

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


def parse_schedule_update(body: object, sync_types: Sequence[str] = SYNC_TYPES) -> ScheduleChange:
    """Validate a POST /schedule body against the model ``ScheduleUpdate``.

    Args:
        body: the decoded JSON body.
        sync_types: the service's types; ``syncType`` must be one of them.

    Raises:
        ApiError: 400 naming the first bad field.
    """
    if not isinstance(body, dict):
        _bad("body must be a JSON object")
    try:
        update = ScheduleUpdate.model_validate(body, context={SYNC_TYPES_CONTEXT: sync_types})
    except ValidationError as exc:
        field, problem, kind = first_error(exc.errors(), ScheduleUpdate)
        if kind == "extra_forbidden":
            _bad(f"{show(field)} is not a known field; expected syncType, {', '.join(UPDATE_FIELDS)}")
        _bad(f"{field} {problem}" if field else problem)
    return ScheduleChange(
        update.sync_type,
        update.interval_minutes if "interval_minutes" in update.model_fields_set else None,
        update.start_delay_minutes if "start_delay_minutes" in update.model_fields_set else None,
        update.enabled if "enabled" in update.model_fields_set else None,
    )


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A validated GET /history query."""

    sync_type: str | None
    limit: int


def parse_history_query(
    request: web.Request, sync_types: Sequence[str] = SYNC_TYPES, default_limit: int = RUNS_PER_TYPE
) -> HistoryQuery:
    """``?syncType=`` (empty means all of ``sync_types``) and ``?limit=`` (1 to 100 per type).

    Raises:
        ApiError: 400 naming the bad parameter.
    """
    query = request.query
    unknown = sorted(set(query) - {"syncType", "limit"})
    if unknown:
        _bad(f"unknown query parameter {unknown[0][:40]!r}; expected syncType or limit")
    sync_type = query.get("syncType") or None
    if sync_type is not None and sync_type not in sync_types:
        _bad(f"syncType {show(sync_type)} is unknown; expected one of {', '.join(sync_types)}")
    most = history_limit_max(sync_types)
    raw_limit = query.get("limit")
    if raw_limit is None or raw_limit == "":
        return HistoryQuery(sync_type, default_limit)
    if not raw_limit.isascii() or not raw_limit.isdigit() or len(raw_limit) > 6:
        _bad(f"limit must be a whole number from 1 to {most}, got {show(raw_limit)}")
    limit = int(raw_limit)
    if not 1 <= limit <= most:
        _bad(f"limit must be a whole number from 1 to {most}, got {limit}")
    return HistoryQuery(sync_type, limit)
