"""Values to parameters and rows to values, for the statements of ``SqlStore``.

Values go in as both databases take them (JSON as text, flags as bool), except times,
which each dialect binds its own way (``Dialect.time``). They come back as each database
keeps them (SQLite: ISO 8601 text and JSON text; PostgreSQL: ``datetime`` and a decoded
``jsonb``), which the readers here accept either way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, cast

from archibald_actors.agent import Agent, check_agent_id
from archibald_actors.domain import Outcome, RunRecord, Trigger
from archibald_actors.errors import InvalidValueError
from archibald_actors.schedule import ScheduleEntry

__all__ = [
    "AGENT_COLUMNS",
    "ENTRY_COLUMNS",
    "RUN_COLUMNS",
    "agent_from_row",
    "check_aware",
    "check_limit",
    "entry_from_row",
    "entry_values",
    "page_of_runs",
    "result_text",
    "run_from_row",
    "run_values",
    "slot_ms",
    "stored_time",
]

#: Columns of ``schedule_entries``, in the order ``entry_from_row`` reads them.
ENTRY_COLUMNS = (
    "sync_type, interval_minutes, start_delay_minutes, priority, enabled, timeout_seconds, extra"
)
#: ``ScheduleEntry`` fields with a column of their own; any other field goes to ``extra`` (JSON),
#: so a field added to ``ScheduleEntry`` later is kept without a migration.
_ENTRY_FIELDS = frozenset(ENTRY_COLUMNS.replace(" ", "").split(",")) - {"extra"}
#: Columns of ``runs``, in the order ``run_from_row`` reads them.
RUN_COLUMNS = (
    "sync_type, trigger, scheduled_at, requested_at, started_at, finished_at, outcome, error,"
    " agent_id, attempt, result, reason"
)
#: Columns of ``agents``, in the order ``agent_from_row`` reads them.
AGENT_COLUMNS = "agent_id, name, enabled"


def check_aware(moment: datetime, field: str) -> datetime:
    """``moment``, if it is timezone-aware.

    Raises:
        InvalidValueError: ``moment`` is naive; the message names ``field``.
    """
    if moment.utcoffset() is None:
        raise InvalidValueError(field, f"must be a timezone-aware datetime, got {moment!r}")
    return moment


def check_limit(limit: int) -> None:
    """Refuse a limit that is not a whole number >= 0.

    Raises:
        InvalidValueError: it is negative, a bool or not an int.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidValueError("limit", f"must be a whole number >= 0, got {limit!r}")


def page_of_runs(newest: Callable[[int], list[RunRecord]], limit: int) -> list[RunRecord]:
    """A page of at most ``limit`` runs, newest first by start, that never ends inside a millisecond.

    ``newest(n)`` gives the first ``n`` runs of the query. A reader pages back with the
    ``startedAt`` of the last run it saw, printed to the millisecond: had the page ended
    inside a millisecond, the runs of that millisecond left for the next page would not
    be before it, and no page would hold them. So the page ends before that millisecond;
    if that leaves nothing (more than ``limit`` runs started in it, only possible with a
    ``limit`` under ``max_concurrent``), the page is that whole millisecond, past ``limit``.
    """
    if limit == 0:
        return []
    runs = newest(limit + 1)
    if len(runs) <= limit:
        return runs
    cut = _millisecond(runs[limit].started_at)
    page = [r for r in runs[:limit] if _millisecond(r.started_at) != cut]
    size = limit + 1
    while not page:
        size *= 2
        runs = newest(size)
        if len(runs) < size or _millisecond(runs[-1].started_at) != cut:
            page = [r for r in runs if _millisecond(r.started_at) == cut]
    return page


def _millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def slot_ms(slot_offset: float) -> int:
    """The key of a slot: its offset from the epoch in whole milliseconds.

    Raises:
        InvalidValueError: ``slot_offset`` is not finite.
    """
    if not math.isfinite(slot_offset):
        raise InvalidValueError("slotOffset", f"must be a finite number, got {slot_offset!r}")
    return round(slot_offset * 1000)


def stored_time(value: str | datetime) -> datetime:
    """A stored time (ISO 8601 text or a ``datetime``) as an aware UTC ``datetime``."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


def entry_values(entry: ScheduleEntry) -> tuple[Any, ...]:
    """The parameters of ``ENTRY_COLUMNS`` for ``entry``; fields without a column go to ``extra``."""
    extra = {f.name: getattr(entry, f.name) for f in fields(entry) if f.name not in _ENTRY_FIELDS}
    return (
        entry.sync_type,
        float(entry.interval_minutes),
        float(entry.start_delay_minutes),
        int(entry.priority),
        bool(entry.enabled),
        float(entry.timeout_seconds),
        json.dumps(extra, sort_keys=True),
    )


def entry_from_row(row: tuple[Any, ...]) -> ScheduleEntry:
    """A ``ScheduleEntry`` from a row of ``ENTRY_COLUMNS`` (``extra`` as JSON text or a mapping)."""
    sync_type, interval, delay, priority, enabled, timeout, extra = row
    if isinstance(extra, str):
        extra = json.loads(extra)
    known = {f.name for f in fields(ScheduleEntry)}  # a field since removed is dropped
    more = {name: value for name, value in extra.items() if name in known}
    return ScheduleEntry(
        sync_type, float(interval), float(delay), int(priority), bool(enabled), float(timeout), **more
    )


def result_text(result: object) -> str | None:
    """A run's ``result`` as JSON text (None stays None).

    Raises:
        InvalidValueError: it is not a dict, or not JSON-able (NaN and infinities included:
            the history is served as JSON), or holds a NUL character.
    """
    if result is None:
        return None
    if not isinstance(result, dict):
        kind = type(result).__name__
        raise InvalidValueError("result", f"must be a JSON object (a dict) or null, got {kind}")
    try:
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError("result", f"must be JSON-able: {exc}") from exc
    if "\\u0000" in text:  # PostgreSQL's jsonb refuses a NUL character; refuse it in every store
        raise InvalidValueError("result", "must not contain a NUL character")
    return text


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    """A ``RunRecord`` from a row of ``RUN_COLUMNS`` (``result`` as JSON text or a mapping)."""
    sync_type, trigger, scheduled_at, requested_at, started_at, finished_at, outcome, error, *more = row
    agent_id, attempt, result, reason = more
    return RunRecord(
        sync_type=sync_type,
        trigger=cast(Trigger, trigger),
        scheduled_at=None if scheduled_at is None else stored_time(scheduled_at),
        requested_at=stored_time(requested_at),
        started_at=stored_time(started_at),
        finished_at=stored_time(finished_at),
        outcome=cast(Outcome, outcome),
        error=error,
        agent_id=agent_id,
        attempt=int(attempt),
        result=json.loads(result) if isinstance(result, str) else result,
        reason=reason,
    )


def run_values(record: RunRecord, time: Callable[[datetime, str], Any]) -> tuple[Any, ...]:
    """The parameters of ``RUN_COLUMNS`` for ``record``, its times bound by ``time(moment, field)``.

    Raises:
        InvalidValueError: a naive time, a bad ``agent_id``, an ``attempt`` below 1 or a
            ``result`` that is not a JSON-able dict; the message names the field.
    """
    scheduled_at, attempt = record.scheduled_at, record.attempt
    if record.agent_id is not None:
        check_agent_id(record.agent_id)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidValueError("attempt", f"must be a whole number >= 1, got {attempt!r}")
    return (
        record.sync_type,
        record.trigger,
        None if scheduled_at is None else time(scheduled_at, "scheduledAt"),
        time(record.requested_at, "requestedAt"),
        time(record.started_at, "startedAt"),
        time(record.finished_at, "finishedAt"),
        record.outcome,
        record.error,
        record.agent_id,
        attempt,
        result_text(record.result),
        record.reason,
    )


def agent_from_row(row: tuple[Any, ...]) -> Agent:
    """An ``Agent`` from a row of ``AGENT_COLUMNS`` (``enabled`` as 0/1 or a bool)."""
    agent_id, name, enabled = row
    return Agent(agent_id, name, bool(enabled))
