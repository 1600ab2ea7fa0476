"""``duration_seconds = [min, max]`` of a ``[sync.<type>]`` table: how long ``simulate`` takes a run to be.

The service itself never reads it; the rule lives here so that config.py stays the file's
shape and nothing else.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

__all__ = ["MAX_DURATION_SECONDS", "DurationSeconds", "duration_problem"]

#: Longest run a ``duration_seconds`` range may name (the longest timeout).
MAX_DURATION_SECONDS = 86400.0
#: The error kind of a bad ``duration_seconds`` (its message is written here, not by pydantic).
_BAD_DURATION = "duration_range"


def _duration_range(value: list[float]) -> list[float]:
    low, high = value
    if not (0 < low <= high <= MAX_DURATION_SECONDS):
        raise PydanticCustomError(_BAD_DURATION, "bad range")
    return value


#: ``[min, max]`` seconds a run of the type takes: what ``simulate`` draws from.
DurationSeconds = Annotated[
    list[float], Field(strict=True, min_length=2, max_length=2), AfterValidator(_duration_range)
]


def duration_problem(value: object) -> str:
    """What is wrong with a ``duration_seconds`` value (the caller names the key)."""
    try:
        got = json.dumps(value)
    except (TypeError, ValueError):
        got = repr(value)
    return (
        f"must be [min, max]: two numbers of seconds, more than 0 and at most {MAX_DURATION_SECONDS:g}, "
        f"with min <= max, got {got[:60]}"
    )
