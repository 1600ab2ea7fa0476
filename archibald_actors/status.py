"""Building the status document (and the health derived from it) from the orchestrator's state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from archibald_actors.clock import Clock
from archibald_actors.domain import FAILURES, iso
from archibald_actors.schedule import ScheduleEntry

if TYPE_CHECKING:
    from archibald_actors.actors.orchestrator_state import OrchestratorState, Running

__all__ = [
    "ABANDONED_THREADS_CAP",
    "FAILING_AFTER",
    "agent_counts",
    "build_status",
    "health_from_status",
    "is_stale",
    "iso_at",
    "open_breakers",
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
    running_types = {job.sync_type for job in state.jobs.values()}
    types: dict[str, Any] = {}
    for sync_type, timer in timers.items():
        last = state.history.last(sync_type)
        counters = state.counters[sync_type]
        if sync_type in running_types:
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
            "agents": agent_counts(state, sync_type) if entries[sync_type].per_agent else None,
            **timer,
        }
    jobs = sorted(state.jobs.values(), key=lambda job: (job.started_at, job.run_id))
    return {
        "running": None if running is None else _job(running, clock, full=False),
        "jobs": [_job(job, clock, full=True) for job in jobs],
        "queue": [
            {
                "syncType": r.sync_type,
                "agentId": r.agent_id,
                "trigger": r.trigger,
                "requestedAt": iso_at(clock, r.requested_at),
            }
            for r in queued
        ],
        "held": state.holds > 0,
        "heldAgents": sorted(state.lane_holds),
        "maxConcurrent": state.max_concurrent,
        "breakers": state.breakers.snapshot(clock.now(), lambda t: iso_at(clock, t)),
        "orchestrator": orchestrator_state,
        "role": role,
        "store": store,
        "types": types,
    }


def _job(job: Running, clock: Clock, *, full: bool) -> dict[str, Any]:
    """A running job's entry: ``running`` keeps the seed's four keys, ``jobs`` adds agent and progress."""
    entry: dict[str, Any] = {
        "syncType": job.sync_type,
        "trigger": job.trigger,
        "scheduledAt": iso_at(clock, job.scheduled_at),
        "startedAt": iso_at(clock, job.started_at),
    }
    if full:
        entry.update(agentId=job.agent_id, attempt=job.attempt, progress=job.progress)
    return entry


def agent_counts(state: OrchestratorState, sync_type: str) -> dict[str, int]:
    """``{"total", "ok", "failed", "skipped", "running"}`` over the enabled agents, from each
    agent's latest run of ``sync_type`` (an agent that never ran counts in ``total`` only)."""
    counts = {"total": 0, "ok": 0, "failed": 0, "skipped": 0, "running": 0}
    running = {job.agent_id for job in state.jobs.values() if job.sync_type == sync_type}
    for agent in state.agents:
        if not agent.enabled:
            continue
        counts["total"] += 1
        if agent.agent_id in running:
            counts["running"] += 1
        last = state.latest.get((sync_type, agent.agent_id))
        if last is None:
            continue
        if last.outcome == "success":
            counts["ok"] += 1
        elif last.outcome in FAILURES:
            counts["failed"] += 1
        elif last.outcome == "skipped":
            counts["skipped"] += 1
    return counts


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
    tripped = open_breakers(status)
    failing = [t for t, v in types.items() if v["consecutiveFailures"] >= FAILING_AFTER]
    abandoned = int(status.get("abandonedThreads", 0))
    threads = {"abandonedThreads": abandoned} if abandoned > ABANDONED_THREADS_CAP else {}
    # A replica of a cluster says which one it is; a standalone service keeps the bare body.
    role = {} if status.get("role", "standalone") == "standalone" else {"role": status["role"]}
    store = {} if status.get("store", "ok") == "ok" else {"store": status["store"]}
    # The ERP-wide breaker, or the service account's own pair, stops work for everyone;
    # one agent's open pair is that agent's trouble (status and events show it).
    severe = [name for name in tripped if "/" not in name]
    breakers = {"breakers": tripped} if severe else {}
    if not failed and not stale and not failing and not store and not threads and not breakers:
        return {"status": "ok", **role}
    degraded = {"status": "degraded", "failed": failed, "stale": stale, "failing": failing}
    return {**degraded, **store, **threads, **breakers, **role}


def open_breakers(status: Mapping[str, Any]) -> list[str]:
    """The breakers not closed: ``"erp"``, a shared type's name, or ``"type/agent"``."""
    breakers = status.get("breakers") or {}
    names = ["erp"] if (breakers.get("erp") or {}).get("state") == "open" else []
    for pair in breakers.get("pairs", ()):
        if pair["state"] != "closed":
            agent = pair["agentId"]
            names.append(pair["syncType"] if agent is None else f"{pair['syncType']}/{agent}")
    return names
