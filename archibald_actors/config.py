"""The ``--config`` TOML file: read once, validated at start, errors that point at the line.

Format (a type left out keeps its default row and the demo handler; a table of a type
not in the default table adds that type, and needs its ``interval_minutes``)::

    [sync.orders]
    interval_minutes = 10        # 5 to 180
    start_delay_minutes = 0      # 0 to 180 (0 for a new type)
    priority = 6                 # 0 to 100, higher runs first (0 for a new type)
    timeout_seconds = 900        # more than 0, at most 86400, on the service clock
    enabled = true
    scope = "per_agent"          # "shared" (default) or one job per enabled agent
    handler = "mypkg.erp:sync_orders"       # a callable taking ctx, imported at start
    # url = "http://127.0.0.1:9000/sync"    # or a webhook (not both)
    retries = 2                  # more tries of a failed or timed-out run (0: none)
    retry_backoff = [60, 300]    # seconds before each retry; the last one repeats
    duration_seconds = [30, 60]  # seconds a run takes, [min, max], for ``simulate``

    [breakers]                   # service-wide circuit breakers (every key optional)
    failures = 3                 # failed tries in a row that open a (type, lane) pair
    cooldown_seconds = 7200      # how long an open pair skips its jobs
    erp_lanes = 5                # distinct lanes failing within 10 min that hold every job

A top-level ``max_concurrent = N`` (1 to 64) lets up to N jobs run at once, never two on
one lane (an agent's ERP session, or the service's own for shared types).

A type's name matches ``[a-z][a-z0-9_-]{0,31}``. The table is the model ``TypeTable``,
whose fields have the rules of :mod:`archibald_actors.validation` (as the HTTP API's).
Every problem raises :class:`ConfigError` naming the file, the line and the field.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from archibald_actors.actors.runner import SyncHandler
from archibald_actors.breaker import DEFAULT_BREAKERS, BreakerPolicy
from archibald_actors.clock import Clock
from archibald_actors.config_durations import DurationSeconds, duration_problem
from archibald_actors.config_lines import find_line, key_at_line
from archibald_actors.errors import InvalidValueError
from archibald_actors.handler_signature import handler_problem
from archibald_actors.handlers.webhook import webhook_handler
from archibald_actors.retry import RetryPolicy
from archibald_actors.schedule import DEFAULT_SCHEDULE, ScheduleEntry
from archibald_actors.validation import (
    TYPE_NAME_PATTERN,
    BackoffSeconds,
    BreakerCooldownSeconds,
    BreakerFailures,
    Enabled,
    ErpBreakerLanes,
    IntervalMinutes,
    MaxConcurrent,
    Priority,
    Retries,
    Scope,
    StartDelayMinutes,
    TimeoutSeconds,
    first_error,
    is_type_name,
)

__all__ = [
    "BREAKER_KEYS",
    "KNOWN_KEYS",
    "BreakersTable",
    "ConfigError",
    "ServiceConfig",
    "TypeTable",
    "find_line",
    "import_handler",
    "load_config",
    "parse_config",
]

SECTION = "sync"
#: The top-level table of the service-wide breaker settings.
BREAKERS = "breakers"


def _optional() -> Any:
    # A key left out is left as it is: read with ``model_dump(exclude_unset=True)``.
    return Field(default=None)


class TypeTable(BaseModel):
    """One ``[sync.<type>]`` table; every key optional, unknown keys refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    interval_minutes: IntervalMinutes = _optional()
    start_delay_minutes: StartDelayMinutes = _optional()
    priority: Priority = _optional()
    timeout_seconds: TimeoutSeconds = _optional()
    enabled: Enabled = _optional()
    scope: Scope = _optional()
    handler: StrictStr = _optional()
    url: StrictStr = _optional()
    retries: Retries = _optional()
    retry_backoff: Annotated[list[BackoffSeconds], Field(min_length=1)] = _optional()
    duration_seconds: DurationSeconds = _optional()


class _TopLevel(BaseModel):
    """The file's top-level keys besides the ``[sync]`` section."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    max_concurrent: MaxConcurrent


KNOWN_KEYS: tuple[str, ...] = tuple(TypeTable.model_fields)
#: What a key set in a table changes in the type's ``ScheduleEntry``.
_TIMING_KEYS = (
    "interval_minutes",
    "start_delay_minutes",
    "priority",
    "timeout_seconds",
    "enabled",
    "scope",
    "retries",
    "retry_backoff",
)
#: The top-level key besides the tables.
MAX_CONCURRENT = "max_concurrent"


class BreakersTable(BaseModel):
    """The ``[breakers]`` table: service-wide circuit breaker settings; every key optional."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    failures: BreakerFailures = _optional()
    cooldown_seconds: BreakerCooldownSeconds = _optional()
    erp_lanes: ErpBreakerLanes = _optional()


BREAKER_KEYS: tuple[str, ...] = tuple(BreakersTable.model_fields)
#: The ``BreakerPolicy`` field each key of ``[breakers]`` sets.
_POLICY_FIELDS = {
    "failures": "breaker_failures",
    "cooldown_seconds": "breaker_cooldown",
    "erp_lanes": "erp_breaker_lanes",
}


class ConfigError(ValueError):
    """The config file is unreadable or invalid.

    Attributes:
        path: the file.
        line: 1-based line of the offending table or key (None if it has none).
        field: dotted name of the offending key (``sync.orders.priority``), or None.
    """

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field} {problem}" if field else f"{where}: {problem}")
        self.path = path
        self.line = line
        self.field = field


@dataclass(frozen=True)
class ServiceConfig:
    """A validated config file.

    Attributes:
        path: where it was read from.
        schedule: the full table, the file's values over ``DEFAULT_SCHEDULE``.
        handlers: handlers the file names (types without ``handler``/``url`` are absent).
        max_concurrent: jobs that may run at once, if the file says (None: the default).
        breakers: the ``[breakers]`` settings over ``DEFAULT_BREAKERS``.
        durations: per type, the ``duration_seconds`` range the file gives (for ``simulate``).
    """

    path: str
    schedule: Mapping[str, ScheduleEntry]
    handlers: Mapping[str, SyncHandler] = field(default_factory=dict)
    max_concurrent: int | None = None
    breakers: BreakerPolicy = DEFAULT_BREAKERS
    durations: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def load_config(path: str | Path, *, clock: Clock) -> ServiceConfig:
    """Read and validate the TOML file at ``path``.

    Args:
        path: the file.
        clock: the service clock (webhook handlers report slot times with it).

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a value is invalid.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, None, None, f"cannot be read: {exc}") from exc
    return parse_config(text, path=name, clock=clock)


def parse_config(text: str, *, path: str = "<config>", clock: Clock) -> ServiceConfig:
    """Validate TOML ``text`` (see the module docstring for the format).

    Raises:
        ConfigError: the text is not TOML or a value is invalid; names ``path``, line and field.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match[1]) if match else None
        keys = None if line is None else key_at_line(text, line)
        if keys:
            problem = f"is not valid TOML: {exc}"
        else:  # no key to name: say which line (or the whole file) is broken
            problem = f"{'line ' + str(line) if line else 'the file'} is not valid TOML: {exc}"
        raise ConfigError(path, line, ".".join(keys) if keys else None, problem) from None
    return _Validator(text, path, clock).config(data)


class _Validator:
    """Turns parsed TOML into a ``ServiceConfig``, failing on the first problem."""

    def __init__(self, text: str, path: str, clock: Clock) -> None:
        self._text = text
        self._path = path
        self._clock = clock

    def fail(self, keys: tuple[str, ...], problem: str) -> ConfigError:
        return ConfigError(self._path, find_line(self._text, keys), ".".join(keys), problem)

    def config(self, data: dict[str, Any]) -> ServiceConfig:
        for key in data:
            if key not in {SECTION, BREAKERS, MAX_CONCURRENT}:
                expected = f"{MAX_CONCURRENT}, [{SECTION}.<type>] and [{BREAKERS}] tables"
                raise self.fail((key,), f"is not a known section or key; the file holds {expected}")
        max_concurrent = self._max_concurrent(data)
        section = data.get(SECTION, {})
        if not isinstance(section, dict):
            raise self.fail((SECTION,), f"must be a table of sync types, got {_kind(section)}")
        schedule = dict(DEFAULT_SCHEDULE)
        handlers: dict[str, SyncHandler] = {}
        durations: dict[str, tuple[float, float]] = {}
        for sync_type, table in section.items():
            keys = (SECTION, sync_type)
            if not is_type_name(sync_type):
                raise self.fail(keys, f"is not a valid sync type name: it must match {TYPE_NAME_PATTERN}")
            if not isinstance(table, dict):
                raise self.fail(keys, f"must be a table, got {_kind(table)}")
            schedule[sync_type], handler = self._type(sync_type, table, schedule.get(sync_type))
            if handler is not None:
                handlers[sync_type] = handler
            if "duration_seconds" in table:  # validated by _type
                low, high = table["duration_seconds"]
                durations[sync_type] = (float(low), float(high))
        breakers = self._breakers(data.get(BREAKERS, {}))
        return ServiceConfig(
            self._path,
            MappingProxyType(schedule),
            MappingProxyType(handlers),
            max_concurrent=max_concurrent,
            breakers=breakers,
            durations=MappingProxyType(durations),
        )

    def _max_concurrent(self, data: dict[str, Any]) -> int | None:
        if MAX_CONCURRENT not in data:
            return None
        try:
            return _TopLevel.model_validate({MAX_CONCURRENT: data[MAX_CONCURRENT]}).max_concurrent
        except ValidationError as exc:
            _, problem, _ = first_error(exc.errors(), _TopLevel)
            raise self.fail((MAX_CONCURRENT,), problem) from None

    def _breakers(self, raw: object) -> BreakerPolicy:
        if not isinstance(raw, dict):
            raise self.fail((BREAKERS,), f"must be a table, got {_kind(raw)}")
        try:
            table = BreakersTable.model_validate(raw).model_dump(exclude_unset=True)
        except ValidationError as exc:
            key, problem, kind = first_error(exc.errors(), BreakersTable)
            if kind == "extra_forbidden":
                problem = f"is not a known key; expected one of {', '.join(BREAKER_KEYS)}"
            raise self.fail((BREAKERS, key), problem) from None
        return replace(DEFAULT_BREAKERS, **{_POLICY_FIELDS[k]: v for k, v in table.items()})

    def _type(
        self, sync_type: str, raw: dict[str, Any], entry: ScheduleEntry | None
    ) -> tuple[ScheduleEntry, SyncHandler | None]:
        prefix = (SECTION, sync_type)
        try:
            table = TypeTable.model_validate(raw).model_dump(exclude_unset=True)
        except ValidationError as exc:
            key, problem, kind = first_error(exc.errors(), TypeTable)
            if kind == "extra_forbidden":
                problem = f"is not a known key; expected one of {', '.join(KNOWN_KEYS)}"
            elif key == "duration_seconds":
                problem = duration_problem(raw.get(key))
            elif key == "retry_backoff":
                problem = _backoff_problem(raw[key])
            raise self.fail((*prefix, key), problem) from None
        changes = {k: v for k, v in table.items() if k in _TIMING_KEYS}
        if entry is None:  # a type of its own: the interval cannot be guessed
            if "interval_minutes" not in changes:
                raise self.fail(
                    (*prefix, "interval_minutes"), "is required for a type that is not in the default table"
                )
            entry = ScheduleEntry(sync_type, changes["interval_minutes"], 0.0, 0)
        try:
            entry = replace(entry, **changes)
        except InvalidValueError as exc:  # the table's rules are the entry's: kept for safety
            raise self.fail(prefix, str(exc)) from None
        if "handler" in table and "url" in table:
            # Point at whichever of the two comes second: that is the line to delete.
            url_line = find_line(self._text, (*prefix, "url")) or 0
            handler_line = find_line(self._text, (*prefix, "handler")) or 0
            second, first = ("url", "handler") if url_line >= handler_line else ("handler", "url")
            raise self.fail(
                (*prefix, second), f"cannot be given together with {first}: a type has one handler"
            )
        if "handler" in table:
            return entry, self._handler(prefix, table["handler"])
        if "url" in table:
            return entry, self._webhook(prefix, table["url"], entry.timeout_seconds)
        return entry, None

    def _handler(self, prefix: tuple[str, ...], spec: str) -> SyncHandler:
        keys = (*prefix, "handler")
        try:
            return import_handler(spec)
        except ValueError as exc:
            raise self.fail(keys, str(exc)) from None

    def _webhook(self, prefix: tuple[str, ...], url: str, timeout: float) -> SyncHandler:
        keys = (*prefix, "url")
        try:
            return webhook_handler(url, clock=self._clock, timeout_seconds=timeout)
        except ValueError as exc:
            raise self.fail(keys, str(exc).removeprefix("url ")) from None


def import_handler(spec: str) -> SyncHandler:
    """Import the callable named by ``"package.module:function"`` (the part after ``:`` may be dotted).

    Raises:
        ValueError: the spec is malformed, cannot be imported, or names something that
            cannot be called as ``handler(ctx)``.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f'must look like "package.module:function", got {spec!r}')
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is a config error
        raise ValueError(f"{spec!r} cannot be imported: {type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(
                f"{spec!r} cannot be imported: {module_name} has no attribute {attribute!r}"
            ) from None
    if not callable(target):
        raise ValueError(f"{spec!r} is not callable (it is {_kind(target)})")
    if (problem := handler_problem(target)) is not None:
        raise ValueError(f"{spec!r} is not a sync handler: {problem}")
    handler: SyncHandler = target
    return handler


def _backoff_problem(backoff: object) -> str:
    """The retry policy's own message for a bad ``retry_backoff`` (it names the item at fault)."""
    try:
        RetryPolicy(retry_backoff=backoff)  # type: ignore[arg-type]  # checked by the policy
    except InvalidValueError as exc:
        return str(exc).removeprefix(f"{exc.field} ")
    return "is invalid"  # pragma: no cover - the table's rule and the policy's are the same


def _kind(value: object) -> str:
    return type(value).__name__
