"""The rules of every value a user sets, written once, and the messages that name a broken one.

A rule is a pydantic type (``IntervalMinutes``, ``Priority``...). ``ScheduleEntry`` (the
Python API), the ``--config`` TOML tables and the HTTP bodies are models built from these
types, and the OpenAPI document is generated from those models, so a bound changed here
changes everywhere at once. Every type is strict: ``"15"``, ``true``, NaN and infinity are
refused, never coerced.

pydantic's own messages ("Input should be greater than or equal to 5") do not say which
range or unit applies; :func:`problem` turns one of its errors into ``"must be between 5
and 180 minutes, got 4"``, each caller putting the field's name in front (camelCase over
HTTP, the dotted key in a config file).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal, NamedTuple

import annotated_types
from pydantic import BaseModel, Field, StrictBool
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

__all__ = [
    "TYPE_NAME_PATTERN",
    "BackoffSeconds",
    "BreakerCooldownSeconds",
    "BreakerFailures",
    "Enabled",
    "ErpBreakerLanes",
    "FieldError",
    "IntervalMinutes",
    "JsonNumber",
    "MaxConcurrent",
    "Priority",
    "Retries",
    "Scope",
    "StaleAfterMinutes",
    "StartDelayMinutes",
    "TimeoutSeconds",
    "TypeName",
    "Unit",
    "bounds",
    "first_error",
    "is_type_name",
    "problem",
    "show",
]

#: What a sync type's name looks like (a TOML key, a URL segment and a metrics label as is).
TYPE_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_TYPE_NAME = re.compile(TYPE_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class Unit:
    """The unit of a number field, named in its error messages (pydantic keeps it as metadata)."""

    name: str


TypeName = Annotated[str, Field(strict=True, pattern=TYPE_NAME_PATTERN)]
IntervalMinutes = Annotated[
    float,
    Field(strict=True, ge=5, le=180, allow_inf_nan=False, description="minutes between two slots"),
    Unit("minutes"),
]
StartDelayMinutes = Annotated[
    float,
    Field(
        strict=True, ge=0, le=180, allow_inf_nan=False, description="minutes from the epoch to the first slot"
    ),
    Unit("minutes"),
]
Priority = Annotated[int, Field(strict=True, ge=0, le=100, description="queue rank, higher runs first")]
TimeoutSeconds = Annotated[
    float,
    Field(
        strict=True,
        gt=0,
        le=86400,
        allow_inf_nan=False,
        description="a run longer than this (on the service clock) is stopped and recorded as timeout",
    ),
    Unit("seconds"),
]
StaleAfterMinutes = Annotated[
    float,
    Field(strict=True, gt=0, allow_inf_nan=False, description="no success for this long reads stale"),
    Unit("minutes"),
]
Enabled = Annotated[StrictBool, Field(description="false pauses the type's timer")]
MaxConcurrent = Annotated[
    int, Field(strict=True, ge=1, le=64, description="jobs that may run at once (never two on one lane)")
]
Scope = Annotated[
    Literal["shared", "per_agent"],
    Field(
        description='"shared": one job per slot on the service account;'
        ' "per_agent": one job per enabled agent',
    ),
]
Retries = Annotated[
    int, Field(strict=True, ge=0, description="more tries of a failed or timed-out run, before its next slot")
]
BackoffSeconds = Annotated[
    float,
    Field(strict=True, gt=0, allow_inf_nan=False, description="wait before a retry"),
    Unit("seconds"),
]
BreakerFailures = Annotated[
    int, Field(strict=True, ge=1, description="failed tries in a row that open a breaker")
]
BreakerCooldownSeconds = Annotated[
    float,
    Field(strict=True, gt=0, allow_inf_nan=False, description="how long an open breaker skips jobs"),
    Unit("seconds"),
]
ErpBreakerLanes = Annotated[
    int, Field(strict=True, ge=1, description="distinct lanes failing within 10 min that hold every job")
]


@dataclass(frozen=True, slots=True)
class JsonNumber:
    """A JSON number with no finite float value (``NaN``, ``1e309``): kept as its text.

    Strict JSON parsing hands it to validation instead of failing the whole body, so the
    error names the field it was sent in.
    """

    text: str


def show(value: object) -> str:
    """A short JSON-ish rendering of a user's value for an error message."""
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a huge number"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def bounds(info: FieldInfo) -> tuple[float | None, float | None, bool]:
    """``(low, high, low_is_exclusive)`` of a number field, from its pydantic metadata."""
    low: float | None = None
    high: float | None = None
    exclusive = False
    for item in info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Gt):
            low, exclusive = float(item.gt), True  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Le):
            high = float(item.le)  # type: ignore[arg-type]
    return low, high, exclusive


def _unit(info: FieldInfo) -> str:
    return next((f" {m.name}" for m in info.metadata if isinstance(m, Unit)), "")


def _range(info: FieldInfo) -> str:
    low, high, exclusive = bounds(info)
    unit = _unit(info)
    if low is not None and high is not None:
        if exclusive:
            return f"more than {low:g} and at most {high:g}{unit}"
        return f"between {low:g} and {high:g}{unit}"
    if low is not None:
        return f"{'more than' if exclusive else 'at least'} {low:g}{unit}"
    return f"a finite number{unit}"


def problem(error: ErrorDetails, info: FieldInfo | None) -> str:
    """What is wrong with one field, as ``"must be ..., got ..."`` (the caller names the field).

    Args:
        error: one error of a pydantic ``ValidationError``.
        info: the field's definition (its bounds and unit), None if the model has no such field.
    """
    kind, value = error["type"], error.get("input")
    got = f", got {show(value)}"
    if kind == "unknown_sync_type":  # raised by a model with the whole message
        return error["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if info is None:
        return f"is invalid: {error['msg']}"
    numeric = info.annotation in (int, float)
    if kind in ("finite_number", "greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"must be {_range(info)}{got}"
    if numeric and isinstance(value, JsonNumber | int) and not isinstance(value, bool):
        # NaN, 1e309 or an int too large for a float: a number, just not one in range.
        return f"must be {_range(info)}{got}"
    if kind in ("int_type", "int_from_float"):
        return f"must be a whole number{got}"
    if kind == "float_type":
        return f"must be a number of{_unit(info)}{got}" if _unit(info) else f"must be a number{got}"
    if kind == "bool_type":
        return f"must be true or false{got}"
    if kind == "literal_error":
        return f"must be {error.get('ctx', {}).get('expected', 'one of the allowed values')}{got}"
    if kind == "string_type":
        return f"must be a string{got}"
    if kind == "string_pattern_mismatch":
        return f"must match {error.get('ctx', {}).get('pattern', TYPE_NAME_PATTERN)}{got}"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}{got}"


class FieldError(NamedTuple):
    """One error to report: the field as it was sent (empty for the whole body), what is wrong, its kind."""

    field: str
    problem: str
    kind: str


def first_error(errors: list[ErrorDetails], model: type[BaseModel]) -> FieldError:
    """The error to report of a failed validation of ``model``.

    An unknown field is reported first (it explains the others), then fields in the order
    the model declares them.
    """
    aliases = {(f.alias or name): name for name, f in model.model_fields.items()}
    order = list(aliases)

    def rank(error: ErrorDetails) -> tuple[int, int]:
        key = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            return (0, 0)
        return (1, order.index(key) if key in order else len(order))

    error = min(errors, key=rank)
    key = str(error["loc"][0]) if error["loc"] else ""
    name = aliases.get(key)
    if not key:  # the model's own check of the whole: its message is complete
        return FieldError("", error["msg"], error["type"])
    return FieldError(key, problem(error, None if name is None else model.model_fields[name]), error["type"])


def is_type_name(name: object) -> bool:
    """True if ``name`` can name a sync type."""
    return isinstance(name, str) and _TYPE_NAME.fullmatch(name) is not None
