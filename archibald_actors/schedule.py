"""The schedule table, ``ScheduleEntry``, validation and the slot arithmetic (pure functions).

Slots of a type with start delay ``d`` and interval ``i`` under epoch ``E`` are
``E + d + k*i`` for k = 0, 1, 2, ... They are computed from the
epoch, never from "now + interval", so nothing drifts and retunes keep the staggering.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archibald_actors.errors import InvalidValueError, UnknownSyncTypeError
from archibald_actors.retry import DEFAULT_RETRY, RetryPolicy
from archibald_actors.validation import (
    TYPE_NAME_PATTERN,
    Enabled,
    IntervalMinutes,
    Priority,
    Scope,
    StaleAfterMinutes,
    StartDelayMinutes,
    TimeoutSeconds,
    TypeName,
    first_error,
    is_type_name,
    show,
)

__all__ = [
    "DEFAULT_SCHEDULE",
    "SYNC_TYPES",
    "TYPE_NAME_PATTERN",
    "ScheduleEntry",
    "check_schedule",
    "check_sync_type",
    "first_slot_after",
    "latest_slot_at_or_before",
    "slot_index",
    "slot_time",
]

#: The seed's six types (the keys of ``DEFAULT_SCHEDULE``); a service's types are its schedule's keys.
SYNC_TYPES: tuple[str, ...] = ("orders", "customers", "prices", "invoices", "ddt", "products")

#: Sync timeout when a type names none: 15 minutes.
DEFAULT_TIMEOUT_SECONDS = 15 * 60.0


@functools.lru_cache(maxsize=64)
def _retry_policy(retries: int, retry_backoff: tuple[float, ...]) -> RetryPolicy:
    """A policy checked once per distinct pair, not at every run's end that asks for it."""
    return RetryPolicy(retries, retry_backoff)


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """How one sync type is timed and ranked.

    Every field is checked when an entry is made (also by ``dataclasses.replace``), against
    the rules of :mod:`archibald_actors.validation`.

    Attributes:
        sync_type: the type's name, matching ``[a-z][a-z0-9_-]{0,31}``.
        interval_minutes: time between slots.
        start_delay_minutes: offset of the first slot from the epoch.
        priority: queue rank, higher runs first.
        enabled: False pauses the timer.
        timeout_seconds: a run longer than this is stopped and recorded as ``timeout``.
        stale_after_minutes: with no success for this long the type reads stale and
            health turns degraded (the thresholds the old admin page used, by default).
        scope: "shared" (one job per slot, on the service's own ERP session) or
            "per_agent" (one job per enabled agent, each on that agent's session).
        retries: more tries of a ``failed`` or ``timeout`` run, never past the next slot.
        retry_backoff: seconds before the 1st, 2nd... retry (the last figure repeats); a
            list is accepted and kept as a tuple.

    Raises:
        InvalidValueError: a field of the wrong type or out of range; ``field`` names it
            as the JSON shapes do (``intervalMinutes``).
    """

    sync_type: str
    interval_minutes: float
    start_delay_minutes: float
    priority: int
    enabled: bool = True
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    stale_after_minutes: float = 24 * 60.0
    scope: Literal["shared", "per_agent"] = "shared"
    retries: int = DEFAULT_RETRY.retries
    retry_backoff: tuple[float, ...] = DEFAULT_RETRY.retry_backoff

    def __post_init__(self) -> None:
        try:
            _EntryRules.model_validate({f: getattr(self, n) for n, f in _JSON_NAMES.items()})
        except ValidationError as exc:
            field, problem, _ = first_error(exc.errors(), _EntryRules)
            raise InvalidValueError(field, problem) from None
        # The retry fields have their rules (and messages naming retries/retryBackoff) in one place.
        policy = RetryPolicy(self.retries, self.retry_backoff)
        # Frozen: a caller's list becomes the policy's tuple, so the entry stays hashable and fixed.
        object.__setattr__(self, "retry_backoff", policy.retry_backoff)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The type's retries and backoff, as :func:`archibald_actors.retry.plan_retry` takes them."""
        return _retry_policy(self.retries, self.retry_backoff)

    @property
    def per_agent(self) -> bool:
        """True if each enabled agent gets a job of its own per slot."""
        return self.scope == "per_agent"

    @property
    def interval(self) -> float:
        """Interval in seconds."""
        return self.interval_minutes * 60.0

    @property
    def start_delay(self) -> float:
        """Start delay in seconds."""
        return self.start_delay_minutes * 60.0

    def retuned(
        self,
        *,
        interval_minutes: float | None = None,
        start_delay_minutes: float | None = None,
        enabled: bool | None = None,
    ) -> ScheduleEntry:
        """A validated copy with the given fields changed (None keeps a field).

        Raises:
            InvalidValueError: a value is of the wrong type or out of range; names the field.
        """
        changes = {
            name: value
            for name, value in (
                ("interval_minutes", interval_minutes),
                ("start_delay_minutes", start_delay_minutes),
                ("enabled", enabled),
            )
            if value is not None
        }
        return replace(self, **changes)  # type: ignore[arg-type]  # validated by __post_init__

    def with_timing_of(self, other: ScheduleEntry | None) -> ScheduleEntry:
        """This entry with ``other``'s interval, start delay and enabled flag (what a retune sets)."""
        if other is None:
            return self
        return replace(
            self,
            interval_minutes=other.interval_minutes,
            start_delay_minutes=other.start_delay_minutes,
            enabled=other.enabled,
        )

    def to_json(self) -> dict[str, object]:
        """The seed's JSON shape, without ``nextRunAt``."""
        return {
            "interval": _number(self.interval_minutes),
            "startDelay": _number(self.start_delay_minutes),
            "unit": "minutes",
            "enabled": self.enabled,
        }


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class _EntryRules(BaseModel):
    """The rules of a ``ScheduleEntry``'s fields, under their JSON names (what errors name)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    sync_type: TypeName = Field(alias="syncType")
    interval_minutes: IntervalMinutes = Field(alias="intervalMinutes")
    start_delay_minutes: StartDelayMinutes = Field(alias="startDelayMinutes")
    priority: Priority
    enabled: Enabled
    timeout_seconds: TimeoutSeconds = Field(alias="timeoutSeconds")
    stale_after_minutes: StaleAfterMinutes = Field(alias="staleAfterMinutes")
    scope: Scope


_JSON_NAMES = {name: field.alias or name for name, field in _EntryRules.model_fields.items()}


def check_sync_type(sync_type: object, known: Iterable[str] = SYNC_TYPES) -> str:
    """Return ``sync_type`` if it is one of ``known`` (a service's types; the seed's six by default).

    Raises:
        UnknownSyncTypeError: it is not.
    """
    types = tuple(known)
    if not isinstance(sync_type, str) or sync_type not in types:
        raise UnknownSyncTypeError(sync_type, types)
    return sync_type


def check_schedule(schedule: Mapping[str, ScheduleEntry]) -> dict[str, ScheduleEntry]:
    """A copy of ``schedule`` once every key is a valid type name naming its own entry.

    Raises:
        InvalidValueError: a key that cannot name a type, an entry of another type, or
            an empty table.
    """
    table = dict(schedule)
    if not table:
        raise InvalidValueError("schedule", "must name at least one sync type")
    for name, entry in table.items():
        if not is_type_name(name):
            raise InvalidValueError("syncType", f"must match {TYPE_NAME_PATTERN}, got {show(name)}")
        if not isinstance(entry, ScheduleEntry) or entry.sync_type != name:
            raise InvalidValueError(
                f"schedule[{name!r}]", f"must be a ScheduleEntry of {name!r}, got {entry!r}"
            )
    return table


def _entry(sync_type: str, interval: float, delay: float, priority: int, stale_hours: float) -> ScheduleEntry:
    return ScheduleEntry(
        sync_type, float(interval), float(delay), priority, stale_after_minutes=stale_hours * 60.0
    )


#: The approved table: interval and start delay in minutes, priority,
#: and the staleness thresholds the admin page used.
DEFAULT_SCHEDULE: Mapping[str, ScheduleEntry] = MappingProxyType(
    {
        "orders": _entry("orders", 10, 0, 6, stale_hours=1),
        "customers": _entry("customers", 30, 5, 5, stale_hours=2),
        "prices": _entry("prices", 30, 10, 1, stale_hours=4),
        "invoices": _entry("invoices", 30, 15, 3, stale_hours=3),
        "ddt": _entry("ddt", 45, 20, 4, stale_hours=3),
        "products": _entry("products", 90, 30, 2, stale_hours=8),
    }
)


def slot_time(epoch: float, entry: ScheduleEntry, index: int) -> float:
    """Clock time of slot ``index`` of ``entry`` under ``epoch``."""
    return epoch + entry.start_delay + index * entry.interval


def slot_index(epoch: float, entry: ScheduleEntry, at: float) -> int:
    """Index of the latest slot at or before ``at`` (-1 if the first slot is later).

    Exact despite float division: the estimate is corrected against ``slot_time``.
    """
    first = epoch + entry.start_delay
    if at < first:
        return -1
    k = int((at - first) // entry.interval)
    while slot_time(epoch, entry, k + 1) <= at:
        k += 1
    while k >= 0 and slot_time(epoch, entry, k) > at:
        k -= 1
    return k


def latest_slot_at_or_before(epoch: float, entry: ScheduleEntry, at: float) -> float | None:
    """The latest slot <= ``at``, or None before the first slot."""
    k = slot_index(epoch, entry, at)
    return None if k < 0 else slot_time(epoch, entry, k)


def first_slot_after(epoch: float, entry: ScheduleEntry, at: float) -> float:
    """The earliest slot strictly after ``at``."""
    return slot_time(epoch, entry, slot_index(epoch, entry, at) + 1)
