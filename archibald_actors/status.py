"""Building the status document (and the health derived from it) from the orchestrator's state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from archibald_actors.clock import Clock
from archibald_actors.domain import iso
from archibald_actors.schedule import ScheduleEntry

if TYPE_CHECKING:
    from archibald_actors.actors.orchestrator_state import OrchestratorState

__all__ = [
    "ABANDONED_THREADS_CAP",
    "FAILING_AFTER",
    "build_status",
    "health_from_status",
    "is_stale",
    "iso_at",
]

#: Consecutive failed or timed-out runs after which a type makes the health degraded.
FAILING_AFTER = 3
#: Abandoned handler threads past which health reads degraded: each holds whatever its
#: handler holds (a connection, an ERP session), and a pile of them means a handler hangs.
ABANDONED_THREADS_CAP = 8


def iso_at(clock: Clock, at: float | None) -> str | None:
    """The wall time of clock time ``at`` in ISO 8601, or None when there is no ``at``."""
    # ``clock.wall(None)`` would be now: a missing time must stay missing.
    return None if at is None else iso(clock.wall(at))


def is_stale(
    last_success: datetime | None, since: datetime | None, entry: ScheduleEntry, now: datetime
) -> bool:
    """No success for longer than the type's threshold (counted from ``since`` if never)."""
    reference = last_success or since
    if reference is None:
        return False
    return (now - reference).total_seconds() > entry.stale_after_minutes * 60.0


def build_status(  # noqa: PLR0917 - one call site per actor, all positional for brevity
    state: OrchestratorState,
    entries: Mapping[str, ScheduleEntry],
    timers: dict[str, dict[str, Any]],
    orchestrator_state: str,
    role: str,
    clock: Clock,
    store: str = "ok",
) -> dict[str, Any]:
    """The status dict (camelCase keys); ``timers`` is the supervisor's per-type view.

    ``store`` is "ok", or "unavailable" while the store fails or does not answer.
    """
    now = clock.wall()
    running = state.running
    queued = state.waiting()
    queued_types = {r.sync_type for r in queued}
    types: dict[str, Any] = {}
    for sync_type, timer in timers.items():
        last = state.history.last(sync_type)
        counters = state.counters[sync_type]
        if running is not None and running.sync_type == sync_type:
            type_state = "running"
        elif sync_type in queued_types:
            type_state = "queued"
        else:
            type_state = "idle"
        types[sync_type] = {
            "state": type_state,
            "lastRun": last.to_json() if last else None,
            "runs": counters.runs,
            "failures": counters.failures,
            "consecutiveFailures": counters.consecutive_failures,
            "coalesced": counters.coalesced,
            "duplicates": counters.duplicates,
            "lastSuccessAt": iso(counters.last_success),
            "fresh": not is_stale(counters.last_success, state.since, entries[sync_type], now),
            **timer,
        }
    return {
        "running": None
        if running is None
        else {
            "syncType": running.sync_type,
            "trigger": running.trigger,
            "scheduledAt": iso_at(clock, running.scheduled_at),
            "startedAt": iso_at(clock, running.started_at),
        },
        "queue": [
            {"syncType": r.sync_type, "trigger": r.trigger, "requestedAt": iso_at(clock, r.requested_at)}
            for r in queued
        ],
        "held": state.holds > 0,
        "orchestrator": orchestrator_state,
        "role": role,
        "store": store,
        "types": types,
    }


def health_from_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """``{"status": "ok"}``, or ``"degraded"`` with the failed children, stale and failing types
    and the store when it does not answer.

    A type is failing once its last ``FAILING_AFTER`` runs (cancelled ones aside) failed or
    timed out: a handler that fails every time degrades health at once, not only when the
    type turns stale. More than ``ABANDONED_THREADS_CAP`` abandoned handler threads degrade
    it too, and the body then says how many (``abandonedThreads``). In a cluster the body
    also names the replica's ``role``.
    """
    types = status["types"]
    failed = [t for t, v in types.items() if v["timer"] == "failed"]
    if status["orchestrator"] == "failed":
        failed.insert(0, "orchestrator")
    stale = [t for t, v in types.items() if not v["fresh"]]
    failing = [t for t, v in types.items() if v["consecutiveFailures"] >= FAILING_AFTER]
    abandoned = int(status.get("abandonedThreads", 0))
    threads = {"abandonedThreads": abandoned} if abandoned > ABANDONED_THREADS_CAP else {}
    # A replica of a cluster says which one it is; a standalone service keeps the bare body.
    role = {} if status.get("role", "standalone") == "standalone" else {"role": status["role"]}
    store = {} if status.get("store", "ok") == "ok" else {"store": status["store"]}
    if not failed and not stale and not failing and not store and not threads:
        return {"status": "ok", **role}
    degraded = {"status": "degraded", "failed": failed, "stale": stale, "failing": failing}
    return {**degraded, **store, **threads, **role}
