"""The planning routes: preview a retune (``POST /schedule/preview``) and suggest a stagger
(``POST /schedule/suggest``). Neither applies anything.

Both simulate on the real actors in a sandbox (see :mod:`archibald_actors.planning`), which
blocks for a fraction of a second to seconds: the work runs on a thread of its own, never
on the event loop, at most ``MAX_PLANS`` at a time, and the answer is awaited with a bound
(504 past it; the simulation is then told to stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import pykka
from aiohttp import web

from archibald_actors.errors import (
    InvalidValueError,
    ServiceStateError,
    ServiceUnavailableError,
    StoreError,
    UnknownSyncTypeError,
)
from archibald_actors.planning.live import preview, suggest_live
from archibald_actors.planning.sandbox import PLANNING_THREAD_PREFIX, SimulationCancelledError
from archibald_actors.planning.suggest import SUGGEST_HOURS
from archibald_actors.validation import show
from archibald_actors.web.access import requires
from archibald_actors.web.context import API_KEY
from archibald_actors.web.error import ApiError
from archibald_actors.web.payload import ScheduleChange, parse_json, parse_schedule_update, read_body
from archibald_actors.web.routes import ok

__all__ = [
    "MAX_HOURS",
    "MAX_PLANS",
    "MAX_SUGGEST_HOURS",
    "PREVIEW_HOURS",
    "SUGGEST_BUDGET",
    "parse_changes",
    "parse_hours",
    "planning_routes",
]

planning_routes = web.RouteTableDef()

T = TypeVar("T")
#: ``?hours=`` of a preview by default, and the most it takes.
PREVIEW_HOURS = 6.0
MAX_HOURS = 48.0
MIN_HOURS = 1.0
#: The most ``?hours=`` of a suggestion (the span each candidate is scored over; a table
#: repeats far sooner, and a longer span only makes each candidate slower).
MAX_SUGGEST_HOURS = 12.0
#: Real seconds a suggestion searches for.
SUGGEST_BUDGET = 5.0
#: Real seconds a preview simulates for at most; past them it answers with the hours it
#: got through (``complete`` false). 6 hours of the default table take ~0.2 s.
PREVIEW_BUDGET = 5.0
#: Real seconds a plan may take in all before a 504 (reading the live state, stopping the sandbox).
PREVIEW_WAIT = 15.0
#: Simulations running at once, over every API of the process (each runs a whole service).
MAX_PLANS = 2
#: Real seconds a plan waits for a turn before a 503.
TURN_WAIT = 5.0
_PLANS = threading.BoundedSemaphore(MAX_PLANS)


def _bad(message: str) -> NoReturn:
    raise ApiError(400, message)


def parse_hours(request: web.Request, default: float, most: float = MAX_HOURS) -> float:
    """``?hours=``: a number from 1 to ``most`` (empty or absent: ``default``); no other parameter.

    Raises:
        ApiError: 400 naming the bad parameter.
    """
    unknown = sorted(set(request.query) - {"hours"})
    if unknown:
        _bad(f"unknown query parameter {unknown[0][:40]!r}; expected hours")
    if len(request.query.getall("hours", [])) > 1:
        _bad("hours is given more than once")
    raw = request.query.get("hours", "")
    if raw == "":
        return default
    try:
        hours = float(raw) if len(raw) <= 20 else math.nan
    except ValueError:
        hours = math.nan
    if not MIN_HOURS <= hours <= most:  # NaN fails this too
        _bad(f"hours must be a number from {MIN_HOURS:g} to {most:g}, got {show(raw)}")
    return hours


def parse_changes(body: object, sync_types: Sequence[str]) -> list[ScheduleChange]:
    """A POST /schedule body, or a non-empty list of them, validated as POST /schedule does.

    A single body gets exactly POST /schedule's errors; an item of a list gets them
    prefixed with ``body[i]: ``.

    Raises:
        ApiError: 400 naming the first bad field.
    """
    if not isinstance(body, list):
        return [parse_schedule_update(body, sync_types)]
    if not body:
        _bad("body: a list of changes needs at least one")
    changes = []
    for index, item in enumerate(body):
        try:
            changes.append(parse_schedule_update(item, sync_types))
        except ApiError as exc:
            raise ApiError(400, f"body[{index}]: {exc.message}") from None
    return changes


async def _planned(work: Callable[[threading.Event], T], what: str, wait: float) -> T:
    """Run ``work`` on a thread of its own and await it for ``wait`` real seconds at most.

    Raises:
        ApiError: 503 if the service is not running or its store fails, 400 for a value the
            schedule refuses, 504 past ``wait`` (``work`` is told to stop through its event).
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    cancel = threading.Event()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        if _PLANS.acquire(timeout=min(TURN_WAIT, wait)):
            try:
                result = work(cancel)
            except BaseException as exc:  # handed to the awaiting coroutine
                error = exc
            finally:
                _PLANS.release()
        else:
            error = ApiError(503, f"{what}: {MAX_PLANS} plans are being computed already; try again")
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=f"{PLANNING_THREAD_PREFIX}{what}", daemon=True).start()
    try:
        async with asyncio.timeout(wait):
            return await done
    except TimeoutError:
        cancel.set()
        raise ApiError(504, f"{what}: not done within {wait:g} s") from None
    except (InvalidValueError, UnknownSyncTypeError) as exc:
        raise ApiError(400, str(exc)) from None
    except ServiceStateError:
        raise ApiError(503, f"{what}: the sync service is not running") from None
    except (ServiceUnavailableError, StoreError, pykka.ActorDeadError, SimulationCancelledError) as exc:
        raise ApiError(503, f"{what}: the sync service could not do it: {exc}") from None


@planning_routes.post("/schedule/preview")
@requires("reader")
async def preview_schedule(request: web.Request) -> web.Response:
    """The next ``?hours=`` (default 6) simulated under a retune (or a list of them); applies nothing."""
    api = request[API_KEY]
    service = api.service
    hours = parse_hours(request, PREVIEW_HOURS)
    changes = parse_changes(parse_json(await read_body(request)), service.sync_types)
    result = await _planned(
        lambda cancel: preview(service, changes, hours, cancel, PREVIEW_BUDGET), "preview", PREVIEW_WAIT
    )
    return ok(result)


@planning_routes.post("/schedule/suggest")
@requires("admin")
async def suggest_schedule(request: web.Request) -> web.Response:
    """Start delays that keep each interval and lower the waits, highest priority first (admin).

    The body is empty or ``{}``; ``?hours=`` (default 3) is the span each candidate is scored over.
    """
    api = request[API_KEY]
    service = api.service
    hours = parse_hours(request, SUGGEST_HOURS, MAX_SUGGEST_HOURS)
    raw = await read_body(request)
    if raw.strip():
        body = parse_json(raw)
        if not isinstance(body, dict):
            _bad("body must be a JSON object")
        if body:
            _bad(f"{show(next(iter(body)))} is not a known field; the body is empty or {{}}")
    wait = SUGGEST_BUDGET + PREVIEW_WAIT  # the search stops itself at its budget
    result = await _planned(
        lambda cancel: suggest_live(service, hours, SUGGEST_BUDGET, cancel), "suggest", wait
    )
    return ok(result)
