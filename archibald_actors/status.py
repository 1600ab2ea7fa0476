"""Building the status document of DESIGN section 6 from the orchestrator's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archibald_actors.clock import Clock
from archibald_actors.ledger import iso

if TYPE_CHECKING:
    from archibald_actors.actors.orchestrator import OrchestratorState

__all__ = ["build_status"]


def build_status(
    state: OrchestratorState,
    timers: dict[str, dict[str, Any]],
    orchestrator_state: str,
    clock: Clock,
) -> dict[str, Any]:
    """The status dict (camelCase keys); ``timers`` is the supervisor's per-type view."""
    running = state.running
    queued = state.queue.ordered()
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
            "coalesced": counters.coalesced,
            **timer,
        }
    return {
        "running": None
        if running is None
        else {
            "syncType": running.sync_type,
            "trigger": running.trigger,
            "scheduledAt": None if running.scheduled_at is None else iso(clock.wall(running.scheduled_at)),
            "startedAt": iso(clock.wall(running.started_at)),
        },
        "queue": [
            {"syncType": r.sync_type, "trigger": r.trigger, "requestedAt": iso(clock.wall(r.requested_at))}
            for r in queued
        ],
        "held": state.holds > 0,
        "orchestrator": orchestrator_state,
        "types": types,
    }
