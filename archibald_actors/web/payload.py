"""Reading and validating what clients send: bounded JSON bodies, the retune body, query strings.

Every bad input becomes a 400 (413 for an oversized body) whose message names the field;
nothing a client sends can cause a 500.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import web

from archibald_actors.schedule import INTERVAL_RANGE, START_DELAY_RANGE, SYNC_TYPES
from archibald_actors.web.error import ApiError

__all__ = [
    "HISTORY_LIMIT_MAX",
    "MAX_BODY_BYTES",
    "HistoryQuery",
    "ScheduleUpdate",
    "parse_history_query",
    "parse_json",
    "parse_schedule_update",
    "read_body",
]

#: Largest request body accepted (DESIGN section 9).
MAX_BODY_BYTES = 64 * 1024
#: Largest ``limit`` of GET /history (100 runs kept per type).
HISTORY_LIMIT_MAX = 100 * len(SYNC_TYPES)
_UPDATE_FIELDS = ("intervalMinutes", "startDelayMinutes", "enabled")


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


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of the range of a finite number")
    return value


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no ``NaN``/``Infinity``, no number that overflows to infinity.

    Raises:
        ApiError: 400 naming the problem.
    """
    if not raw.strip():
        _bad("body: a JSON object is required")
    try:
        text = raw.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        _bad("body: must be UTF-8 encoded JSON")
    except RecursionError:
        _bad("body: JSON nested too deeply")
    except ValueError as exc:  # JSONDecodeError, the hooks above, int() digit limits
        _bad(f"body: invalid JSON: {exc}")


@dataclass(frozen=True, slots=True)
class ScheduleUpdate:
    """A validated POST /schedule body."""

    sync_type: str
    interval_minutes: float | None = None
    start_delay_minutes: float | None = None
    enabled: bool | None = None


def _show(value: object) -> str:
    """A short JSON-ish rendering of a client's value for an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a huge number"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _minutes(body: dict[str, Any], field: str, bounds: tuple[float, float]) -> float | None:
    if field not in body:
        return None
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        _bad(f"{field} must be a number, got {_show(value)}")
    low, high = bounds
    # int/float comparisons are exact in Python, so a huge int cannot overflow here
    if not low <= value <= high:
        _bad(f"{field} must be between {low:g} and {high:g} minutes, got {_show(value)}")
    return float(value)


def parse_schedule_update(body: object) -> ScheduleUpdate:
    """Validate ``{"syncType", "intervalMinutes"?, "startDelayMinutes"?, "enabled"?}``.

    Raises:
        ApiError: 400 naming the first bad field.
    """
    if not isinstance(body, dict):
        _bad("body must be a JSON object")
    unknown = sorted(k for k in body if k != "syncType" and k not in _UPDATE_FIELDS)
    if unknown:
        _bad(f"{_show(unknown[0])} is not a known field; expected syncType, {', '.join(_UPDATE_FIELDS)}")
    sync_type = body.get("syncType")
    if "syncType" not in body:
        _bad("syncType is required")
    if not isinstance(sync_type, str) or sync_type not in SYNC_TYPES:
        _bad(f"syncType {_show(sync_type)} is unknown; expected one of {', '.join(SYNC_TYPES)}")
    if not any(f in body for f in _UPDATE_FIELDS):
        _bad("intervalMinutes, startDelayMinutes or enabled is required: nothing to change")
    interval = _minutes(body, "intervalMinutes", INTERVAL_RANGE)
    delay = _minutes(body, "startDelayMinutes", START_DELAY_RANGE)
    enabled = body.get("enabled")
    if "enabled" in body and not isinstance(enabled, bool):
        _bad(f"enabled must be a boolean, got {_show(enabled)}")
    return ScheduleUpdate(sync_type, interval, delay, enabled)


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """A validated GET /history query."""

    sync_type: str | None
    limit: int


def parse_history_query(request: web.Request, default_limit: int = 100) -> HistoryQuery:
    """``?syncType=`` (empty means all types) and ``?limit=`` (1 to ``HISTORY_LIMIT_MAX``).

    Raises:
        ApiError: 400 naming the bad parameter.
    """
    query = request.query
    unknown = sorted(set(query) - {"syncType", "limit"})
    if unknown:
        _bad(f"unknown query parameter {unknown[0][:40]!r}; expected syncType or limit")
    sync_type = query.get("syncType") or None
    if sync_type is not None and sync_type not in SYNC_TYPES:
        _bad(f"syncType {sync_type[:40]!r} is unknown; expected one of {', '.join(SYNC_TYPES)}")
    raw_limit = query.get("limit")
    if raw_limit is None or raw_limit == "":
        return HistoryQuery(sync_type, default_limit)
    if not raw_limit.isascii() or not raw_limit.isdigit() or len(raw_limit) > 6:
        _bad(f"limit must be a whole number from 1 to {HISTORY_LIMIT_MAX}, got {raw_limit[:40]!r}")
    limit = int(raw_limit)
    if not 1 <= limit <= HISTORY_LIMIT_MAX:
        _bad(f"limit must be a whole number from 1 to {HISTORY_LIMIT_MAX}, got {limit}")
    return HistoryQuery(sync_type, limit)
